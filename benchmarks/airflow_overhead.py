"""What Airflow adds to a transfer: the example DAG under a real scheduler against the CLI, same
servers, same rows, same chunks, in one run.

Starts two real HDFS clusters (``tests/support/local_hdfs.py``) and the Spark Thrift Server with its
warehouse on ``hdfs://cluster1`` (``tests/support/local_hiveserver.py``), seeds ``default.bench``
(``--rows``, 9 columns) server-side, and starts Airflow's api-server (127.0.0.1), scheduler and
dag-processor with the LocalExecutor on SQLite (parallelism ``--parallelism``, default 4). Then, for
each chunk count C in ``--chunks`` (default 4,40; ``chunk_size = rows / C``), interleaved:

  airflow   ``impala_transfer_example`` triggered with distcp from the files staged on cluster1 to
            cluster2 (``airflow dags trigger``): seconds from the run's start to its end, as the
            metadata DB has them, and the task instances that ran on a worker (a hostname: the ones
            the scheduler marked skipped never got one)
  floor     ``airflow_floor`` (benchmarks/dags/): the same shape of mapped tasks (a plan, C mapped
            tasks, a mapped group of C x 3 no-op tasks, four tasks after), so what Airflow itself
            takes to start that many tasks here
  cli       ``impala-transfer`` with the same query, chunks and method, ``--max-workers`` = the
            scheduler's parallelism, the same staging on cluster1

Reported: seconds, airflow/cli, and per chunk the task instances that ran on a worker. Targets of
issue 21: airflow/cli <= 1.2 at 40 chunks, <= 3 task instances per chunk. Every run is in
``.bench/airflow_overhead.json``. ``make bench-airflow``, or ``python benchmarks/airflow_overhead.py
[--rows 200000] [--chunks 4,40,200] [--parallelism 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support: the local servers (not part of the wheel)
BENCH_DIR = ROOT / ".bench"
BIN = Path(sys.executable).parent
DAG_ID, FLOOR_ID = "impala_transfer_example", "airflow_floor"


class Scheduler:
    """api-server, scheduler and dag-processor of one AIRFLOW_HOME, stopped by their process groups."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env, self.procs = home, env, []

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=600)
        if check and result.returncode:
            raise RuntimeError(f"airflow {' '.join(args)}: {result.stderr[-3000:]}")
        return result

    def start(self) -> None:
        from tests.support.processes import answers, wait_for

        self.airflow("db", "migrate")
        port = self.env["AIRFLOW__API__PORT"]
        for name, args in (("api-server", ["api-server", "-H", "127.0.0.1", "-p", port]),
                           ("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"])):
            log = open(self.home / f"{name}.log", "wb")
            self.procs.append(subprocess.Popen([str(BIN / "airflow"), *args], env=self.env, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/v2/monitor/health"), 180, "the api-server")
        for dag in (DAG_ID, FLOOR_ID):
            wait_for(lambda dag=dag: self.airflow("dags", "unpause", dag, check=False).returncode == 0, 180,
                     f"{dag} parsed")

    def run(self, dag_id: str, conf: dict, timeout: float = 3600) -> dict:
        """Trigger, wait until the run ends; its seconds (start to end) and task instances."""
        run_id = f"bench_{uuid.uuid4().hex[:8]}"
        self.airflow("dags", "trigger", dag_id, "-c", json.dumps(conf), "-r", run_id)
        deadline = time.monotonic() + timeout
        db = self.home / "airflow.db"
        while True:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT state, (julianday(end_date) - julianday(start_date)) * 86400 "
                                   "FROM dag_run WHERE run_id = ?", (run_id,)).fetchone()
                if row and row[0] in ("success", "failed"):
                    instances = conn.execute("SELECT task_id, map_index, state, hostname FROM task_instance "
                                             "WHERE run_id = ?", (run_id,)).fetchall()
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} {run_id} did not end within {timeout:.0f}s")
            time.sleep(1)
        started = [(task, index) for task, index, _, host in instances if host]
        return {"run_id": run_id, "state": row[0], "seconds": row[1], "task_instances": len(instances),
                "started": len(started), "started_per_chunk": _per_chunk(started)}

    def stop(self) -> None:
        from tests.support.processes import stop_process_group

        for proc in self.procs:
            stop_process_group(proc.pid, 30)


def _per_chunk(started: list[tuple[str, int]]) -> float:
    """Task instances that ran on a worker for one chunk: the mapped ones, over the chunks."""
    chunks = {index for _, index in started if index >= 0}
    return sum(1 for _, index in started if index >= 0) / max(1, len(chunks))


