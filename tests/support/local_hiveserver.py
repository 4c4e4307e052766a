"""A real HiveServer2-protocol server on 127.0.0.1 for demos and tests.

Impala itself does not run on a laptop, but the Spark Thrift Server shipped inside the ``pyspark``
wheel speaks the same HiveServer2 protocol that impyla (and so ``ImpalaHook``) uses. This module
starts one, waits until it answers a query, seeds a sample table holding every type users move,
and stops it again by its PID (never by process name).

Storage. Given a :class:`~tests.support.local_hdfs.LocalHadoop` (``hadoop=``), the server is a client
of both local HDFS clusters, as an Impala daemon on the source cluster would be:

* Spark's launcher puts ``$HADOOP_CONF_DIR`` on the driver's class path (``spark-class`` ->
  ``org.apache.spark.launcher.AbstractCommandBuilder.buildClassPath``), so the server is started with
  ``HADOOP_CONF_DIR`` = the LocalHadoop's client configuration: ``core-site.xml``/``hdfs-site.xml``
  name both nameservices, ``hdfs://cluster1/...`` and ``hdfs://cluster2/...`` resolve inside Spark,
  and ``fs.defaultFS`` is ``hdfs://cluster1``.
* The warehouse is ``hdfs://cluster1/warehouse`` (``spark.sql.warehouse.dir``): managed tables are
  written there, e.g. ``hdfs://cluster1/warehouse/events``. Spark writes with cluster1's own block
  size (``spark.hadoop.dfs.blocksize``), as a source cluster's own clients do, except for Parquet
  files: Parquet's writer creates them with its row-group size (128 MiB) as their block size.
* Spark reads and writes as the OS user (``$HADOOP_USER_NAME`` if set), an ordinary HDFS user,
  whoever logs in (``hive.server2.enable.doAs=false``, as impalad acts as ``impala``): LocalHadoop
  opens ``/`` (0777) and ``/tmp`` (1777, where Hive keeps its scratch directory ``/tmp/hive``).

Without one (``hadoop=None``, the default) the server knows no HDFS: ``HADOOP_CONF_DIR`` is removed
from its environment and the warehouse is the local directory ``<workdir>/warehouse``.

Kerberos. Given a :class:`~tests.support.local_kdc.LocalKdc` (``kdc=``), the server authenticates
sessions by Kerberos (``hive.server2.authentication=KERBEROS``) as ``hive/localhost@<realm>``, from a
keytab of its own under ``workdir``, with Hadoop security on in its JVM
(``spark.hadoop.hadoop.security.authentication=kerberos``; without it Hive's SASL server has no
Kerberos login) and the KDC's krb5.conf (``-Djava.security.krb5.conf``). Clients connect to
``localhost`` with ``auth_mechanism=GSSAPI``, ``kerberos_service_name=hive`` and a ticket in
``KRB5CCNAME``; ``current_user()`` is then the ticket's short name. Verified with the Spark Thrift
Server of pyspark 4.3.0, MIT krb5 1.20 and impyla 0.24 with the ``kerberos`` module: up in ~38 s
while another test run used both cores.

Usage::

    python -m tests.support.local_hiveserver start --workdir .demo/hs2 [--hadoop-workdir .demo/hadoop]
    python -m tests.support.local_hiveserver seed --port 10000
    python -m tests.support.local_hiveserver stop --workdir .demo/hs2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.processes import alive, free_port, stop_process_group, tail

if TYPE_CHECKING:
    from tests.support.local_hdfs import LocalHadoop
    from tests.support.local_kdc import LocalKdc

KERBEROS_SERVICE = "hive"
KERBEROS_HOST = "localhost"  # the principal's host: what clients connect to (no DNS canonicalisation)

STATE_FILE = "server.json"
SAMPLE_TABLE = "default.sample_types"

# Rows of the sample table: every type users move, NULL in every column, unicode, empty and very
# long strings, sub-second timestamps, extreme integers and decimals.
SAMPLE_DDL = """
CREATE TABLE {table} (
  id INT, c_tinyint TINYINT, c_smallint SMALLINT, c_int INT, c_bigint BIGINT,
  c_float FLOAT, c_double DOUBLE, c_dec18 DECIMAL(18,2), c_dec38 DECIMAL(38,10),
  c_string STRING, c_bool BOOLEAN, c_date DATE, c_ts TIMESTAMP
) USING parquet
"""
SAMPLE_ROWS = [
    "(1, 1, 1, 1, 1, 1.5, 1.25, 1.10, 1.0000000001, 'plain ascii', true, DATE '2024-01-31', "
    "TIMESTAMP '2024-01-31 12:34:56.123456')",
    "(2, -128, -32768, -2147483648, -9223372036854775808, -3.25, -1.0E300, "
    "-9999999999999999.99, -9999999999999999999999999999.9999999999, 'Grüße, 東京 🚀', false, "
    "DATE '1900-01-01', TIMESTAMP '1900-01-01 00:00:00.000001')",
    "(3, 127, 32767, 2147483647, 9223372036854775807, 3.4028234E38, 1.7976931348623157E308, "
    "9999999999999999.99, 9999999999999999999999999999.9999999999, '', true, DATE '9999-12-31', "
    "TIMESTAMP '9999-12-31 23:59:59.999999')",
    "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(5, 0, 0, 0, 0, 0.0, 0.1, 0.01, 0.0000000001, repeat('long-', 20000), false, "
    "DATE '1970-01-01', TIMESTAMP '1970-01-01 00:00:00.5')",
    "(6, 7, 7, 7, 12345678901234, -0.0, 2.5E-308, 123.45, 12345.6789012345, "
    "'quote '' and \\\\ backslash and \\n newline and ; semicolon', true, DATE '2000-02-29', "
    "TIMESTAMP '2000-02-29 23:59:59.9')",
]


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class LocalHiveServer:
    """One Spark Thrift Server process with its own Derby metastore under ``workdir``.

    The warehouse is ``hdfs://cluster1/warehouse`` when ``hadoop`` is given, else ``<workdir>/warehouse``
    (``warehouse_dir`` overrides either).
    """

    workdir: Path
    port: int
    pid: int | None = None
    transport_mode: str = "binary"  # or "http" (path "cliservice")
    authentication: str = "NONE"  # NONE = SASL PLAIN with any user/password; or NOSASL
    driver_memory: str = "2g"
    hadoop: LocalHadoop | None = None  # its client configuration (HADOOP_CONF_DIR); None = no HDFS
    warehouse_dir: str | None = None
    ui_port: int | None = None  # Spark's web UI and REST API on 127.0.0.1 (running jobs); None = off
    kdc: LocalKdc | None = None  # sessions authenticated by Kerberos (GSSAPI) in this KDC's realm

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def warehouse(self) -> str:
        """Where managed tables go: ``hdfs://cluster1/warehouse``, or a local directory without HDFS."""
        if self.warehouse_dir:
            return self.warehouse_dir
        if self.hadoop is not None:
            return f"{self.hadoop.source.uri}/warehouse"
        return str(Path(self.workdir) / "warehouse")

    def hadoop_conf(self) -> list[str]:
        """``--conf spark.hadoop.*`` settings on top of HADOOP_CONF_DIR's files (none without HDFS)."""
        if self.hadoop is None:
            return []
        # The client configuration's dfs.blocksize is the target's (see local_hdfs.py): the source's
        # server writes with the source cluster's own block size.
        return ["--conf", f"spark.hadoop.dfs.blocksize={self.hadoop.source.block_size}"]

    @property
    def principal(self) -> str | None:
        return None if self.kdc is None else self.kdc.principal(f"{KERBEROS_SERVICE}/{KERBEROS_HOST}")

    @property
    def keytab(self) -> Path:
        return self.workdir / "hive.keytab"

    def kerberos_conf(self) -> list[str]:
        if self.kdc is None:
            return []
        # --principal/--keytab: the server's own HDFS access (its warehouse on a Kerberized cluster1)
        # logs in from the keytab and renews from it, as a production HiveServer2 does.
        return ["--principal", self.principal, "--keytab", str(self.keytab),
                "--conf", "spark.hadoop.hadoop.security.authentication=kerberos",
                "--hiveconf", f"hive.server2.authentication.kerberos.principal={self.principal}",
                "--hiveconf", f"hive.server2.authentication.kerberos.keytab={self.keytab}"]

    def command(self) -> list[str]:
        home = pyspark_home()
        w = self.workdir
        krb5 = f" -Djava.security.krb5.conf={self.kdc.krb5_conf}" if self.kdc is not None else ""
        return [
            str(home / "bin" / "spark-submit"),
            "--master", "local[2]",
            "--driver-memory", self.driver_memory,
            "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
            "--conf", "spark.sql.hive.thriftServer.singleSession=true",
            "--conf", "spark.sql.thriftServer.incrementalCollect=true",
            "--conf", f"spark.sql.warehouse.dir={self.warehouse}",
            *self.hadoop_conf(),
            *(["--conf", "spark.ui.enabled=true", "--conf", f"spark.ui.port={self.ui_port}",
               "--conf", "spark.port.maxRetries=0"] if self.ui_port else ["--conf", "spark.ui.enabled=false"]),
            "--conf", "spark.sql.session.timeZone=UTC",
            "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={w / 'derby'} -Duser.timezone=UTC{krb5}",
            *self.kerberos_conf(),
            "--hiveconf", f"hive.server2.thrift.port={self.port}",
            "--hiveconf", f"hive.server2.thrift.http.port={self.port}",
            "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
            "--hiveconf", f"hive.server2.transport.mode={self.transport_mode}",
            "--hiveconf", f"hive.server2.authentication={'KERBEROS' if self.kdc else self.authentication}",
            # Every file operation as the server's own user, as impalad does: with Hive's default
            # (doAs=true) the driver acts as the session user ("airflow") and its tasks as the OS
            # user, and HDFS permissions then refuse the tasks' writes into the driver's directories.
            "--hiveconf", "hive.server2.enable.doAs=false",
            "--hiveconf",
            f"javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={w / 'derby' / 'metastore_db'};create=true",
            "spark-internal",
        ]

    def start(self, timeout: float = 120.0) -> LocalHiveServer:
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise RuntimeError("java not found on PATH: install a Java 17 runtime (openjdk-17-jre-headless)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "derby").mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(SPARK_HOME=str(pyspark_home()), SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
        env.pop("PYSPARK_PYTHON", None)
        if self.kdc is not None:
            self.kdc.add_principal(self.principal, self.keytab)
            env.update(self.kdc.env())
            self.kdc.kinit(self.principal, self.keytab, self.probe_ccache)  # what connect() logs in with
        if self.hadoop is not None:  # on the driver's class path (Spark's launcher adds it)
            env["HADOOP_CONF_DIR"] = str(self.hadoop.conf_dir)
        else:
            env.pop("HADOOP_CONF_DIR", None)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches the JVM too
            )
        self.pid = proc.pid
        self._write_state()
        try:
            self._wait_until_ready(proc, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        # While the server starts, thrift logs an error for every refused connect: expected here.
        thrift_log = logging.getLogger("thrift.transport.TSocket")
        previous_level = thrift_log.level
        thrift_log.setLevel(logging.CRITICAL)
        try:
            self._poll_until_ready(proc, timeout)
        finally:
            thrift_log.setLevel(previous_level)

    def _poll_until_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"HiveServer2 exited with code {proc.returncode}; last log lines:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                self.query("SELECT 1")
                return
            except Exception as exc:  # not up yet
                last_error = exc
                time.sleep(0.5)
        raise TimeoutError(
            f"HiveServer2 on 127.0.0.1:{self.port} did not answer within {timeout:.0f}s "
            f"({last_error}); log:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def running_jobs(self) -> list[dict]:
        """The Spark jobs running now, from the UI's REST API (``ui_port`` must be set): what the
        server is really doing, whatever any client believes."""
        import urllib.request

        base = f"http://127.0.0.1:{self.ui_port}/api/v1/applications"
        with urllib.request.urlopen(base, timeout=10) as answer:
            [app] = json.load(answer)
        with urllib.request.urlopen(f"{base}/{app['id']}/jobs?status=running", timeout=10) as answer:
            return json.load(answer)

    def connect_kwargs(self) -> dict:
        kwargs: dict = {"host": "127.0.0.1", "port": self.port}
        if self.kdc is not None:  # the ticket comes from KRB5CCNAME
            kwargs.update(host=KERBEROS_HOST, auth_mechanism="GSSAPI", kerberos_service_name=KERBEROS_SERVICE)
        elif self.authentication == "NOSASL":
            kwargs["auth_mechanism"] = "NOSASL"
        else:
            kwargs.update(auth_mechanism="PLAIN", user="airflow", password="airflow")
        if self.transport_mode == "http":
            kwargs.update(use_http_transport=True, http_path="cliservice")
        return kwargs

    def airflow_connection_json(self) -> str:
        """An Airflow ``impala_transfer`` connection to this server, as JSON for ``AIRFLOW_CONN_*``."""
        kwargs = self.connect_kwargs()
        extra = {k: v for k, v in kwargs.items() if k not in ("host", "port", "user", "password")}
        return json.dumps({"conn_type": "impala_transfer", "host": kwargs["host"], "port": kwargs["port"],
                           "login": kwargs.get("user"), "password": kwargs.get("password"), "extra": extra})

    @property
    def probe_ccache(self) -> Path:
        return self.workdir / "ccache-probe"

    def connect(self):
        """A session for the tests' own setup (seeding, probes); on a Kerberized server with the
        server principal's ticket, set in this process's environment only while the session opens."""
        from impala.dbapi import connect

        if self.kdc is None:
            return connect(timeout=60, **self.connect_kwargs())
        saved = {name: os.environ.get(name) for name in ("KRB5_CONFIG", "KRB5CCNAME")}
        os.environ.update(self.kdc.env(self.probe_ccache))
        try:
            return connect(timeout=60, **self.connect_kwargs())
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def query(self, sql: str) -> list[tuple]:
        conn = self.connect()
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description and cursor.description[0][1] else []
        finally:
            cursor.close()  # closed here, not at exit against a stopped server (thrift retry noise)
            conn.close()

    def execute(self, *statements: str) -> None:
        """Run DDL/DML. Never fetch after DDL: the server reports a description but no columns."""
        conn = self.connect()
        cursor = conn.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()  # closed here, not at exit against a stopped server (thrift retry noise)
            conn.close()

    def seed_sample_table(self, table: str = SAMPLE_TABLE) -> str:
        self.execute(
            f"DROP TABLE IF EXISTS {table}",
            SAMPLE_DDL.format(table=table),
            f"INSERT INTO {table} VALUES " + ",\n".join(SAMPLE_ROWS),
        )
        return table

    def seed_range_table(self, table: str, rows: int) -> str:
        """A synthetic table of ``rows`` rows (9 columns, NULLs in one), generated server-side."""
        self.execute(
            f"DROP TABLE IF EXISTS {table}",
            f"""CREATE TABLE {table} USING parquet AS
            SELECT id,
                   CAST(id % 100 AS INT) AS small_int,
                   id * 0.5D AS amount_double,
                   concat('name-', CAST(id AS STRING)) AS name,
                   CAST(id AS DECIMAL(18,2)) / 100 AS amount_decimal,
                   timestamp_micros(1700000000000000 + id * 1000001) AS event_ts,
                   date_add(DATE '2020-01-01', CAST(id % 3000 AS INT)) AS event_date,
                   id % 2 = 0 AS is_even,
                   CASE WHEN id % 7 = 0 THEN NULL ELSE id * 3 END AS maybe_null
            FROM range({int(rows)})""",
        )
        return table

    def stop(self, timeout: float = 30.0) -> None:
        if self.pid is None:
            return
        stop_process_group(self.pid, timeout)
        self.pid = None
        (self.workdir / STATE_FILE).unlink(missing_ok=True)

    def _write_state(self) -> None:
        state = {"pid": self.pid, "port": self.port, "transport_mode": self.transport_mode,
                 "authentication": self.authentication, "warehouse_dir": self.warehouse,
                 "hadoop_workdir": str(self.hadoop.workdir) if self.hadoop is not None else None}
        (self.workdir / STATE_FILE).write_text(json.dumps(state))

    @classmethod
    def from_state(cls, workdir: Path) -> LocalHiveServer | None:
        try:
            state = json.loads((workdir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        hadoop = None
        if state.get("hadoop_workdir"):
            from tests.support.local_hdfs import LocalHadoop

            hadoop = LocalHadoop.from_state(Path(state["hadoop_workdir"]))
        return cls(workdir=workdir, port=state["port"], pid=state["pid"],
                   transport_mode=state["transport_mode"], authentication=state["authentication"],
                   hadoop=hadoop, warehouse_dir=state.get("warehouse_dir"))

    def __enter__(self) -> LocalHiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "seed", "status"])
    parser.add_argument("--workdir", type=Path, default=Path(".demo/hiveserver2"))
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--range-rows", type=int, default=0, help="also seed default.events with N rows")
    parser.add_argument("--hadoop-workdir", type=Path, default=None,
                        help="a running `python -m tests.support.local_hdfs start --workdir DIR`: "
                             "the server uses its HDFS clusters, warehouse on hdfs://cluster1/warehouse")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    server = LocalHiveServer.from_state(workdir)
    if args.action == "start":
        if server is not None and server.pid and alive(server.pid):
            print(json.dumps({"port": server.port, "pid": server.pid, "already_running": True}))
            return 0
        hadoop = None
        if args.hadoop_workdir is not None:
            from tests.support.local_hdfs import LocalHadoop

            hadoop = LocalHadoop.from_state(args.hadoop_workdir.resolve())
            if hadoop is None:
                print(f"no Hadoop recorded in {args.hadoop_workdir}: start it first "
                      f"(python -m tests.support.local_hdfs start --workdir {args.hadoop_workdir})", file=sys.stderr)
                return 1
        server = LocalHiveServer(workdir=workdir, port=args.port or free_port(), hadoop=hadoop).start()
        print(json.dumps({"port": server.port, "pid": server.pid, "warehouse": server.warehouse}))
        return 0
    if server is None:
        print(f"no server recorded in {workdir}", file=sys.stderr)
        return 1 if args.action != "stop" else 0
    if args.action == "stop":
        server.stop()
    elif args.action == "seed":
        server.seed_sample_table()
        if args.range_rows:
            server.seed_range_table("default.events", args.range_rows)
    else:
        print(json.dumps({"port": server.port, "pid": server.pid, "alive": alive(server.pid)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
