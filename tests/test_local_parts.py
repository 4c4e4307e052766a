"""The local stand-ins the transfer tests run against are real and behave: Hadoop's FsShell, the fake
distcp, an OpenSSH server, an S3 endpoint. If one of these is wrong, every transfer test lies."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.local_hadoop import (
    DISTCP_INVALID_ARGUMENT,
    DISTCP_UNKNOWN_ERROR,
    HadoopTools,
)
from tests.support.local_sshd import LocalSshd

# Would create a file named `pwned` if any shell ever parsed it; `;` would split a command.
WEIRD = "chunk 1 Grüße 東京 $(touch pwned); x"
PAYLOAD = bytes(range(256)) * 64 + "Grüße\n".encode()


def run(argv: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120, check=False)


def hdfs(tools: HadoopTools, cwd: Path, *args) -> subprocess.CompletedProcess:
    return run(["hdfs", "dfs", *args], cwd, tools.env)


def assert_no_shell_ran(tmp_path: Path, *other_dirs: Path) -> None:
    """No `pwned` under the test's dir, nor in the other dirs a command could have run in."""
    assert not list(tmp_path.rglob("pwned")), f"a shell parsed a file name under {tmp_path}"
    for directory in other_dirs:
        assert not (directory / "pwned").exists(), f"a shell parsed a file name in {directory}"


# --- hdfs: Hadoop's real FsShell on file:// ------------------------------------------------------

@pytest.mark.slow  # ~18 JVM starts, ~0.35 s each
def test_fsshell_round_trip_with_a_weird_name(hadoop_env, tmp_path):
    source = tmp_path / "local" / f"{WEIRD}.parquet"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    landing, copies = tmp_path / f"landing {WEIRD}", tmp_path / "copies"

    def ok(*args) -> subprocess.CompletedProcess:
        result = hdfs(hadoop_env, tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr.decode())
        return result

    ok("-mkdir", "-p", f"file://{landing}")
    ok("-put", str(source), f"file://{landing}/")
    landed = landing / source.name
    assert landed.read_bytes() == PAYLOAD
    again = hdfs(hadoop_env, tmp_path, "-put", str(source), f"file://{landing}/")
    assert again.returncode == 1 and b"File exists" in again.stderr
    ok("-put", "-f", str(source), f"file://{landing}/")

    assert hdfs(hadoop_env, tmp_path, "-test", "-e", f"file://{landed}").returncode == 0
    assert hdfs(hadoop_env, tmp_path, "-test", "-d", f"file://{landing}").returncode == 0
    assert hdfs(hadoop_env, tmp_path, "-test", "-d", f"file://{landed}").returncode == 1
    assert hdfs(hadoop_env, tmp_path, "-test", "-e", f"file://{landing}/absent").returncode == 1

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


def test_hdfs_passes_exit_code_and_stderr_through(hadoop_env, tmp_path):
    missing = hdfs(hadoop_env, tmp_path, "-cat", f"file://{tmp_path}/absent")
    assert missing.returncode == 1
    assert b"No such file or directory" in missing.stderr and missing.stdout == b""
    assert b"NativeCodeLoader" not in missing.stderr  # log4j quietened
    other = run(["hdfs", "fsck", "/"], tmp_path, hadoop_env.env)
    assert other.returncode == 1 and b"hdfs dfs" in other.stderr


def test_hdfs_needs_nothing_from_the_environment(hadoop_tools, tmp_path):
    """Java, class path and options are written into the executable: a scrubbed env still works."""
    assert run([hadoop_tools.hdfs, "dfs", "-test", "-d", f"file://{tmp_path}"], tmp_path, env={}).returncode == 0


# --- hadoop distcp: the stand-in -----------------------------------------------------------------

def make_sources(tmp_path: Path, count: int = 3) -> list[Path]:
    source_dir = tmp_path / f"export {WEIRD}"
    source_dir.mkdir()
    files = []
    for index in range(count):
        path = source_dir / f"part-{index:05d} {WEIRD}.parquet"
        path.write_bytes(PAYLOAD + bytes([index]))
        files.append(path)
    return files