def cli_run(server, hadoop, query: str, chunk_size: int, workers: int, work: Path) -> dict:
    target, staging = f"hdfs://cluster2/bench-cli/{uuid.uuid4().hex[:8]}", f"hdfs://cluster1/bench-cli-staging"
    argv = [str(BIN / "impala-transfer"), "--source-host", "127.0.0.1", "--source-port", str(server.port),
            "--auth-mechanism", "PLAIN", "--user", "airflow", "--query", query, "--split-by", "id",
            "--chunk-size", str(chunk_size), "--method", "distcp", "--source-hdfs-path", staging,
            "--max-workers", str(workers), "--target-hdfs-path", target, "--temp-dir", str(work / "cli-tmp"),
            "--table-dialect", "hive", "--skip-table", "--run-id", "bench"]
    started = time.perf_counter()
    result = subprocess.run(argv, env={**os.environ, "IMPALA_PASSWORD": "bench"}, capture_output=True, text=True,
                            timeout=3600)
    seconds = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError(f"impala-transfer exited {result.returncode}: {result.stderr[-3000:]}")
    return {"seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunks", default="4,40", help="comma-separated chunk counts")
    parser.add_argument("--parallelism", type=int, default=4, help="the scheduler's, and the CLI's --max-workers")
    args = parser.parse_args()
    from tests.support.local_hdfs import LocalHadoop
    from tests.support.local_hiveserver import LocalHiveServer
    from tests.support.processes import free_port

    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="airflow-overhead-", dir=BENCH_DIR))
    hadoop = LocalHadoop(work / "hadoop")
    server = scheduler = None
    results = []
    try:
        hadoop.start()
        os.environ.update(hadoop.env())
        server = LocalHiveServer(workdir=work / "hs2", port=free_port(), hadoop=hadoop)
        server.start()
        server.seed_range_table("default.bench", args.rows)
        home = work / "airflow"
        (home / "dags").mkdir(parents=True)
        (home / "dags" / f"{DAG_ID}.py").symlink_to(ROOT / "dags_examples" / f"{DAG_ID}.py")
        (home / "dags" / f"{FLOOR_ID}.py").symlink_to(ROOT / "benchmarks" / "dags" / f"{FLOOR_ID}.py")
        port = str(free_port())
        env = {**os.environ,
               "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
               "AIRFLOW__CORE__PARALLELISM": str(args.parallelism), "AIRFLOW__API__PORT": port,
               "AIRFLOW__API__HOST": "127.0.0.1",
               "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
               "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
               "AIRFLOW_CONN_IMPALA_DEFAULT": server.airflow_connection_json(),
               "AIRFLOW_CONN_IMPALA_TARGET": server.airflow_connection_json(),
               "AIRFLOW_CONN_TARGET_WEBHDFS": hadoop.webhdfs_connection_json(hadoop.target),
               "IMPALA_TRANSFER_SOURCE_HDFS_PATH": "hdfs://cluster1/bench-staging",
               "IMPALA_TRANSFER_WEBHDFS_CONN_ID": "target_webhdfs", "IMPALA_TRANSFER_TABLE_DIALECT": "hive",
               "IMPALA_TRANSFER_TARGET_TABLE": "", "IMPALA_TRANSFER_SCHEDULE": "",
               "IMPALA_TRANSFER_MAX_WORKERS": str(args.parallelism), "IMPALA_TRANSFER_OUTPUT_DIR": ""}
        scheduler = Scheduler(home, env)
        scheduler.start()
        query = "SELECT * FROM default.bench"
        for chunks in [int(c) for c in args.chunks.split(",")]:
            chunk_size = -(-args.rows // chunks)
            conf = {"query": query, "split_by": "id", "chunk_size": chunk_size, "method": "distcp",
                    "extract_mode": "client", "target_path": f"hdfs://cluster2/bench/{uuid.uuid4().hex[:8]}"}
            row = {"chunks": chunks, "rows": args.rows, "chunk_size": chunk_size}
            row["airflow"] = scheduler.run(DAG_ID, conf)
            if row["airflow"]["state"] != "success":
                raise RuntimeError(f"the transfer run failed: see {home}/scheduler.log")
            row["floor"] = scheduler.run(FLOOR_ID, {"chunks": chunks})
            row["cli"] = cli_run(server, hadoop, query, chunk_size, args.parallelism, work)
            row["ratio"] = row["airflow"]["seconds"] / row["cli"]["seconds"]
            results.append(row)
            print(f"{chunks:>4} chunks: airflow {row['airflow']['seconds']:6.1f}s "
                  f"({row['airflow']['started']} task instances ran, {row['airflow']['started_per_chunk']:.1f} "
                  f"per chunk, of {row['airflow']['task_instances']}), floor {row['floor']['seconds']:6.1f}s, "
                  f"cli {row['cli']['seconds']:6.1f}s, airflow/cli {row['ratio']:.2f}", flush=True)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if server is not None:
            server.stop()
        hadoop.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| chunks | task instances (ran on a worker) | per chunk | airflow | floor | cli | airflow/cli |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        a = r["airflow"]
        print(f"| {r['chunks']} | {a['task_instances']} ({a['started']}) | {a['started_per_chunk']:.1f} | "
              f"{a['seconds']:.1f} s | {r['floor']['seconds']:.1f} s | {r['cli']['seconds']:.1f} s | {r['ratio']:.2f} |")
    (BENCH_DIR / "airflow_overhead.json").write_text(json.dumps(
        {"rows": args.rows, "parallelism": args.parallelism, "cpus": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
