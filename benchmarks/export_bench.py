"""Server-side export vs client extract, each ending on the target cluster: wall time, rows/s, and
the worker's peak RSS.

Starts two real HDFS clusters (``tests/support/local_hdfs.py``) and the Spark Thrift Server with
its warehouse on ``hdfs://cluster1`` (``tests/support/local_hiveserver.py``), seeds
``default.bench_N`` (9 columns: ints, double, string, decimal, timestamp, date, bool, nullable
bigint) server-side, then for each N runs, each in a fresh child process (the "worker", so its
peak RSS is its own):

  a  client + distcp   ``extract_chunk`` (one unsplit chunk, parquet/snappy, 1,000,000-row files)
                       into a local temp dir, then the distcp method: ``-put`` to a staging dir
                       on cluster1, ONE DistCp job to cluster2, verified by the clusters' CRC32C
  b  server + distcp   ``run_export`` (CREATE TABLE ... USING PARQUET LOCATION 'hdfs://cluster1/...'
                       AS SELECT ...: the engine writes the files) + ``export_manifests`` (listing,
                       footers by range reads, COMPOSITE_CRC) + ONE DistCp job of all exported
                       files to cluster2, verified the same way
  c  CTAS alone        ``run_export`` only: what the engine itself takes

Each run's rows on cluster2 (a, b) or in the manifest (c) must equal N. Runs interleave (order
rotated each repetition) after one untimed warm-up of (c); medians are reported, every run is in
``.bench/export_bench.json``. Targets here: b >= 5 x faster than a at the largest N, RSS(b) <= 150 MB.

This machine has 2 cores and the "cluster" is one Spark driver, so the engine's side of (b) runs
on the same CPUs as everything else; on a real cluster the CTAS runs on every Impala node and the
gap grows with their number.

Run by hand: ``python benchmarks/export_bench.py [--rows 1000000,10000000] [--reps 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support: the local servers (not part of the wheel)
BENCH_DIR = ROOT / ".bench"
METHODS = {"a": "client + distcp", "b": "server + distcp", "c": "CTAS alone"}
ROWS_PER_FILE = 1_000_000


def run_method(method: str, config: dict) -> dict:
    """Child side: one run of one method; returns rows, seconds and the process's peak RSS."""
    from hdfs import InsecureClient

    from airflow_provider_impala_transfer.core.common.connection import SourceConnector
    from airflow_provider_impala_transfer.core.common.records import Manifest
    from airflow_provider_impala_transfer.core.export import export_manifests, plan_export, run_export
    from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, extract_chunk
    from airflow_provider_impala_transfer.core.extract.planning import unsplit_plan
    from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
    from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
    from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets
    from airflow_provider_impala_transfer.core.transfer.layout import Run
    from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata

    options = {k: v for k, v in config["connect"].items() if k not in ("host", "port")}
    connector = SourceConnector(config["connect"]["host"], config["connect"]["port"], options=options)
    spec = ExtractSpec.build(table=config["table"], chunk_size=ROWS_PER_FILE, output_format="parquet",
                             compression="snappy")
    run = Run(f"bench-{uuid.uuid4().hex[:8]}")
    targets = TransferTargets(hdfs_root=config["target"], source_hdfs_path=config["staging"])
    distcp = targets.method("distcp", CommandRunner(timeout=3600))
    cluster1 = WebHdfsMetadata(InsecureClient(config["source_webhdfs"], user=config["user"]))
    started = time.perf_counter()
    if method == "a":
        manifest = extract_chunk(connector, spec, unsplit_plan()[0], config["out"])
        record = deliver_chunk(distcp, manifest, run, overwrite=True)
        rows = manifest.rows if record else 0
    else:
        plan = plan_export(spec, run, source_hdfs_path=config["staging"], dialect="hive")
        run_export(connector, plan, cluster1)
        if method == "c":
            seconds = time.perf_counter() - started
            rows = sum(m.rows for m in export_manifests(connector, spec, plan, cluster1, distcp.source_shell))
            return {"rows": rows, "seconds": seconds, "peak_rss_mb": _peak_mb()}
        manifests = export_manifests(connector, spec, plan, cluster1, distcp.source_shell)
        merged = Manifest.merge(manifests)  # one DistCp job for all files, as (a) has one chunk
        record = deliver_chunk(distcp, merged, run, overwrite=True)
        rows = merged.rows if record else 0
    return {"rows": rows, "seconds": time.perf_counter() - started, "peak_rss_mb": _peak_mb()}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(method: str, config: dict) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"export-{method}-", dir=BENCH_DIR))
    try:
        result = subprocess.run([sys.executable, __file__, "--child", method, json.dumps({**config, "out": str(out)})],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"method {method} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--reps", type=int, default=2, help="runs of each method per row count")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_method(args.child[0], json.loads(args.child[1]))))
        return 0

    from tests.support.local_hdfs import LocalHadoop
    from tests.support.local_hiveserver import LocalHiveServer
    from tests.support.processes import free_port

    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="export-bench-", dir=BENCH_DIR))
    row_counts = [int(n) for n in args.rows.split(",")]
    hadoop = LocalHadoop(work / "hadoop")
    server = None
    results = []
    try:
        hadoop.start()
        os.environ.update(hadoop.env())
        os.environ.pop("HADOOP_USER_NAME", None)
        server = LocalHiveServer(workdir=work / "hs2", port=free_port(), hadoop=hadoop)
        server.start()
        for n in row_counts:
            started = time.perf_counter()
            server.seed_range_table(f"default.bench_{n}", n)
            print(f"seeded default.bench_{n}: {n:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
        for n in row_counts:
            config = {"connect": server.connect_kwargs(), "table": f"default.bench_{n}",
                      "target": f"hdfs://cluster2/bench/{n}", "staging": f"hdfs://cluster1/bench-staging/{n}",
                      "source_webhdfs": f"http://{hadoop.source.webhdfs_address}", "user": hadoop.user}
            warm = measure("c", config)
            print(f"{n:>11,} warm-up (c, untimed): {warm['seconds']:.1f}s", flush=True)
            runs: dict[str, list[dict]] = {m: [] for m in METHODS}
            for rep in range(args.reps):
                names = list(METHODS)
                for method in names[rep % len(names):] + names[:rep % len(names)]:
                    run = measure(method, config)
                    if run["rows"] != n:
                        raise SystemExit(f"method {method} moved {run['rows']:,} rows, expected {n:,}")
                    runs[method].append(run)
                    print(f"{n:>11,} {method} {METHODS[method]:<16} rep {rep + 1}: {run['seconds']:7.1f}s "
                          f"{n / run['seconds']:>10,.0f} rows/s {run['peak_rss_mb']:6.0f} MB", flush=True)
            for method, method_runs in runs.items():
                seconds = statistics.median(r["seconds"] for r in method_runs)
                results.append({"rows": n, "method": method, "name": METHODS[method], "median_s": seconds,
                                "rows_per_s": n / seconds, "peak_rss_mb": max(r["peak_rss_mb"] for r in method_runs),
                                "runs": method_runs})
    finally:
        if server is not None:
            server.stop()
        hadoop.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'rows':>11} {'method':<18} {'median s':>9} {'rows/s':>11} {'peak RSS':>9}")
    for r in results:
        print(f"{r['rows']:>11,} {r['method']} {r['name']:<16} {r['median_s']:9.1f} {r['rows_per_s']:>11,.0f} "
              f"{r['peak_rss_mb']:>7.0f} MB")
    by = {(r["rows"], r["method"]): r for r in results}
    largest = max(row_counts)
    speedup = by[largest, "a"]["median_s"] / by[largest, "b"]["median_s"]
    rss = by[largest, "b"]["peak_rss_mb"]
    print(f"\nat {largest:,} rows: (b) is {speedup:.1f}x faster than (a) (target >= 5); RSS(b) {rss:.0f} MB "
          f"(target <= 150)")
    out = BENCH_DIR / "export_bench.json"
    out.write_text(json.dumps({"reps": args.reps, "results": results, "speedup_b_over_a": speedup}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if speedup >= 5 and rss <= 150 else 1


if __name__ == "__main__":
    sys.exit(main())
