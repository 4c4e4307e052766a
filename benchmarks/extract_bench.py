"""Extract throughput and memory against a real HiveServer2 (the local Spark Thrift Server).

For each row count N, three methods read ``SELECT * FROM default.bench_N`` (9 columns: ints, double,
string, decimal, timestamp, date, bool, nullable bigint), each in a fresh child process so its peak
RSS is its own:

  a  extract      this project's ``extract_chunk`` (one unsplit chunk, parquet/snappy files of
                  1,000,000 rows in a temp dir; the rows in the files must equal N)
  b  decode-floor impyla's raw columnar fetch (``convert_types=False``) counting rows, writing
                  nothing: what any client of this server must pay
  c  naive        default impyla cursor ``fetchall()`` -> ``pandas.DataFrame`` -> ``to_parquet``

Seconds are measured inside the child from connect to the last byte written (imports excluded;
the child's whole lifetime is kept in the JSON as ``process_s``), with the client CPU seconds spent
in that span: against a local server, seconds minus CPU is mostly time waiting for the server. Peak
RSS is the child's ``ru_maxrss``. One untimed run per N warms the server first. The methods run interleaved, in an order rotated each repetition (a b c, b c a, c a b),
so machine noise hits all three alike; the ratios compare each method's best run. Targets:
a/b >= 0.8 (conversion + writing cost at most 20% over fetching), a/c >= 3, and RSS(a) at the
largest N <= 1.3 x RSS(a) at the smallest (memory does not grow with the result).

Run with ``make bench``, i.e. ``python benchmarks/extract_bench.py [--rows 1000000,5000000]
[--fetch-size 10240] [--reps 2]``. It starts one server (about 10s, needs Java 17), seeds the
tables server-side, stops the server by its PID at the end, and writes ``.bench/extract_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support: the local servers (not part of the wheel)
BENCH_DIR = ROOT / ".bench"
METHODS = {"a": "extract", "b": "decode-floor", "c": "naive"}
ROWS_PER_FILE = 1_000_000
TARGETS = {"a/b rows/s": 0.8, "a/c rows/s": 3.0}
RSS_TARGET = 1.3


def run_method(method: str, config: dict) -> dict:
    """Child side: run one method once and return its rows, seconds and peak RSS."""
    from airflow_provider_impala_transfer.core.common.connection import SourceConnector
    from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, extract_chunk, iter_raw_batches
    from airflow_provider_impala_transfer.core.extract.planning import unsplit_plan

    options = {k: v for k, v in config["connect"].items() if k not in ("host", "port")}
    connector = SourceConnector(config["connect"]["host"], config["connect"]["port"], options=options)
    spec = ExtractSpec.build(table=config["table"], chunk_size=ROWS_PER_FILE, output_format="parquet",
                             compression="snappy", fetch_size=config["fetch_size"])
    out = Path(config["out"])
    started, cpu_started = time.perf_counter(), time.process_time()
    if method == "a":
        extract_chunk(connector, spec, unsplit_plan()[0], str(out))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        import pyarrow.parquet as pq

        rows = sum(pq.read_metadata(path).num_rows for path in out.glob("*.parquet"))
    else:
        connection = connector.connect()
        try:
            cursor = connector.cursor(connection, fetch_size=spec.fetch_size, columnar=method == "b")
            cursor.execute(spec.query)
            if method == "b":
                rows = sum(len(batch) for batch in iter_raw_batches(cursor))
            else:
                import pandas as pd

                frame = pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])
                frame.to_parquet(out / "naive.parquet", engine="pyarrow", compression="snappy")
                rows = len(frame)
        finally:
            connection.close()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rows": rows, "seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak_mb}


def measure(method: str, config: dict) -> dict:
    """Parent side: one fresh process per run, its output in a temp dir removed afterwards."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"out-{method}-", dir=BENCH_DIR) as out:
        child = subprocess.run(
            [sys.executable, __file__, "--child", method, json.dumps({**config, "out": out})],
            check=True, capture_output=True, text=True,
        )
    return {**json.loads(child.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - started}


def summarize(n: int, method: str, runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    return {
        "rows": n, "method": method, "name": METHODS[method], "runs": runs,
        "best_s": min(seconds), "median_s": statistics.median(seconds),
        "best_rows_per_s": n / min(seconds), "median_rows_per_s": n / statistics.median(seconds),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def report(results: list[dict], row_counts: list[int]) -> dict:
    print(f"\n{'rows':>10}  {'method':<16} {'best s':>8} {'median s':>9} {'best rows/s':>12} "
          f"{'median rows/s':>14} {'client CPU s':>13} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['rows']:>10,}  {r['method'] + ' ' + r['name']:<16} {r['best_s']:>8.2f} {r['median_s']:>9.2f} "
              f"{r['best_rows_per_s']:>12,.0f} {r['median_rows_per_s']:>14,.0f} {r['median_cpu_s']:>13.2f} "
              f"{r['peak_rss_mb']:>12.0f}")
    by = {(r["rows"], r["method"]): r for r in results}
    ratios = {}
    print()
    for n in row_counts:
        for other in ("b", "c"):
            name = f"a/{other} rows/s"
            best = by[n, "a"]["best_rows_per_s"] / by[n, other]["best_rows_per_s"]
            median = by[n, "a"]["median_rows_per_s"] / by[n, other]["median_rows_per_s"]
            passed = best >= TARGETS[name]
            ratios[f"{name} @{n}"] = {"best": best, "median": median, "target": f">= {TARGETS[name]}",
                                      "pass": passed}
            print(f"{name} @{n:,}: {best:.2f} (median runs {median:.2f})  target >= {TARGETS[name]}  "
                  f"{'PASS' if passed else 'FAIL'}")
    small, large = min(row_counts), max(row_counts)
    if small != large:
        rss = by[large, "a"]["peak_rss_mb"] / by[small, "a"]["peak_rss_mb"]
        passed = rss <= RSS_TARGET
        ratios[f"RSS(a@{large})/RSS(a@{small})"] = {"value": rss, "target": f"<= {RSS_TARGET}", "pass": passed}
        print(f"RSS(a@{large:,})/RSS(a@{small:,}): {rss:.2f}  target <= {RSS_TARGET}  "
              f"{'PASS' if passed else 'FAIL'}")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,5000000", help="comma-separated row counts")
    parser.add_argument("--fetch-size", type=int, default=10240, help="rows per fetch round trip")
    parser.add_argument("--reps", type=int, default=3, help="runs of each method per row count")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_method(args.child[0], json.loads(args.child[1]))))
        return 0

    from tests.support.local_hiveserver import LocalHiveServer
    from tests.support.processes import free_port

    row_counts = [int(n) for n in args.rows.split(",")]
    BENCH_DIR.mkdir(exist_ok=True)
    server = LocalHiveServer(workdir=Path(tempfile.mkdtemp(prefix="hs2-", dir=BENCH_DIR)), port=free_port())
    results = []
    try:
        server.start()
        print(f"server pid {server.pid} on port {server.port}")
        for n in row_counts:
            started = time.perf_counter()
            table = server.seed_range_table(f"default.bench_{n}", n)
            assert server.query(f"SELECT COUNT(*) FROM {table}")[0][0] == n
            print(f"seeded {table}: {n:,} rows in {time.perf_counter() - started:.1f}s")
        for n in row_counts:
            config = {"connect": server.connect_kwargs(), "table": f"default.bench_{n}",
                      "fetch_size": args.fetch_size}
            runs: dict[str, list[dict]] = {m: [] for m in METHODS}
            # The server's first scans of a table run on a cold JIT: warm it so that the method
            # that happens to run first is not charged for it.
            warm = measure("b", config)
            print(f"{n:>10,} warm-up (b, untimed): {warm['seconds']:.2f}s", flush=True)
            for rep in range(args.reps):
                # Rotate the order: a run pays for the server-side garbage the previous run left
                # (the naive method leaves a lot), so each method must follow each other in turn.
                names = list(METHODS)
                for method in names[rep % len(names):] + names[:rep % len(names)]:
                    run = measure(method, config)
                    if run["rows"] != n:
                        raise SystemExit(f"method {method} returned {run['rows']:,} rows, expected {n:,}")
                    runs[method].append(run)
                    print(f"{n:>10,} {method} {METHODS[method]:<13} rep {rep + 1}: {run['seconds']:6.2f}s "
                          f"{n / run['seconds']:>10,.0f} rows/s cpu {run['cpu_s']:5.2f}s "
                          f"{run['peak_rss_mb']:6.0f} MB", flush=True)
            results += [summarize(n, m, runs[m]) for m in METHODS]
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    ratios = report(results, row_counts)
    out = BENCH_DIR / "extract_bench.json"
    out.write_text(json.dumps({"fetch_size": args.fetch_size, "reps": args.reps, "results": results,
                               "ratios": ratios}, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0 if all(r["pass"] for r in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
