"""scp over a real OpenSSH sshd on 127.0.0.1: key files from a connection's text live exactly as
long as the commands that use them, and scp's remote path never reaches a shell.

The operators run with ``scp_bin``/``ssh_bin`` pointing at small recorders: each records what the
real tool is about to be given (does the key file exist, with which modes) and then becomes the
real ``scp``/``ssh`` by ``exec``. A "legacy" scp is the real one with ``-O`` (the SCP protocol of
OpenSSH < 9.0) whose usage text lacks ``-s``, like RHEL 8's OpenSSH 8.0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.errors import CommandFailed, ConfigError, PublishError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
from airflow_provider_impala_transfer.core.transfer.destinations import SshDestination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.methods import ScpMethod
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget, scp_has_sftp_flag
from airflow_provider_impala_transfer.operators.transfer import PublishOperator, TransferOperator
from tests.test_transfer_methods import make_chunk as transfer_chunk

RUN = "manual__2026-11-24T10:00:00+00:00"
DAG = "scp_safety"
REAL_SCP, REAL_SSH = shutil.which("scp"), shutil.which("ssh")
OPENSSH_8_0_USAGE = ("usage: scp [-346BCpqrTv] [-c cipher] [-F ssh_config] [-i identity_file]\n"
                     "           [-l limit] [-o ssh_option] [-P port] [-S program] source ... target\n")

pytestmark = pytest.mark.skipif(not (REAL_SCP and REAL_SSH), reason="needs OpenSSH's scp and ssh")

RECORDER = '''#!{python} -I
import json, os, stat, sys
args = sys.argv[1:]
record = {{"tool": {tool!r}, "args": args}}
files = []
if "-i" in args:
    files.append(args[args.index("-i") + 1])
files += [a.split("=", 1)[1] for a in args if a.startswith("UserKnownHostsFile=")]
for path in files:
    try:
        st, dir_st = os.stat(path), os.stat(os.path.dirname(path))
        record[path] = [oct(stat.S_IMODE(st.st_mode)), oct(stat.S_IMODE(dir_st.st_mode))]
    except OSError:
        record[path] = None
with open({log!r}, "a") as out:
    out.write(json.dumps(record) + "\\n")
if not args and {usage!r}:
    sys.stderr.write({usage!r})
    sys.exit(1)
os.execv({real!r}, [{real!r}, *{extra!r}, *args])
'''


def recorder(directory: Path, name: str, real: str, log: Path, *, extra: tuple[str, ...] = (), usage: str = "") -> str:
    """An executable that logs its arguments (and whether the files they name exist) to ``log``,
    then execs ``real`` with ``extra`` + its arguments; without arguments it prints ``usage`` if given."""
    path = directory / name
    path.write_text(RECORDER.format(python=sys.executable, tool=name, log=str(log), real=real, extra=list(extra),
                                    usage=usage))
    path.chmod(0o755)
    return str(path)


def calls(log: Path, tool: str | None = None) -> list[dict]:
    """The recorded runs (not the usage probes, which have no arguments)."""
    if not log.exists():
        return []
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in runs if r["args"] and (tool is None or r["tool"] == tool)]


def make_chunk(directory: Path, parts: int = 2, size: int = 50_000) -> Manifest:
    return transfer_chunk(directory, parts=parts, size=size)


def context(run_id: str = RUN) -> dict:
    """What TransferOperator/PublishOperator.execute read: the run id and a first try, unmapped."""
    return {"run_id": run_id, "ti": SimpleNamespace(dag_id=DAG, try_number=1, map_index=-1,
                                                    xcom_pull=lambda **kwargs: None, xcom_push=lambda **kwargs: None)}


@pytest.fixture
def tools(tmp_path):
    """Recording scp and ssh in front of the real ones, and their log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "tools.log"
    return SimpleNamespace(log=log, scp=recorder(bin_dir, "scp", REAL_SCP, log),
                           ssh=recorder(bin_dir, "ssh", REAL_SSH, log))


@pytest.fixture
def key_text_connection(sshd, monkeypatch):
    """An ssh connection that carries its key and the host's key as text (not key_file/known_hosts),
    with the SSH provider's extra names."""
    monkeypatch.setenv("AIRFLOW_CONN_EDGE_KEY_TEXT", json.dumps({
        "conn_type": "ssh", "host": sshd.host, "port": sshd.port, "login": sshd.user,
        "extra": {"private_key": sshd.key_file.read_text(), "host_key": sshd.host_public_key,
                  "no_host_key_check": "false", "conn_timeout": "10"}}))
    return "edge_key_text"