def test_distcp_copies_a_listing_and_logs_the_exact_argv(hadoop_env, tmp_path):
    files = make_sources(tmp_path)
    listing = tmp_path / "listing.txt"
    entries = [f"file://{files[0]}", f"file://{files[1]}", str(files[2])]  # URIs or plain paths
    listing.write_text("\n".join(entries) + "\n", encoding="utf-8")
    target = tmp_path / f"target {WEIRD}"
    argv = ["hadoop", "distcp", "-Dmapreduce.job.queuename=etl", "-D", "dfs.replication=2", "-update",
            "-skipcrccheck", "-strategy", "dynamic", "-m", "4", "-bandwidth", "50",
            "-f", f"file://{listing}", f"file://{target}"]

    result = run(argv, tmp_path, hadoop_env.env)

    assert result.returncode == 0, result.stderr.decode()
    for source in files:
        assert (target / source.name).read_bytes() == source.read_bytes()
    [call] = hadoop_env.distcp_calls()
    assert call["args"] == argv[1:] and call["sources"] == entries and call["exit_code"] == 0
    assert_no_shell_ran(tmp_path)


def test_distcp_update_copies_a_directorys_contents(hadoop_env, tmp_path):
    files = make_sources(tmp_path, count=2)
    target = tmp_path / "target"
    result = run(["hadoop", "distcp", "-update", f"file://{files[0].parent}", f"file://{target}"],
                 tmp_path, hadoop_env.env)
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".crc")) == sorted(f.name for f in files)


@pytest.mark.parametrize("args", [
    ["-update", "-delete"],  # refused on purpose: a transfer never deletes on the target
    ["-update", "-bogus"],
    ["-update", "-overwrite"],
    ["-atomic", "-update"],
    ["-update", "-D", "k=v"],  # generic options only before distcp's own
    ["-m", "many"],
    ["-bandwidth", "0"],
    ["-strategy", "fastest"],
], ids=lambda args: " ".join(args))
def test_distcp_refuses_what_real_distcp_refuses_with_exit_255(hadoop_env, tmp_path, args):
    files = make_sources(tmp_path, count=1)
    target = tmp_path / "target"
    result = run(["hadoop", "distcp", *args, f"file://{files[0]}", f"file://{target}"], tmp_path, hadoop_env.env)
    assert result.returncode == DISTCP_INVALID_ARGUMENT == 255
    assert b"Invalid arguments:" in result.stderr and b"usage: distcp" in result.stderr
    assert not target.exists()
    [call] = hadoop_env.distcp_calls()
    assert call["args"][1:-2] == args and call["exit_code"] == 255


def test_distcp_refuses_a_listing_plus_sources_and_a_missing_source(hadoop_env, tmp_path):
    files = make_sources(tmp_path, count=1)
    listing = tmp_path / "listing.txt"
    listing.write_text(f"file://{files[0]}\n")
    both = run(["hadoop", "distcp", "-f", f"file://{listing}", f"file://{files[0]}", f"file://{tmp_path}/t"],
               tmp_path, hadoop_env.env)
    assert both.returncode == 255 and b"Both source file listing and source paths present" in both.stderr
    missing = run(["hadoop", "distcp", f"file://{tmp_path}/absent", f"file://{tmp_path}/t"], tmp_path, hadoop_env.env)
    assert missing.returncode == 255 and b"doesn't exist" in missing.stderr
    assert not (tmp_path / "t").exists()


def test_distcp_reject_hook_fails_like_a_refusing_cluster(hadoop_env, tmp_path, monkeypatch):
    files = make_sources(tmp_path, count=2)
    target = tmp_path / "target"
    monkeypatch.setenv("FAKE_DISTCP_REJECT", "part-00001")
    result = run(["hadoop", "distcp", "-update", *(f"file://{f}" for f in files), f"file://{target}"],
                 tmp_path, hadoop_env.env)
    assert result.returncode == DISTCP_UNKNOWN_ERROR == 25
    stderr = result.stderr.decode()
    assert "ERROR tools.DistCp: Exception encountered" in stderr and "rejected by target cluster" in stderr
    assert not target.exists()  # nothing copied, not even the source that was not rejected


def test_hadoop_other_than_distcp_exits_1(hadoop_env, tmp_path):
    result = run(["hadoop", "fs", "-ls", "/"], tmp_path, hadoop_env.env)
    assert result.returncode == 1 and b"distcp" in result.stderr


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
