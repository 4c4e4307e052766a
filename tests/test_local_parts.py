"""The local parts the transfer tests run against, other than HDFS itself (tests/test_local_hdfs.py):
Hadoop's FsShell on ``file://`` URIs, an OpenSSH server, an S3 endpoint. If one of these is wrong,
every transfer test lies.

FsShell on ``file://`` (the real ``hdfs`` of the session's LocalHadoop, through ``hadoop_env``):
Hadoop's local filesystem is a checksummed filesystem: every file it writes gets a hidden
``.<name>.crc`` sibling; ``-ls`` hides them, ``os.listdir`` does not; ``-mv`` and ``-rm`` take them
along. Names are not arbitrary: spaces, unicode, quotes, ``$(x)``, ``;`` are plain characters (no
shell is involved anywhere), but FsShell expands globs (``* ? [ ] { }``; ``\\`` escapes), and a
``:`` in a name is read as a URI scheme (refused, and a file with ``:`` in its name breaks globbing
in its directory). ``-put`` reads a plain local source that is no valid URI (a space...) on the
default filesystem, which is HDFS here: give local sources as ``file://`` URIs (see
tests/test_local_hdfs.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.local_sshd import LocalSshd

# Would create a file named `pwned` if any shell ever parsed it; `;` would split a command.
WEIRD = "chunk 1 Grüße 東京 $(touch pwned); x"
PAYLOAD = bytes(range(256)) * 64 + "Grüße\n".encode()


def run(argv: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120, check=False)


def hdfs(cwd: Path, *args) -> subprocess.CompletedProcess:
    """``hdfs dfs ARGS`` as the transfer code runs it: from PATH, in this process's environment."""
    return run(["hdfs", "dfs", *args], cwd)


def assert_no_shell_ran(tmp_path: Path, *other_dirs: Path) -> None:
    """No `pwned` under the test's dir, nor in the other dirs a command could have run in."""
    assert not list(tmp_path.rglob("pwned")), f"a shell parsed a file name under {tmp_path}"
    for directory in other_dirs:
        assert not (directory / "pwned").exists(), f"a shell parsed a file name in {directory}"


# --- hdfs: Hadoop's real FsShell on file:// ------------------------------------------------------

@pytest.mark.slow  # ~18 JVM starts, ~0.5 s each
def test_fsshell_round_trip_with_a_weird_name(hadoop_env, tmp_path):
    source = tmp_path / "local" / f"{WEIRD}.parquet"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    landing, copies = tmp_path / f"landing {WEIRD}", tmp_path / "copies"

    def ok(*args) -> subprocess.CompletedProcess:
        result = hdfs(tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr.decode())
        return result

    ok("-mkdir", "-p", f"file://{landing}")
    ok("-put", f"file://{source}", f"file://{landing}/")
    landed = landing / source.name
    assert landed.read_bytes() == PAYLOAD
    again = hdfs(tmp_path, "-put", f"file://{source}", f"file://{landing}/")
    assert again.returncode == 1 and b"File exists" in again.stderr
    ok("-put", "-f", f"file://{source}", f"file://{landing}/")

    assert hdfs(tmp_path, "-test", "-e", f"file://{landed}").returncode == 0
    assert hdfs(tmp_path, "-test", "-d", f"file://{landing}").returncode == 0
    assert hdfs(tmp_path, "-test", "-d", f"file://{landed}").returncode == 1
    assert hdfs(tmp_path, "-test", "-e", f"file://{landing}/absent").returncode == 1

    ok("-mkdir", "-p", f"file://{copies}")
    ok("-cp", f"file://{landed}", f"file://{copies}/")
    ok("-cp", "-f", f"file://{landed}", f"file://{copies}/")
    copied = copies / source.name
    assert copied.read_bytes() == PAYLOAD

    sizes = ok("-stat", "%b", f"file://{landed}", f"file://{copied}").stdout.split()
    assert sizes == [str(len(PAYLOAD)).encode()] * 2
    assert ok("-cat", f"file://{copied}").stdout == PAYLOAD
    listed = ok("-ls", "-C", f"file://{copies}").stdout.decode().splitlines()
    assert listed == [f"file://{copied}"]  # the .crc file is hidden from Hadoop's listing...
    assert (copies / f".{source.name}.crc").is_file()  # ...but is on disk

    renamed = copies / f"renamed {WEIRD}.parquet"
    ok("-mv", f"file://{copied}", f"file://{renamed}")
    assert renamed.read_bytes() == PAYLOAD and not copied.exists()
    assert sorted(os.listdir(copies)) == sorted([renamed.name, f".{renamed.name}.crc"])  # crc moved along

    ok("-rm", "-r", "-f", "-skipTrash", f"file://{landing}", f"file://{copies}")
    assert not landing.exists() and not copies.exists()
    assert_no_shell_ran(tmp_path, Path.cwd())


def test_fsshell_reads_glob_characters_in_a_name_as_a_pattern(hadoop_env, tmp_path):
    (tmp_path / "a1.txt").write_text("one")
    (tmp_path / "a[1].txt").write_text("literal")

    pattern = hdfs(tmp_path, "-ls", "-C", f"file://{tmp_path}/a[1].txt")
    escaped = hdfs(tmp_path, "-ls", "-C", f"file://{tmp_path}/a\\[1\\].txt")

    assert pattern.stdout.decode().splitlines() == [f"file://{tmp_path}/a1.txt"]  # [1] matched "1"
    assert escaped.stdout.decode().splitlines() == [f"file://{tmp_path}/a[1].txt"]

    (tmp_path / "c:d.txt").write_text("colon")
    glob = hdfs(tmp_path, "-ls", "-C", f"file://{tmp_path}/a*.txt")
    assert glob.returncode == 255  # one name with ':' breaks every glob in its directory
    assert b"URISyntaxException: Relative path in absolute URI: c:d.txt" in glob.stderr


