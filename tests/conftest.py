"""Shared fixtures, each started once per test session on 127.0.0.1 and stopped by PID:

* ``local_hadoop``: two real HDFS clusters (Hadoop 3.5.0), ``hdfs://cluster1`` (source, 1 MiB blocks)
  and ``hdfs://cluster2`` (target, 2 MiB blocks), with the generated ``hdfs``/``hadoop`` clients
  (real FsShell, real DistCp on the local job runner); ``hadoop_env`` puts those clients on a
  test's PATH.
* ``hiveserver``: a real HiveServer2-protocol server (Spark Thrift Server) whose warehouse, and so
  every seeded table, is on ``hdfs://cluster1/warehouse``; it resolves ``hdfs://cluster2`` too.
* ``sshd``, ``s3`` and ``kdc``: an OpenSSH server, moto's S3 server and an MIT Kerberos KDC.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# Airflow reads AIRFLOW_HOME on first import: keep tests away from ~/airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="impala-transfer-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

# A script that starts the tests in the background (`make test &`) leaves SIGINT ignored, and every
# child inherits that: the Ctrl-C tests' processes would never see their KeyboardInterrupt. A
# handler (unlike "ignored") is reset to the default in a child, as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from airflow_provider_impala_transfer.core.common.connection import SourceConnector  # noqa: E402
from tests.support.local_hdfs import MiB, LocalHadoop  # noqa: E402
from tests.support.local_hiveserver import LocalHiveServer  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

EVENTS_ROWS = 20_000
EVEN_ROWS = 1_000
TICKET_LIFETIME = 40  # seconds: the tickets of the workers' principals, shorter than a run of the example DAG


@pytest.fixture(scope="session")
def local_hadoop(tmp_path_factory) -> Iterator[LocalHadoop]:
    """cluster1 (source, 1 MiB blocks) and cluster2 (target, 2 MiB blocks): one pair per test session.

    Four daemon JVMs (NameNode + DataNode per cluster, ``-Xmx384m`` each), started on free ports
    (~8 s on 2 cores, formats included) and stopped by PID at the end of the session. Tests share
    them: write under a path of your own (e.g. named after the test). The client configuration
    writes 2 MiB blocks (cluster2's), see tests/support/local_hdfs.py.

    cluster2's daemons run with ``dfs.checksum.combine.mode=COMPOSITE_CRC``: it changes nothing a
    client sees (client-side setting; WebHDFS ignores it), and tests/test_local_hdfs.py shows that.
    """
    hadoop = LocalHadoop(tmp_path_factory.mktemp("hadoop"),
                         block_sizes={"cluster1": 1 * MiB, "cluster2": 2 * MiB},
                         checksum_combine_modes={"cluster2": "COMPOSITE_CRC"})
    hadoop.start()
    try:
        yield hadoop
    finally:
        hadoop.stop()


@pytest.fixture
def hadoop_env(local_hadoop, monkeypatch) -> LocalHadoop:
    """The session's real ``hdfs``/``hadoop`` first on this test's PATH, ``HADOOP_CONF_DIR`` set.

    Subprocesses that inherit ``os.environ`` (the transfer methods' ``hdfs dfs`` and ``hadoop
    distcp``, ``airflow`` CLI runs) reach both clusters as ``hdfs://cluster1`` and ``hdfs://cluster2``,
    as the ordinary user (any ``HADOOP_USER_NAME`` is removed). FsShell still takes ``file://`` URIs.
    Returns the LocalHadoop: ``.source``/``.target`` clusters, ``.hdfs(...)``, ``.hadoop(...)``,
    ``.run(tool, ..., superuser=True)``, ``.env()``.
    """
    for name, value in local_hadoop.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HADOOP_USER_NAME", raising=False)
    return local_hadoop


@pytest.fixture(scope="session")
def hiveserver(tmp_path_factory, local_hadoop):
    """Started once per test run; warehouse on hdfs://cluster1/warehouse; seeded with every type and
    synthetic tables (their files on cluster1); stopped by PID."""
    workdir = tmp_path_factory.mktemp("hiveserver2")
    server = LocalHiveServer(workdir=workdir, port=free_port(), hadoop=local_hadoop)
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


# --- Other local servers: an sshd, an S3 endpoint, a KDC (tests/support/local_sshd.py, local_s3.py, local_kdc.py) --

from tests.support.local_kdc import LocalKdc  # noqa: E402
from tests.support.local_s3 import LocalS3  # noqa: E402
from tests.support.local_sshd import LocalSshd  # noqa: E402


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (key login for the current user), started once, stopped by PID."""
    with LocalSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def kdc(tmp_path_factory):
    """A real MIT KDC for realm IMPALA-TRANSFER.TEST on 127.0.0.1, started once, stopped by PID."""
    with LocalKdc(tmp_path_factory.mktemp("kdc")) as server:
        _started_kerberos["kdc"] = server
        yield server


@pytest.fixture(scope="session")
def kerberized_hiveserver(tmp_path_factory, kdc, kerberized_hadoop):
    """A second HiveServer2-protocol server that authenticates sessions by Kerberos (GSSAPI) as
    hive/localhost in the ``kdc``'s realm, with its warehouse on the Kerberized cluster1 (its own
    HDFS access from the same keytab); 1 GiB driver; started once, stopped by PID."""
    server = LocalHiveServer(workdir=tmp_path_factory.mktemp("hiveserver2-kerberos"), port=free_port(),
                             driver_memory="1g", kdc=kdc, hadoop=kerberized_hadoop)
    with server:
        _started_kerberos["kerberized_hiveserver"] = server
        yield server


@pytest.fixture(scope="session")
def kerberized_events(kerberized_hiveserver):
    """The Kerberized server with default.events (EVENTS_ROWS rows) on the Kerberized cluster1,
    written by the server as hive/localhost; seeded once per session."""
    kerberized_hiveserver.seed_range_table("default.events", EVENTS_ROWS)
    return kerberized_hiveserver


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on 127.0.0.1 (in this process); credentials only via s3.storage_options()."""
    with LocalS3() as server:
        yield server


# --- A distributed Airflow: PostgreSQL, Redis, CeleryExecutor, two isolated workers (tests/support/airflow_deployment.py) --

from tests.support.airflow_deployment import AirflowDeployment, transfer_example_env  # noqa: E402


# The Kerberized stack (a KDC, four secure HDFS daemons, a Spark Thrift Server) and the Celery
# deployment on it: their tests run first, one after the other, the deployment's last, and all of it
# stops (in this order) after the last of them instead of idling beside every later test.
KERBEROS_FIXTURES = ("airflow_deployment", "kerberized_hiveserver", "kerberized_yarn", "kerberized_hadoop", "kdc")
_started_kerberos: dict[str, object] = {}


def _uses_kerberos(item) -> bool:
    """Names a fixture of the stack, or is marked ``kerberos`` (it asks for them by name while it runs)."""
    return bool(set(getattr(item, "fixturenames", ())) & set(KERBEROS_FIXTURES)) or \
        item.get_closest_marker("kerberos") is not None


def pytest_collection_modifyitems(items):
    """The Kerberized stack's tests first, those of the deployment on it last among them (then all of
    it stops), then every other test."""
    items.sort(key=lambda item: 2 if not _uses_kerberos(item)
               else 1 if "airflow_deployment" in getattr(item, "fixturenames", ()) else 0)


def pytest_runtest_teardown(item, nextitem):
    """After the last test that uses the Kerberized stack, stop the deployment, then the stack; the
    fixtures' own stop at the end of the session then finds nothing running."""
    if _uses_kerberos(item) and (nextitem is None or not _uses_kerberos(nextitem)):
        for name in KERBEROS_FIXTURES:
            server = _started_kerberos.pop(name, None)
            if server is not None:
                server.stop()


