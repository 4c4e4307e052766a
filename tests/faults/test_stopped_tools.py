"""A stopped transfer leaves no tool running: whatever ends the wait (Ctrl-C, a task timeout, the
task process killed outright), the tool's process group is killed with it. Real processes; the
"tool" is a shell that records its PID and sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk, deliver_with_fallback
from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.methods import FsspecMethod, HdfsPutMethod
from tests.conftest import repo_root
from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.test_transfer_methods import hdfs_destination, make_chunk

HARNESS = """
import sys
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
CommandRunner().run(["sh", "-c", 'echo $$ > "$0"; exec sleep 300', sys.argv[1]])
"""


def stalling_tool(tmp_path: Path) -> tuple[Path, Path]:
    pid_file = tmp_path / "tool.pid"
    tool = tmp_path / "stalling-hdfs"
    tool.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 300\n")
    tool.chmod(0o755)
    return tool, pid_file


def wait_for_pid(pid_file: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip():
            return int(pid_file.read_text())
        time.sleep(0.1)
    raise AssertionError(f"the tool never started ({pid_file} missing)")


def gone(pid: int, timeout: float = 15) -> bool:
    """No such process (or only a zombie nobody reaps yet), checked in /proc."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        try:
            state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
        except (FileNotFoundError, ProcessLookupError):
            return True
        if "zombie" in state:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"])
def test_the_tool_dies_with_the_process_that_ran_it(sig, tmp_path):
    """SIGINT: KeyboardInterrupt ends the wait and the runner kills the tool's group. SIGTERM (a
    worker stopping the task) and SIGKILL: the process ends at once, the runner gets no chance;
    the child dies by PR_SET_PDEATHSIG."""
    pid_file = tmp_path / "tool.pid"
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(pid_file)], cwd=repo_root(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        tool = wait_for_pid(pid_file)
        harness.send_signal(sig)
        harness.wait(timeout=30)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert gone(tool), f"the tool {tool} outlived its parent after {sig.name}"


@pytest.mark.slow
def test_execution_timeout_of_a_real_airflow_task_kills_the_stalling_tool(tmp_path):
    tool, pid_file = stalling_tool(tmp_path)
    data = tmp_path / "chunk-00000-part-00000.parquet"
    data.write_bytes(b"x")
    manifest = Manifest(files=[FileEntry(path=f"file://{data}", bytes=1, sha256="0" * 64, chunk=0, part=0)],
                        schema=pa.schema([("x", pa.int8())]), chunks=[Chunk(0)])
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "stalling_tool.py").symlink_to(repo_root() / "tests" / "dags" / "stalling_tool.py")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "STALLING_HDFS": str(tool),
           "STALLING_MANIFEST": json.dumps(manifest.to_dict())}
    airflow(env, "db", "migrate")
    started = time.monotonic()
    result = airflow(env, "dags", "test", "stalling_tool", check=False, timeout=300)
    output = result.stdout + result.stderr
    run_state, states = latest_run(home / "airflow.db", "stalling_tool")
    assert run_state == "failed" and states[("hdfs_put", -1)] == "failed"
    assert "AirflowTaskTimeout" in output or "Timeout" in output, output[-3000:]
    assert time.monotonic() - started < 240
    assert gone(wait_for_pid(pid_file)), "the stalling tool outlived its timed-out task"


def test_a_stalling_tool_is_stopped_at_its_timeout_and_the_next_method_delivers(tmp_path):
    """hdfs_put's `hdfs` hangs (a NameNode that accepts and never answers): the runner's timeout
    stops it, no process of it is left, and fsspec delivers the chunk."""
    stalling, pid_file = stalling_tool(tmp_path)
    manifest = make_chunk(tmp_path / "extract", parts=1)
    runner = CommandRunner(timeout=2)
    destination = hdfs_destination(tmp_path / "hdfs-target", runner=runner)
    destination.shell.hdfs_bin = str(stalling)
    methods = {"hdfs_put": lambda: HdfsPutMethod(destination=destination, runner=runner),
               "fsspec": lambda: FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(),
                                                                             root=str(tmp_path / "target")))}
    started = time.monotonic()
    record, attempts = deliver_with_fallback(
        list(methods.items()), lambda method, overwrite: deliver_chunk(method, manifest, Run("r"), overwrite=True),
        label="chunk 0")
    assert time.monotonic() - started < 30
    assert record.method == "fsspec"
    assert attempts[0].method == "hdfs_put" and "timed out" in attempts[0].error
    assert gone(int(pid_file.read_text()))