def key_files_of(runs: list[dict]) -> set[str]:
    return {path for r in runs for path in r if path.startswith("/") and "impala-transfer-ssh-" in path}


def assert_present_while_used_and_gone_after(runs: list[dict]) -> None:
    """Every command that used the connection's key files found them (0600 in a 0700 directory),
    and none of them (nor their directory) exists any more."""
    assert runs, "no ssh/scp ran"
    files = key_files_of(runs)
    assert len(files) == 2, files  # the private key and the known_hosts line from host_key
    for run in runs:
        for path in files & set(run):
            assert run[path] == ["0o600", "0o700"], (run["tool"], path, run[path])
    for path in files:
        assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_transfer_operator_keeps_key_text_files_while_scp_runs_and_removes_them_after(
        sshd, tools, key_text_connection, tmp_path):
    manifest = make_chunk(tmp_path / "extract")
    remote = tmp_path / "landing"
    operator = TransferOperator(task_id="scp", method="scp", manifest=manifest.to_dict(),
                                target_path=f"file://{remote}", ssh_conn_id=key_text_connection,
                                partition={"ds": "2026-11-24"}, scp_bin=tools.scp, ssh_bin=tools.ssh)
    record = operator.execute(context())
    assert record["method"] == "scp" and len(record["files"]) == 2
    assert [r["tool"] for r in calls(tools.log)][:2] == ["ssh", "scp"]  # mkdir, copy, then the checks over ssh
    assert_present_while_used_and_gone_after(calls(tools.log))
    staged = remote / "_impala_transfer_staging" / Run(RUN, {"ds": "2026-11-24"}, dag_id=DAG).staging_name
    assert sorted(p.name for p in staged.iterdir()) == [f.name for f in manifest.files]

    publish = PublishOperator(task_id="publish", deliveries=[record], target_path=f"file://{remote}",
                              ssh_conn_id=key_text_connection, partition={"ds": "2026-11-24"},
                              scp_bin=tools.scp, ssh_bin=tools.ssh)
    tools.log.unlink()
    result = publish.execute(context())
    assert result["files"] == 2 and sorted(p.name for p in (remote / "ds=2026-11-24").iterdir()) == \
        [f.name for f in manifest.files]
    assert {r["tool"] for r in calls(tools.log)} == {"ssh"}
    assert_present_while_used_and_gone_after(calls(tools.log))


def test_key_text_files_are_removed_also_when_scp_fails(sshd, tools, key_text_connection, tmp_path):
    manifest = make_chunk(tmp_path / "extract")
    Path(manifest.files[1].local).unlink()  # scp itself fails: a source file is gone
    operator = TransferOperator(task_id="scp", method="scp", manifest=manifest.to_dict(),
                                target_path=f"file://{tmp_path / 'landing'}", ssh_conn_id=key_text_connection,
                                scp_bin=tools.scp, ssh_bin=tools.ssh)
    with pytest.raises(CommandFailed, match=r"(?s)scp exited with \d+: .*No such file or directory"):
        operator.execute(context())
    assert [r["tool"] for r in calls(tools.log)] == ["ssh", "scp"]
    assert_present_while_used_and_gone_after(calls(tools.log))


def test_key_text_files_are_removed_also_when_publishing_fails(sshd, tools, key_text_connection, tmp_path):
    target = dict(target_path=f"file://{tmp_path / 'landing'}", ssh_conn_id=key_text_connection,
                  scp_bin=tools.scp, ssh_bin=tools.ssh)
    record = TransferOperator(task_id="scp", method="scp", manifest=make_chunk(tmp_path / "extract").to_dict(),
                              **target).execute(context())
    tools.log.unlink()
    publish = PublishOperator(task_id="publish", deliveries=[record], **target)
    with pytest.raises(PublishError, match="nothing to publish"):  # another run: nothing staged for it
        publish.execute(context(run_id="manual__2026-11-25T10:00:00+00:00"))
    assert_present_while_used_and_gone_after(calls(tools.log))


# --- scp's remote path: SFTP (-s) where scp has it, else only shell-inert paths ------------------