@pytest.fixture(scope="session")
def airflow_deployment(tmp_path_factory, kerberized_events, kerberized_hadoop, kdc) -> Iterator[AirflowDeployment]:
    """api-server, scheduler, dag-processor and Celery workers ``worker-1``/``worker-2`` on PostgreSQL
    and Redis, all on 127.0.0.1, under ``[core] security = kerberos`` with an ``airflow kerberos``
    beside each worker, the transfer example DAG wired to this session's Kerberized stack; the
    workers' principal ``airflow-workers`` gets tickets of TICKET_LIFETIME seconds. Started once
    (~1 min), stopped by PID with the Kerberized stack. How a browser logs in: the module's docstring."""
    workdir = tmp_path_factory.mktemp("airflow-celery")
    keytab = workdir / "airflow-workers.keytab"
    principal = kdc.add_principal("airflow-workers", keytab, max_life=TICKET_LIFETIME)
    deployment = AirflowDeployment(workdir, env=transfer_example_env(kerberized_events, kerberized_hadoop, kdc),
                                   dag_files=[repo_root() / "dags_examples" / "impala_transfer_example.py"],
                                   principal=principal, keytab=keytab)
    with deployment:
        _started_kerberos["airflow_deployment"] = deployment
        yield deployment


# --- Kerberized HDFS (issue 19 §1): the same two clusters in Hadoop secure mode (tests/support/local_hdfs.py, kdc=) --

