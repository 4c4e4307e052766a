"""distcp on YARN against distcp on the local job runner and ``hdfs dfs -cp``, per chunk size.

Starts two real HDFS clusters and a real YARN (ResourceManager, NodeManager, JobHistory server:
``tests/support/local_yarn.py``) on this machine, puts one chunk of each ``--sizes`` (MiB, two
files of random bytes each) on cluster1, untimed, and copies it to cluster2 with the product's
methods, each run timed on its own, the three methods of one size next to each other in every
pass (machine noise hits them alike), ``--reps`` passes after one untimed warm-up:

  hdfs_cp       ``hdfs dfs -cp hdfs://cluster1/... hdfs://cluster2/...``: one client JVM streams
                the bytes (HdfsCpMethod)
  distcp_local  DistcpMethod on the local job runner (maps are threads of the client JVM)
  distcp_yarn   DistcpMethod with the YARN client configuration: an ApplicationMaster and map
                containers on the NodeManager; what YARN spent is read from the ResourceManager
                (submit -> AM launched) and the JobHistory server (submit -> first map started,
                submit -> job finished)

Every copy is verified (CRC32C computed by cluster2) as the product does; the target is deleted
between runs, untimed. Medians are reported, every run is in ``.bench/yarn_bench.json``. The
crossover: the smallest size from which distcp on YARN is faster than ``hdfs dfs -cp``.

Run with ``make bench-yarn``, i.e. ``python benchmarks/yarn_bench.py [--sizes 8,64,256,1024] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support: the local servers (not part of the wheel)

BENCH_DIR = ROOT / ".bench"
MIB = 1 << 20
METHODS = ("hdfs_cp", "distcp_local", "distcp_yarn")


def put_chunk(hadoop, work: Path, size_mb: int):
    """Two files of random bytes on cluster1 (untimed); their entries as hdfs:// URIs."""
    import google_crc32c

    from airflow_provider_impala_transfer.core.common.records import FileEntry

    local = work / f"chunk-{size_mb}"
    local.mkdir()
    entries, remote = [], f"hdfs://cluster1/bench-yarn/{size_mb}"
    for part in range(2):
        data = os.urandom(size_mb * MIB // 2)
        path = local / f"chunk-00000-part-{part:05d}.parquet"
        path.write_bytes(data)
        entries.append(FileEntry(path=f"{remote}/{path.name}", bytes=len(data), sha256="",
                                 crc32c=f"{google_crc32c.value(data):08x}", chunk=0, part=part))
    hadoop.hdfs("dfs", "-mkdir", "-p", remote, check=True)
    hadoop.hdfs("dfs", "-put", "-f", *(str(p) for p in sorted(local.iterdir())), remote, check=True)
    for path in local.iterdir():
        path.unlink()
    return entries


def deliver(method_name: str, files, yarn, hadoop) -> dict:
    from airflow_provider_impala_transfer.core.transfer.delivery import deliver_files
    from airflow_provider_impala_transfer.core.transfer.distcp import DistcpOptions
    from airflow_provider_impala_transfer.core.transfer.layout import Run
    from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets

    run = Run(f"bench_{uuid.uuid4().hex[:8]}")
    env = {"HADOOP_CONF_DIR": str(yarn.conf_dir)} if method_name == "distcp_yarn" else None
    target = "hdfs://cluster2/bench-yarn-target"
    targets = TransferTargets(hdfs_root=target, hadoop_env=env, distcp=DistcpOptions(maps=2), command_timeout=1800)
    method = targets.method("hdfs_cp" if method_name == "hdfs_cp" else "distcp", targets.runner())
    started = time.perf_counter()
    deliver_files(method, files, run, label="bench", overwrite=True, verify_mode="checksum")
    seconds = time.perf_counter() - started
    record = {"seconds": seconds}
    if method_name == "distcp_yarn":
        [app] = [a for a in yarn.apps() if a["name"].endswith(f":{run.run_id}:chunk-00000")]
        job = "job_" + app["id"].removeprefix("application_")
        first_map = min(t["startTime"] for t in yarn.job_tasks(job))
        record.update(app=app["id"], am_launch_s=(app["launchTime"] - app["startedTime"]) / 1000,
                      first_map_s=(first_map - app["startedTime"]) / 1000,
                      job_s=(app["finishedTime"] - app["startedTime"]) / 1000)
    hadoop.hdfs("dfs", "-rm", "-r", "-f", "-skipTrash", target, check=True)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="8,64,256,1024", help="chunk sizes in MiB (default 8,64,256,1024)")
    parser.add_argument("--reps", type=int, default=3, help="timed passes (default 3)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from tests.support.local_hdfs import LocalHadoop
    from tests.support.local_yarn import LocalYarn

    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="yarn-", dir=BENCH_DIR))
    hadoop = yarn = None
    runs: dict[str, list[dict]] = {}
    try:
        hadoop = LocalHadoop(work / "hadoop").start()
        os.environ.update(hadoop.env())
        os.environ.pop("HADOOP_USER_NAME", None)
        started = time.perf_counter()
        yarn = LocalYarn(hadoop, work / "yarn").start()
        print(f"YARN ready in {time.perf_counter() - started:.1f}s", flush=True)
        chunks = {size: put_chunk(hadoop, work, size) for size in sizes}
        for rep in range(args.reps + 1):  # pass 0: warm-up, not kept
            for size in sizes:
                order = METHODS[rep % len(METHODS):] + METHODS[:rep % len(METHODS)]
                for name in order:
                    record = deliver(name, chunks[size], yarn, hadoop)
                    print(f"pass {rep} {size:>5} MiB {name:<13} {record['seconds']:7.1f}s", flush=True)
                    if rep:
                        runs.setdefault(f"{size}:{name}", []).append(record)
    finally:
        if yarn is not None:
            yarn.stop()
        if hadoop is not None:
            hadoop.stop()

    table = []
    for size in sizes:
        row = {"size_mb": size}
        for name in METHODS:
            seconds = statistics.median(r["seconds"] for r in runs[f"{size}:{name}"])
            row[name] = {"s": seconds, "mib_s": size / seconds}
        yarn_runs = runs[f"{size}:distcp_yarn"]
        for key in ("am_launch_s", "first_map_s", "job_s"):
            row["distcp_yarn"][key] = statistics.median(r[key] for r in yarn_runs)
        table.append(row)
    print(f"\n{'MiB':>6} | " + " | ".join(f"{m:>20}" for m in METHODS) +
          " | yarn: submit->first map, job | yarn/cp")
    for row in table:
        y = row["distcp_yarn"]
        print(f"{row['size_mb']:>6} | " + " | ".join(f"{row[m]['s']:6.1f}s {row[m]['mib_s']:6.1f} MiB/s" for m in METHODS)
              + f" | {y['first_map_s']:5.1f}s, {y['job_s']:5.1f}s | {row['hdfs_cp']['s'] / y['s']:.2f}")
    crossover = next((row["size_mb"] for row in table if row["distcp_yarn"]["s"] < row["hdfs_cp"]["s"]), None)
    print(f"distcp on YARN beats hdfs dfs -cp from: {crossover or 'none of these'} MiB per chunk")
    out = BENCH_DIR / "yarn_bench.json"
    out.write_text(json.dumps({"sizes": sizes, "reps": args.reps, "table": table, "runs": runs,
                               "crossover_mb": crossover, "cpus": os.cpu_count()}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