def test_hdfs_passes_exit_code_and_stderr_through(hadoop_env, tmp_path):
    missing = hdfs(tmp_path, "-cat", f"file://{tmp_path}/absent")
    assert missing.returncode == 1
    assert missing.stderr.decode().strip() == f"cat: `file://{tmp_path}/absent': No such file or directory"
    assert missing.stdout == b""  # log4j and the JVM are quiet
    other = run(["hdfs", "fsck", "/"], tmp_path)
    assert other.returncode == 1 and b"this local client knows: dfs" in other.stderr


def test_hdfs_needs_nothing_from_the_environment(local_hadoop, tmp_path):
    """Java, class path, options and the default configuration are written into the executable."""
    scrubbed = run([local_hadoop.bin_dir / "hdfs", "dfs", "-test", "-d", f"file://{tmp_path}"], tmp_path, env={})
    assert scrubbed.returncode == 0, scrubbed.stderr.decode()


# --- sshd ----------------------------------------------------------------------------------------

def scp_argv(sshd: LocalSshd, known_hosts: Path, source: Path, remote_dir: Path, *, quiet: bool = True) -> list[str]:
    return ["scp", *(["-q"] if quiet else []), "-p", "-F", "/dev/null", "-P", str(sshd.port), "-i", str(sshd.key_file),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "--", str(source),
            f"{sshd.user}@{sshd.host}:{remote_dir}/"]


def test_scp_delivers_a_weird_name_with_the_host_key_pinned(sshd, tmp_path):
    source = tmp_path / f"{WEIRD}.parquet"
    source.write_bytes(PAYLOAD)
    remote_dir = tmp_path / f"incoming {WEIRD}"
    remote_dir.mkdir()
    result = run(scp_argv(sshd, sshd.known_hosts, source, remote_dir), tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert (remote_dir / source.name).read_bytes() == PAYLOAD
    assert_no_shell_ran(tmp_path, Path.home())


def test_scp_refuses_an_unknown_host_key(sshd, tmp_path):
    source = tmp_path / "chunk.parquet"
    source.write_bytes(PAYLOAD)
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    result = run(scp_argv(sshd, empty_known_hosts, source, tmp_path / "never", quiet=False), tmp_path)
    assert result.returncode == 255
    assert b"Host key verification failed" in result.stderr
    # -q also silences ssh's diagnostics: all a quiet scp says is that the connection closed.
    quiet = run(scp_argv(sshd, empty_known_hosts, source, tmp_path / "never"), tmp_path)
    assert quiet.returncode == 255
    assert b"Host key verification failed" not in quiet.stderr and b"Connection closed" in quiet.stderr
    assert not (tmp_path / "never").exists()


def test_sftp_through_fsspec_lists_a_directory(sshd, tmp_path):
    import fsspec

    (tmp_path / "a.parquet").write_bytes(b"a")
    (tmp_path / f"{WEIRD}.parquet").write_bytes(b"b")
    options = sshd.fsspec_sftp_options()
    fs = fsspec.filesystem("sftp", skip_instance_cache=True, **options)
    try:
        names = sorted(Path(p).name for p in fs.ls(str(tmp_path), detail=False))
        assert names == sorted(["a.parquet", f"{WEIRD}.parquet"])
    finally:
        fs.client.close()


def test_sshd_airflow_connection_parses_in_airflow(sshd):
    from airflow.models.connection import Connection

    expected_extra = {"key_file": str(sshd.key_file), "known_hosts": str(sshd.known_hosts)}
    from_uri = Connection(conn_id="local_sshd", uri=sshd.airflow_connection_uri())
    from_json = Connection.from_json(sshd.airflow_connection_json(), conn_id="local_sshd")
    for conn in (from_uri, from_json):
        assert (conn.conn_type, conn.host, conn.port, conn.login) == ("ssh", "127.0.0.1", sshd.port, sshd.user)
        assert conn.extra_dejson == expected_extra
    assert json.loads(sshd.airflow_connection_json())["extra"] == expected_extra


# --- S3 ------------------------------------------------------------------------------------------

def test_s3fs_put_and_get_through_the_moto_server(s3, tmp_path):
    import fsspec

    assert s3.port > 0 and s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
    bucket = s3.create_bucket("local-parts-test")
    source = tmp_path / f"{WEIRD}.parquet"
    source.write_bytes(PAYLOAD)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options())

    key = f"{bucket}/exports/run 1/{source.name}"
    fs.put(str(source), key)
    fs.get(key, str(tmp_path / "back.parquet"))

    assert (tmp_path / "back.parquet").read_bytes() == PAYLOAD
    head = s3.client().head_object(Bucket=bucket, Key=key.split("/", 1)[1])
    assert head["ContentLength"] == len(PAYLOAD)
    assert "AWS_ACCESS_KEY_ID" not in os.environ or os.environ["AWS_ACCESS_KEY_ID"] != "testing"