@pytest.fixture(scope="session")
def kerberized_hadoop(tmp_path_factory, kdc) -> Iterator[LocalHadoop]:
    """cluster1 (realm IMPALA-TRANSFER.TEST, services ``nn|dn|HTTP/localhost``) and cluster2 (realm
    TARGET.IMPALA-TRANSFER.TEST, which the session's ``kdc`` is made to serve too, with a two-way
    trust; services ``nn|dn|HTTP/cluster2.target.impala-transfer.test``) in Hadoop secure mode:
    Kerberos RPC, SASL data transfer, WebHDFS behind SPNEGO. Four more daemon JVMs (``-Xmx384m``),
    started once per session for the tests that ask, stopped by PID. Clients need a ticket
    (``KRB5CCNAME``); ``run(..., superuser=True)`` uses the ticket of ``hdfs@IMPALA-TRANSFER.TEST``."""
    hadoop = LocalHadoop(tmp_path_factory.mktemp("hadoop-kerberos"),
                         block_sizes={"cluster1": 1 * MiB, "cluster2": 2 * MiB}, kdc=kdc)
    hadoop.start()
    _started_kerberos["kerberized_hadoop"] = hadoop
    try:
        yield hadoop
    finally:
        hadoop.stop()


# --- YARN (tests/support/local_yarn.py): DistCp as a real MapReduce job, for the tests that ask --

from tests.support.local_yarn import LocalYarn  # noqa: E402


@pytest.fixture(scope="session")
def local_yarn(tmp_path_factory, local_hadoop) -> Iterator[LocalYarn]:
    """A ResourceManager, a NodeManager and the MapReduce JobHistory server (three JVMs, ``-Xmx256m``
    each, ~12 s to start) on the session's plain ``local_hadoop``, started only when a test asks for it
    and stopped by PID at the end of the session. ``local_hadoop``'s own configuration keeps the local
    job runner; ``local_yarn.conf_dir`` is a client configuration that sends jobs to YARN:
    ``local_yarn.distcp(...)`` (or ``local_hadoop.hadoop("distcp", ..., env={"HADOOP_CONF_DIR":
    str(local_yarn.conf_dir)})``), ``local_yarn.yarn("application", "-kill", app_id)``,
    ``local_yarn.app(app_id)`` (the RM's record), ``local_yarn.job_counters(job_id)`` (JobHistory)."""
    yarn = LocalYarn(local_hadoop, tmp_path_factory.mktemp("yarn"))
    yarn.start()
    try:
        yield yarn
    finally:
        yarn.stop()


@pytest.fixture(scope="session")
def kerberized_yarn(tmp_path_factory, kerberized_hadoop) -> Iterator[LocalYarn]:
    """``local_yarn`` on the Kerberized clusters: ``rm|nm|jhs/localhost@IMPALA-TRANSFER.TEST`` from one
    keytab, SPNEGO (``HTTP/localhost``) on the RM, NodeManager and JobHistory web servers (``/jmx``
    open); ``app()``/``job_counters()`` ask with SPNEGO as ``hdfs@IMPALA-TRANSFER.TEST``. A job runs as
    the submitting principal, on delegation tokens of both clusters that the RM renews as ``rm``.
    Started for the tests that ask, stopped by PID with the rest of the Kerberized stack."""
    yarn = LocalYarn(kerberized_hadoop, tmp_path_factory.mktemp("yarn-kerberos"))
    yarn.start()
    _started_kerberos["kerberized_yarn"] = yarn
    try:
        yield yarn
    finally:
        yarn.stop()
