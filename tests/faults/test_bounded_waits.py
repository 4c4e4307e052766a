"""Every wait on a tool or a server is bounded: a stalled ``hdfs dfs -cat`` during verification,
a runner given no timeout at all, a source server that stops answering in the middle of a session.
Real processes: the stalled server is the session's HiveServer2 frozen with SIGSTOP."""

from __future__ import annotations

import os
import signal
import time

import pytest

from airflow_provider_impala_transfer.core.common.connection import SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.errors import CommandFailed, SourceError
from airflow_provider_impala_transfer.core.transfer import commands
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell


def test_a_stalled_read_back_is_stopped_at_its_deadline(tmp_path):
    """`hdfs dfs -cat` that sends a few bytes and then hangs (a DataNode gone quiet)."""
    stalled = tmp_path / "hdfs"
    stalled.write_text("#!/bin/sh\nprintf 'abc'\nexec sleep 300\n")
    stalled.chmod(0o755)
    shell = HdfsShell(hdfs_bin=str(stalled), runner=CommandRunner(timeout=2))
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out") as failure:
        shell.sha256(["hdfs://cluster2/x/chunk-00000-part-00000.parquet"], [1000])
    assert time.monotonic() - started < 10
    assert failure.value.timed_out


def test_a_runner_without_a_timeout_still_has_one(monkeypatch):
    monkeypatch.setattr(commands, "DEFAULT_TIMEOUT", 1.0)
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out"):
        CommandRunner().run(["sleep", "30"])
    assert time.monotonic() - started < 10


@pytest.mark.server
def test_a_source_that_stops_answering_mid_session_fails_within_the_rpc_timeout(hiveserver):
    kwargs = hiveserver.connect_kwargs()
    connector = SourceConnector(host=kwargs.pop("host"), port=kwargs.pop("port"), connect_timeout=20,
                                rpc_timeout=3, options=kwargs)
    with connector.session() as cursor:
        run_server_call(connector, "first query", lambda: cursor.execute("SELECT 1"))
        cursor.fetchall()
        os.kill(hiveserver.pid, signal.SIGSTOP)  # the server process freezes, its socket stays open
        started = time.monotonic()
        try:
            with pytest.raises(SourceError, match=r"second query failed on 127\.0\.0\.1:\d+: read timeout"):
                run_server_call(connector, "second query", lambda: cursor.execute("SELECT 2"))
        finally:
            os.kill(hiveserver.pid, signal.SIGCONT)
        assert time.monotonic() - started < 20
