"""`make demo`: the transfer example DAG end to end on embedded defaults.

Starts a local HiveServer2-protocol server (Spark Thrift Server from the pyspark wheel) on
127.0.0.1 as both the source and the target "cluster", seeds `default.events`, creates an Airflow
home with a SQLite metadata DB under .demo/, puts Hadoop's real FsShell on PATH as `hdfs`, and runs
`airflow dags test impala_transfer_example`:

  extract (parallel chunks) -> per chunk: distcp -> hdfs_put -> ... -> publish -> target table -> reconcile

`hadoop distcp` cannot run here (no YARN), so distcp fails fast for every chunk ("hadoop not found
on PATH") and hdfs put delivers: the fallback chain at work. The summary prints, per chunk, what
each method did. The server is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/support: the local servers

from tests.support.airflow_runs import latest_run
from tests.support.local_hadoop import HadoopTools
from tests.support.local_hiveserver import LocalHiveServer
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DAG_ID = "impala_transfer_example"
METHODS = ("distcp", "hdfs_put", "hdfs_cp", "scp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in default.events")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--date", default="2026-01-01", help="logical date = the target partition ds=<date>")
    args = parser.parse_args()

    home, output, target = DEMO / "airflow", DEMO / "extract", DEMO / "target"
    home.mkdir(parents=True, exist_ok=True)
    (home / "airflow.db").unlink(missing_ok=True)  # each demo is a first run of its date
    step("putting Hadoop's FsShell (from the pyspark jars) on PATH as `hdfs`; no `hadoop distcp` here")
    tools = HadoopTools.install(DEMO / "bin", DEMO / "hadoop")
    tools.hadoop.unlink()  # the test stand-in for distcp stays out of the demo: distcp really is missing
    server = LocalHiveServer(workdir=DEMO / "hiveserver2", port=free_port())
    step(f"starting a local HiveServer2 server on 127.0.0.1:{server.port} (Spark Thrift Server)")
    server.start()
    try:
        step(f"seeding default.events ({args.rows:,} rows)")
        server.seed_range_table("default.events", args.rows)
        kwargs = server.connect_kwargs()
        impala = json.dumps({"conn_type": "impala_transfer", "host": "127.0.0.1", "port": server.port,
                             "login": kwargs["user"], "password": kwargs["password"],
                             "extra": {"auth_mechanism": kwargs["auth_mechanism"]}})
        env = {**os.environ, **tools.additions}
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags_examples"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_CONN_IMPALA_DEFAULT=impala,
            AIRFLOW_CONN_IMPALA_TARGET=impala,
            IMPALA_TRANSFER_OUTPUT_DIR=str(output),
            IMPALA_TRANSFER_TABLE_DIALECT="hive",
            IMPALA_TRANSFER_TARGET_TABLE="default.events_copy",
        )
        airflow = str(Path(sys.executable).with_name("airflow"))
        step(f"preparing the Airflow metadata DB (SQLite) in {home}")
        run([airflow, "db", "migrate"], env, quiet=True)
        conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": args.chunk_size,
                "method": "distcp", "target_path": f"file://{target}"}
        step(f"airflow dags test {DAG_ID} {args.date} -c '{json.dumps(conf)}'")
        started = time.monotonic()
        result = run([airflow, "dags", "test", DAG_ID, args.date, "-c", json.dumps(conf)], env)
        elapsed = time.monotonic() - started
        table_count = server.query("SELECT COUNT(*) FROM default.events_copy "
                                   f"WHERE ds = '{args.date}'") if result.returncode == 0 else None
    finally:
        step("stopping the local server")
        server.stop()
        shutil.rmtree(DEMO / "bin", ignore_errors=True)

    run_state, tasks = latest_run(home / "airflow.db", DAG_ID)
    if result.returncode != 0 or run_state != "success":
        print(result.stdout[-6000:], result.stderr[-6000:], sep="\n")
        print(f"\nDEMO FAILED: the DAG run ended {run_state!r}; see the Airflow output above.", file=sys.stderr)
        return 1
    print("\n=== demo summary ===")
    print(f"DAG run: {run_state} in {elapsed:.1f}s (including Airflow start-up)")
    labels = chunk_labels(home / "airflow.db")
    print(f"\n{'chunk':<34}" + "".join(f"{m:<11}" for m in METHODS) + "delivered by")
    for index, label in sorted(labels.items()):
        states = [tasks.get((f"events.deliver.{m}", index), "-") for m in METHODS]
        winner = next((m for m, s in zip(METHODS, states) if s == "success"), "nobody")
        print(f"{label:<34}" + "".join(f"{s:<11}" for s in states) + winner)
    files = sorted((target / f"ds={args.date}").glob("*.parquet"))
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    print(f"\npublished: {len(files)} files, {rows:,} rows in {target / f'ds={args.date}'}")
    print(f"target table default.events_copy, partition ds={args.date}: COUNT(*) = {table_count[0][0]:,}")
    print(f"source COUNT(*) = {args.rows:,}; the reconcile task checked source == files == published == table")
    print("distcp failed because `hadoop` is not installed here; on a cluster it delivers (see README).")
    return 0


def chunk_labels(db_path: Path) -> dict[int, str]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT map_index, rendered_map_index FROM task_instance WHERE task_id = 'events.extract' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)", (DAG_ID,))
        return {index: label or str(index) for index, label in rows}


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def run(argv: list[str], env: dict[str, str], quiet: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if quiet and result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
        raise SystemExit(f"{argv[1:]} failed with exit code {result.returncode}")
    return result


if __name__ == "__main__":
    sys.exit(main())
