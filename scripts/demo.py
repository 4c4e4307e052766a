"""`make demo`: the transfer example DAG end to end, cluster1 -> cluster2 by distcp, on embedded defaults.

Starts, on 127.0.0.1 and stopped by PID at the end:

* two real HDFS clusters (Hadoop 3.5.0: a NameNode and a DataNode each), ``hdfs://cluster1`` (the
  source, 1 MiB blocks) and ``hdfs://cluster2`` (the target, 2 MiB blocks), with the real ``hdfs``,
  ``hadoop`` and ``yarn`` clients on PATH;
* a YARN (a ResourceManager, a NodeManager and the MapReduce JobHistory server): every chunk's
  distcp is a MapReduce application there, and the summary lists them;
* a HiveServer2-protocol server (Spark Thrift Server; Impala cannot run here) whose warehouse is on
  cluster1, seeded with ``default.events``;

then runs ``airflow dags test impala_transfer_example`` (SQLite metadata DB under .demo/):

  extract (parallel chunks) -> per chunk: distcp -> hdfs_put -> ... -> publish -> target table -> reconcile

Every chunk goes by distcp, verified by HDFS's CRC32C, except one, made to fail for a real reason:
before the chunks are transferred, the demo creates chunk 1's staging directory on cluster1 as the
HDFS superuser, read-only, so cluster1's NameNode refuses distcp's staging of that chunk
("Permission denied") and hdfs put delivers it. The summary prints per chunk each method's state,
who delivered, and how the delivery was checked.

``--kerberos`` (``make demo KERBEROS=1``): the same run on a Kerberized stack. An MIT KDC serves two
realms that trust each other (cluster1 and the server in IMPALA-TRANSFER.TEST, cluster2 in
TARGET.IMPALA-TRANSFER.TEST), both clusters run in Hadoop secure mode (Kerberos RPC, SASL data
transfer, WebHDFS behind SPNEGO), the server accepts only GSSAPI sessions, and Airflow runs with
``[core] security = kerberos`` and its ticket renewer (``airflow kerberos``) beside the run; every
chunk goes by distcp across the realms. The summary names the principals that were used.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/support: the local servers

from airflow_provider_impala_transfer.core.common.records import FileEntry  # noqa: E402
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner  # noqa: E402
from airflow_provider_impala_transfer.core.transfer.layout import Run  # noqa: E402
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets  # noqa: E402
from tests.support.airflow_runs import latest_run  # noqa: E402
from tests.support.hdfs_files import hdfs_names, parquet_rows  # noqa: E402
from tests.support.local_hdfs import SUPERUSER, LocalHadoop, MiB  # noqa: E402
from tests.support.local_hiveserver import LocalHiveServer  # noqa: E402
from tests.support.local_kdc import LocalKdc  # noqa: E402
from tests.support.local_yarn import LocalYarn  # noqa: E402
from tests.support.processes import free_port, stop_process_group, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DAG_ID = "impala_transfer_example"
METHODS = ("distcp", "hdfs_put", "hdfs_cp", "scp")
TARGET = "hdfs://cluster2/data/events"
SOURCE_STAGING = "hdfs://cluster1/tmp/impala_transfer"
REFUSED_CHUNK = 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in default.events")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--date", default="2026-01-01", help="logical date = the target partition ds=<date>")
    parser.add_argument("--kerberos", action="store_true", help="the same on a Kerberized stack (two realms)")
    args = parser.parse_args()
    logging.getLogger("thrift").setLevel(logging.CRITICAL)  # no connection-retry noise from impyla's transport

    home = DEMO / "airflow"
    for stale in (home, DEMO / "hadoop", DEMO / "yarn", DEMO / "hiveserver2", DEMO / "extract", DEMO / "kdc"):
        shutil.rmtree(stale, ignore_errors=True)  # every demo starts from nothing
    home.mkdir(parents=True)
    kdc = None
    if args.kerberos:
        kdc = LocalKdc(DEMO / "kdc")
        step(f"starting an MIT Kerberos KDC for realm {kdc.realm} on 127.0.0.1")
        kdc.start()
    hadoop = LocalHadoop(DEMO / "hadoop", block_sizes={"cluster1": 1 * MiB, "cluster2": 2 * MiB}, kdc=kdc)
    step("starting two HDFS clusters (Hadoop 3.5.0): cluster1 = source, cluster2 = target"
         + (", in Hadoop secure mode, one realm each" if kdc else ""))
    server = yarn = None
    try:
        hadoop.start()
        for name, cluster in hadoop.clusters.items():
            step(f"  {name}: hdfs://{name} (NameNode 127.0.0.1:{cluster.rpc_address.split(':')[1]}, "
                 f"WebHDFS {cluster.webhdfs_address}, {cluster.block_size // MiB} MiB blocks)")
        yarn = LocalYarn(hadoop, DEMO / "yarn")
        step("starting YARN (ResourceManager, NodeManager, JobHistory server): distcp runs as MapReduce jobs")
        yarn.start()
        step(f"  ResourceManager {yarn.rm_web_url}, JobHistory {yarn.jhs_web_url}")
        server = LocalHiveServer(workdir=DEMO / "hiveserver2", port=free_port(), hadoop=hadoop, kdc=kdc)
        step(f"starting a HiveServer2-protocol server on 127.0.0.1:{server.port} (Spark Thrift Server), "
             f"warehouse {server.warehouse}" + (f", GSSAPI sessions only, as {server.principal}" if kdc else ""))
        server.start()
        step(f"seeding default.events ({args.rows:,} rows) on cluster1")
        server.seed_range_table("default.events", args.rows)
        env = airflow_env(home, hadoop, server)
        env.update(yarn.env())  # the workers' Hadoop configuration sends MapReduce jobs to YARN
        airflow = str(Path(sys.executable).with_name("airflow"))
        step(f"preparing the Airflow metadata DB (SQLite) in {home}")
        run([airflow, "db", "migrate"], env, quiet=True)
        conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": args.chunk_size,
                "method": "distcp", "target_path": TARGET}
        renewer = trap = None
        if kdc is not None:  # Airflow's way: [core] security = kerberos and its ticket renewer
            workers = kerberos_workers(env, kdc)
            step(f"airflow kerberos: the ticket renewer for {workers}, cache {env['AIRFLOW__KERBEROS__CCACHE']}")
            renewer = start_renewer(airflow, env)
        else:
            trap = StagingRefusal(hadoop, home / "airflow.db", {"ds": args.date})
            trap.start()
        step(f"airflow dags test {DAG_ID} {args.date} -c '{json.dumps(conf)}'")
        started = time.monotonic()
        try:
            result = run([airflow, "dags", "test", DAG_ID, args.date, "-c", json.dumps(conf)], env)
        finally:
            if renewer is not None:
                stop_process_group(renewer.pid, 10)
        elapsed = time.monotonic() - started
        if trap is not None:
            trap.stop()
        ok = result.returncode == 0
        published = f"{TARGET}/ds={args.date}"
        table_count = server.query(f"SELECT COUNT(*) FROM default.events_copy WHERE ds = '{args.date}'") if ok else None
        if ok and kdc is not None:  # WebHDFS wants SPNEGO here: ask the NameNode as the HDFS superuser
            listing = hadoop.hdfs("dfs", "-ls", "-C", published, superuser=True, check=True).stdout.split()
            files = [Path(p).name for p in listing if not Path(p).name.startswith((".", "_"))]
            owner = hadoop.hdfs("dfs", "-stat", "%u", f"{published}/*", superuser=True, check=True).stdout.split()
            rows = None
        elif ok:
            files, rows = hdfs_names(hadoop, published), parquet_rows(hadoop, published)
        applications = sorted((app["name"].rsplit(":", 1)[-1], app) for app in yarn.apps()
                              if app["name"].startswith(f"distcp: impala-transfer:{DAG_ID}:"))
    finally:
        step("stopping the local servers")
        if server is not None:
            server.stop()
        if yarn is not None:
            yarn.stop()
        hadoop.stop()
        if kdc is not None:
            kdc.stop()

    run_state, tasks = latest_run(home / "airflow.db", DAG_ID)
    if not ok or run_state != "success":
        print(result.stdout[-6000:], result.stderr[-6000:], sep="\n")
        print(f"\nDEMO FAILED: the DAG run ended {run_state!r}; see the Airflow output above.", file=sys.stderr)
        return 1
    labels, checks = chunk_labels(home / "airflow.db"), delivery_checks(home / "airflow.db")
    print("\n=== demo summary ===")
    print(f"DAG run: {run_state} in {elapsed:.1f}s (including Airflow start-up); source hdfs://cluster1, "
          f"target {TARGET}")
    width = max(len(label) for label in labels.values()) + 2
    print(f"\n{'chunk':<{width}}" + "".join(f"{m:<10}" for m in METHODS) + f"{'delivered by':<14}check")
    for index, label in sorted(labels.items()):
        states = [tasks.get((f"events.deliver.{m}", index), "-") for m in METHODS]
        winner = next((m for m, s in zip(METHODS, states) if s == "success"), "nobody")
        print(f"{label:<{width}}" + "".join(f"{s:<10}" for s in states) + f"{winner:<14}{checks.get(index, '-')}")
    print(f"\ndistcp on YARN ({len(applications)} MapReduce applications, one per chunk that distcp delivered "
          "or tried after staging):")
    for chunk, app in applications:
        seconds = (app["finishedTime"] - app["startedTime"]) / 1000
        print(f"  {chunk}: {app['id']} {app['state']}/{app['finalStatus']} in {seconds:.1f}s, queue {app['queue']}")
    if kdc is not None:
        source_realm, target_realm = hadoop.source.kerberos.realm, hadoop.target.kerberos.realm
        print(f"\nKerberos: realms {source_realm} (cluster1, the server, the workers) and {target_realm} "
              "(cluster2), trusting each other both ways; principals used:")
        print(f"  workers (Airflow's renewer, [kerberos] principal): {env['AIRFLOW__KERBEROS__PRINCIPAL']}: every "
              f"session, hdfs dfs, distcp, check and publish; owner of the published files on cluster2: "
              f"{', '.join(sorted(set(owner)))}")
        print(f"  the server: {server.principal} (GSSAPI sessions and its own HDFS access)")
        for name, cluster in hadoop.clusters.items():
            principals = ", ".join(cluster.kerberos.principal(service) for service in ("nn", "dn", "HTTP"))
            print(f"  {name}: {principals}")
        print(f"\npublished: {len(files)} files in {published} (cluster2)")
    else:
        refusal = re.search(r"(\w+: Permission denied: user=\S+, access=\w+, inode=\S+)",
                            result.stdout + result.stderr)
        print(f"\nchunk {REFUSED_CHUNK}: distcp failed for a real reason: its staging directory on cluster1 "
              f"({trap.path}) was created by the HDFS superuser '{SUPERUSER}', read-only, so cluster1's NameNode "
              "refused to stage the chunk; hdfs put then delivered it.")
        if refusal:
            print(f"  the hdfs client in the task log: {refusal.group(1)}")
        print(f"\npublished: {len(files)} files, {rows:,} rows in {published} (cluster2)")
    print(f"target table default.events_copy, partition ds={args.date}: COUNT(*) = {table_count[0][0]:,}")
    print(f"source COUNT(*) = {args.rows:,}; reconcile checked source == files == delivered before publishing, "
          "finalize checked published == table")
    print("check crc32c: each file's CRC32C computed by cluster2 (hdfs dfs -checksum, COMPOSITE_CRC) equals the "
          "one computed while extracting; nothing was read back.")
    return 0


def airflow_env(home: Path, hadoop: LocalHadoop, server: LocalHiveServer) -> dict[str, str]:
    impala = server.airflow_connection_json()
    webhdfs = hadoop.webhdfs_connection_json(hadoop.target)
    env = {**os.environ, **hadoop.env()}
    env.pop("HADOOP_USER_NAME", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags_examples"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_IMPALA_DEFAULT=impala,
        AIRFLOW_CONN_IMPALA_TARGET=impala,  # one server shows the target table (over hdfs://cluster2)
        AIRFLOW_CONN_TARGET_WEBHDFS=webhdfs,
        IMPALA_TRANSFER_OUTPUT_DIR=str(DEMO / "extract"),
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=SOURCE_STAGING,
        IMPALA_TRANSFER_WEBHDFS_CONN_ID="target_webhdfs",
        IMPALA_TRANSFER_TABLE_DIALECT="hive",
        IMPALA_TRANSFER_TARGET_TABLE="default.events_copy",
    )
    return env


def kerberos_workers(env: dict[str, str], kdc: LocalKdc) -> str:
    """The workers' principal and keytab, and Airflow's Kerberos settings in ``env``."""
    keytab = DEMO / "kdc" / "airflow.keytab"
    principal = kdc.add_principal("airflow", keytab)
    impala = json.loads(env["AIRFLOW_CONN_IMPALA_DEFAULT"])
    impala["extra"] = {"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive"}
    env.pop("KRB5CCNAME", None)  # Airflow sets it to [kerberos] ccache
    env.update(kdc.env(), AIRFLOW__CORE__SECURITY="kerberos", AIRFLOW__KERBEROS__PRINCIPAL=principal,
               AIRFLOW__KERBEROS__KEYTAB=str(keytab), AIRFLOW__KERBEROS__CCACHE=str(DEMO / "kdc" / "airflow.ccache"),
               AIRFLOW__KERBEROS__INCLUDE_IP="False",
               AIRFLOW_CONN_IMPALA_DEFAULT=json.dumps(impala), AIRFLOW_CONN_IMPALA_TARGET=json.dumps(impala),
               IMPALA_TRANSFER_WEBHDFS_CONN_ID="")  # cluster2's metadata steps by hdfs dfs, with the ticket
    return principal


def start_renewer(airflow: str, env: dict[str, str]) -> subprocess.Popen:
    """``airflow kerberos`` in its own process group (stopped by PID), once its first ticket is there."""
    log = open(DEMO / "kdc" / "renewer.log", "wb")  # noqa: SIM115 - the renewer writes it while it runs
    renewer = subprocess.Popen([airflow, "kerberos"], env=env, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    ccache = Path(env["AIRFLOW__KERBEROS__CCACHE"])
    wait_for(lambda: ccache.exists() or renewer.poll() is not None, 60, "the renewer's first ticket", 0.2)
    if renewer.poll() is not None:
        raise SystemExit(f"airflow kerberos exited: {(DEMO / 'kdc' / 'renewer.log').read_text()[-3000:]}")
    return renewer


class StagingRefusal:
    """Once the run exists (its id is in the metadata DB; chunks transfer only after every chunk is
    extracted), create chunk 1's distcp staging directory on cluster1 as the HDFS superuser,
    read-only: its parent belongs to the ordinary user, so only that chunk is refused."""

    def __init__(self, hadoop: LocalHadoop, db: Path, partition: dict[str, str]):
        self.hadoop, self.db, self.partition, self.path = hadoop, db, partition, "(not created)"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            run_id = self._run_id()
            if run_id:
                self._refuse(run_id)
                return

    def _run_id(self) -> str | None:
        try:
            with sqlite3.connect(self.db, timeout=1) as db:
                row = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                                 (DAG_ID,)).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def _refuse(self, run_id: str) -> None:
        distcp = TransferTargets(hdfs_root=TARGET, source_hdfs_path=SOURCE_STAGING).method("distcp", CommandRunner())
        run = Run(run_id, self.partition, dag_id=DAG_ID, group_id="events")  # the example DAG's task group
        uri = distcp.source_staging_dir(run, [FileEntry(path="x", bytes=0, sha256="", chunk=REFUSED_CHUNK)])
        path = uri.removeprefix("hdfs://cluster1")
        source = self.hadoop.source
        source.webhdfs("PUT", path.rsplit("/", 1)[0], "MKDIRS", permission="755")
        source.webhdfs("PUT", path, "MKDIRS", SUPERUSER, permission="555")
        self.path = uri


def chunk_labels(db_path: Path) -> dict[int, str]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT map_index, rendered_map_index FROM task_instance WHERE task_id = 'events.extract' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)", (DAG_ID,))
        return {index: label or str(index) for index, label in rows}


def delivery_checks(db_path: Path) -> dict[int, str]:
    """How each chunk's delivery was verified, from the per-chunk join's XCom (its DeliveryRecord)."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT map_index, value FROM xcom WHERE task_id = 'events.deliver.delivered' AND key = 'return_value' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)", (DAG_ID,))
        checks = {}
        for index, value in rows:
            record = json.loads(value) if isinstance(value, (str, bytes)) else value
            checks[index] = ", ".join(sorted({f["check"] for f in record.get("files", [])})) or "-"
        return checks


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def run(argv: list[str], env: dict[str, str], quiet: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    if quiet and result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
        raise SystemExit(f"{argv[1:]} failed with exit code {result.returncode}")
    return result


if __name__ == "__main__":
    sys.exit(main())
