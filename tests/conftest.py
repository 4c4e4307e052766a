"""Shared fixtures: one real HiveServer2-protocol server per test session, on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest

# Airflow reads AIRFLOW_HOME on first import: keep tests away from ~/airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="impala-transfer-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_impala_transfer.core.common.connection import SourceConnector  # noqa: E402
from tests.support.local_hiveserver import LocalHiveServer
from tests.support.processes import free_port  # noqa: E402

EVENTS_ROWS = 20_000
EVEN_ROWS = 1_000


@pytest.fixture(scope="session")
def hiveserver(tmp_path_factory):
    """Started once per test run; seeded with every type and a synthetic table; stopped by PID."""
    workdir = tmp_path_factory.mktemp("hiveserver2")
    server = LocalHiveServer(workdir=workdir, port=free_port())
    server.start()
    try:
        server.seed_sample_table("default.sample_types")
        server.seed_range_table("default.events", EVENTS_ROWS)
        server.seed_range_table("default.even", EVEN_ROWS)
        server.execute("DROP TABLE IF EXISTS default.empty_table",
                       "CREATE TABLE default.empty_table (id INT, name STRING) USING parquet")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def connector(hiveserver) -> SourceConnector:
    kwargs = hiveserver.connect_kwargs()
    return SourceConnector(host=kwargs.pop("host"), port=kwargs.pop("port"), connect_timeout=20, options=kwargs)


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: a hung or mismatched server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on."""
    return free_port()


def source_rows(server: LocalHiveServer, sql: str) -> list[tuple]:
    """Rows as impyla's own (slow, per-value) conversion returns them: the reference."""
    return server.query(sql)


def read_files(paths: list[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p.removeprefix("file://")) for p in paths]
    return pa.concat_tables(tables) if tables else None


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# --- Local transfer targets: `hdfs`/`hadoop` executables, an sshd, an S3 endpoint ----------------
# (tests/support/local_hadoop.py, local_sshd.py, local_s3.py)

from tests.support.local_hadoop import HadoopTools  # noqa: E402
from tests.support.local_s3 import LocalS3  # noqa: E402
from tests.support.local_sshd import LocalSshd  # noqa: E402


@pytest.fixture(scope="session")
def hadoop_tools(tmp_path_factory) -> HadoopTools:
    """`hdfs` (real FsShell) and `hadoop` (fake distcp) in a bin dir; `.env` runs with them first on PATH."""
    workdir = tmp_path_factory.mktemp("hadoop-tools")
    return HadoopTools.install(workdir / "bin", workdir)


@pytest.fixture
def hadoop_env(hadoop_tools, monkeypatch, tmp_path) -> HadoopTools:
    """The shims on this test's PATH, with a distcp log of its own and no reject hook left over."""
    tools = hadoop_tools.with_distcp_log(tmp_path / "distcp.jsonl")
    for name, value in tools.additions.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FAKE_DISTCP_REJECT", raising=False)
    return tools


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (key login for the current user), started once, stopped by PID."""
    with LocalSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on 127.0.0.1 (in this process); credentials only via s3.storage_options()."""
    with LocalS3() as server:
        yield server
