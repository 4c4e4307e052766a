"""`make demo`: the example DAG end to end on embedded defaults.

Starts a local HiveServer2-protocol server (Spark Thrift Server from the pyspark wheel) on
127.0.0.1, seeds `default.events` and `default.sample_types`, creates an Airflow home with a SQLite
metadata DB under .demo/, runs `airflow dags test impala_extract_example`, prints what was written,
and stops the server by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from airflow_provider_impala_transfer.testing.airflow_runs import latest_run
from airflow_provider_impala_transfer.testing.local_hiveserver import LocalHiveServer, free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in default.events")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    args = parser.parse_args()

    home, output = DEMO / "airflow", DEMO / "output"
    home.mkdir(parents=True, exist_ok=True)
    server = LocalHiveServer(workdir=DEMO / "hiveserver2", port=free_port())
    step(f"starting a local HiveServer2 server on 127.0.0.1:{server.port} (Spark Thrift Server)")
    server.start()
    try:
        step(f"seeding default.events ({args.rows:,} rows) and default.sample_types (every type)")
        server.seed_range_table("default.events", args.rows)
        server.seed_sample_table()
        kwargs = server.connect_kwargs()
        env = dict(os.environ)
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags_examples"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_CONN_IMPALA_DEFAULT=json.dumps({
                "conn_type": "impala_transfer", "host": "127.0.0.1", "port": server.port,
                "login": kwargs["user"], "password": kwargs["password"],
                "extra": {"auth_mechanism": kwargs["auth_mechanism"]},
            }),
            IMPALA_TRANSFER_OUTPUT_DIR=str(output),
        )
        airflow = str(Path(sys.executable).with_name("airflow"))
        step(f"preparing the Airflow metadata DB (SQLite) in {home}")
        run([airflow, "db", "migrate"], env, quiet=True)
        conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": args.chunk_size}
        step(f"airflow dags test impala_extract_example -c '{json.dumps(conf)}'")
        started = time.monotonic()
        result = run([airflow, "dags", "test", "impala_extract_example", "-c", json.dumps(conf)], env)
        elapsed = time.monotonic() - started
    finally:
        step("stopping the local server")
        server.stop()

    run_state, tasks = latest_run(home / "airflow.db", "impala_extract_example")
    if result.returncode != 0 or run_state != "success":
        print(result.stdout[-6000:], result.stderr[-6000:], sep="\n")
        print(f"\nDEMO FAILED: the DAG run ended {run_state!r}; see the Airflow output above.", file=sys.stderr)
        return 1
    run_dir = newest_run_dir(output / "impala_extract_example")
    files = sorted(run_dir.glob("*.parquet"))
    print("\n=== demo summary ===")
    print(f"DAG run: {run_state} in {elapsed:.1f}s (including Airflow start-up); "
          + ", ".join(f"{task}[{index}]={state}" if index >= 0 else f"{task}={state}"
                      for (task, index), state in sorted(tasks.items())))
    total = 0
    for path in files:
        rows = pq.read_metadata(path).num_rows
        total += rows
        print(f"{rows:>10,} rows {path.stat().st_size:>12,} bytes  {path}")
    print(f"total: {total:,} rows in {len(files)} files (source COUNT(*) = {args.rows:,}, checked by the summary task)")
    print("columns: " + ", ".join(f"{f.name} {f.type}" for f in pq.read_schema(files[0])))
    print("Look inside: .venv/bin/python -c \"import pyarrow.parquet as pq; "
          f"print(pq.read_table('{files[0]}').slice(0, 5).to_pandas())\"")
    return 0


def newest_run_dir(dag_dir: Path) -> Path:
    return max((p for p in dag_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)


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