def scp_method(sshd, remote: str, *, scp_bin: str, ssh_bin: str) -> ScpMethod:
    runner = CommandRunner(timeout=60)
    target = ScpTarget(host=sshd.host, port=sshd.port, user=sshd.user, key_file=str(sshd.key_file),
                       known_hosts=str(sshd.known_hosts), remote_path=remote, connect_timeout=5,
                       scp_bin=scp_bin, ssh_bin=ssh_bin)
    return ScpMethod(destination=SshDestination(target=target, runner=runner), runner=runner)


@pytest.fixture
def legacy_scp(tmp_path, tools):
    """OpenSSH's scp forced to the legacy SCP protocol (``-O``), with OpenSSH 8.0's usage (no -s)."""
    return recorder(tmp_path / "bin", "scp-legacy", REAL_SCP, tools.log, extra=("-O",), usage=OPENSSH_8_0_USAGE)


def test_legacy_scp_really_lets_the_remote_shell_read_its_path(sshd, legacy_scp, tmp_path):
    """Why the check below exists: the remote shell expands ``$(...)`` in legacy scp's target."""
    source, landing = tmp_path / "probe.txt", tmp_path / "control"
    source.write_text("x")
    landing.mkdir()
    subprocess.run([legacy_scp, "-F", "/dev/null", "-P", str(sshd.port), "-i", str(sshd.key_file),
                    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={sshd.known_hosts}",
                    str(source), f"{sshd.user}@{sshd.host}:{landing}/$(echo expanded)"],
                   check=True, capture_output=True, timeout=60)
    assert [p.name for p in landing.iterdir()] == ["expanded"]


def test_with_legacy_scp_a_path_the_shell_would_run_is_refused_before_anything_runs(sshd, legacy_scp, tools,
                                                                                    tmp_path):
    tag = uuid.uuid4().hex[:8]
    remote = f"{tmp_path}/landing/$(touch pwned-{tag})"
    method = scp_method(sshd, remote, scp_bin=legacy_scp, ssh_bin=tools.ssh)
    assert not method.destination.target.sftp_protocol
    with pytest.raises(ConfigError, match=r"^scp_target_path: .*\$\(touch pwned-.* holds characters the remote shell "
                                          r"interprets, and .*scp-legacy has no -s .*OpenSSH >= 8\.7"):
        deliver_chunk(method, make_chunk(tmp_path / "extract"), Run(RUN), overwrite=False)
    assert calls(tools.log) == []  # neither ssh (mkdir) nor scp ran
    assert not (tmp_path / "landing").exists()
    assert not list(Path.home().glob(f"pwned-{tag}")) and not list(tmp_path.rglob("pwned*"))

    plain = tmp_path / "landing-plain"  # a path no shell reads differently still goes by legacy scp
    record = deliver_chunk(scp_method(sshd, str(plain), scp_bin=legacy_scp, ssh_bin=tools.ssh),
                           make_chunk(tmp_path / "extract"), Run(RUN), overwrite=False)
    assert record.checksum_verified
    [copy] = calls(tools.log, "scp-legacy")
    assert "-s" not in copy["args"]


def test_with_sftp_scp_the_same_name_is_written_literally(sshd, tools, tmp_path):
    tag = uuid.uuid4().hex[:8]
    remote = f"{tmp_path}/landing/$(touch pwned-{tag})"
    method = scp_method(sshd, remote, scp_bin=tools.scp, ssh_bin=tools.ssh)
    manifest = make_chunk(tmp_path / "extract")
    record = deliver_chunk(method, manifest, Run(RUN), overwrite=False)
    assert record.checksum_verified
    [copy] = calls(tools.log, "scp")
    assert copy["args"][:2] == ["-p", "-s"]  # SFTP: the path is a name, not shell text
    staged = Path(remote) / "_impala_transfer_staging" / Run(RUN).key
    assert sorted(p.name for p in staged.iterdir()) == [f.name for f in manifest.files]
    assert not list(Path.home().glob(f"pwned-{tag}")) and not list(tmp_path.rglob("pwned*"))


def test_scp_is_asked_for_its_flags_once_per_binary(tools, tmp_path):
    fresh = recorder(tmp_path / "bin", "scp-fresh", REAL_SCP, tools.log)
    assert scp_has_sftp_flag(fresh) and scp_has_sftp_flag(fresh)
    probes = [json.loads(line) for line in tools.log.read_text().splitlines()]
    assert [p["tool"] for p in probes] == ["scp-fresh"] and probes[0]["args"] == []
    assert not scp_has_sftp_flag(str(tmp_path / "no-such-scp"))  # unknown: treated as legacy, paths checked
