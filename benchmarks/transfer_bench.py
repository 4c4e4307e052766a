"""Transfer throughput into real HDFS: each method verified vs the same method unverified vs raw FsShell.

Starts two real Apache Hadoop 3.5.0 HDFS clusters on this machine (``tests/support/local_hdfs.py``:
NameNode + DataNode JVMs each, ``hdfs://cluster1`` and ``hdfs://cluster2`` in one client
configuration), writes ``--files`` chunk files (default 8 x 128 MiB = 1 GiB) of incompressible
random bytes on local disk, with their sha256 and CRC32C in a manifest as the extract computes
them, and delivers them, as one chunk, to ``hdfs://cluster2`` with each method through the
project's real code path:

  hdfs_put      ``hdfs dfs -mkdir -p`` + ``hdfs dfs -put`` of the local files (one JVM each)
  hdfs_cp       ``hdfs dfs -mkdir -p`` + ``hdfs dfs -cp`` from the files' file:// URIs
  distcp        ``-put`` into a staging dir on cluster1, ``-mkdir -p`` on cluster2, ONE real DistCp
                job (local job runner, 2 maps, COMPOSITE_CRC) cluster1 -> cluster2, ``-rm`` of the
                staged copy: four JVMs, the file bytes cross the DataNodes twice

Each HDFS method runs in four variants, each its own timed run (not phases of one run):

  unverified      ``method.deliver(...)``: the copy alone
  crc32c          ``deliver_chunk(..., verify_mode="checksum")``: the copy, then ``hdfs dfs -stat``
                  (sizes) + ONE ``hdfs dfs -Ddfs.checksum.combine.mode=COMPOSITE_CRC -checksum``
                  of all files: the DataNodes combine the CRCs they keep, nothing is read back
  crc32c+webhdfs  the same with the destination's ``metadata=WebHdfsMetadata`` (the product's
                  ``webhdfs_conn_id``): sizes by one WebHDFS LISTSTATUS instead of a ``-stat`` JVM
  sha256          ``deliver_chunk(..., verify_mode="sha256")``: the copy, then ``-stat`` + one
                  ``hdfs dfs -cat`` of all files, hashed in Python (what the code did before)

The verified runs also time ``method.deliver`` inside them, so their copy and verify seconds are
reported separately (``copy s``/``verify s``). Baselines, no verification and no ``-mkdir``
(the target directory is made untimed through WebHDFS):

  raw_cp          ONE ``hdfs dfs -cp file:///... hdfs://cluster2/...`` of all files
  raw_put         ONE ``hdfs dfs -put <local files> hdfs://cluster2/...``

and reference rows, verified by sha256 as those destinations have no comparable checksum:

  scp+sha256      ``scp`` to an OpenSSH sshd on 127.0.0.1 (``tests/support/local_sshd.py``), the
                  target on local disk, then ``sha256sum`` over ssh
  fsspec+sha256   only with ``--methods ...,fsspec``: fsspec ``webhdfs://`` of cluster2, ``put_file``
                  (an empty CREATE, then one WebHDFS APPEND per 5 MiB buffer), then every file
                  read back over WebHDFS and hashed; 12-16 MiB/s here, ~80 s per GiB

Before the timed passes, the steps of a crc32c verification are timed one by one on a chunk put
there untimed (a bare FsShell JVM, ``-stat``, ``-checksum``, WebHDFS LISTSTATUS): what the
verify seconds are made of.

Fairness. Before every timed run the previous target is deleted (WebHDFS DELETE: no trash),
untimed; the benchmark waits until the DataNodes have removed the block files, then ``sync``
flushes dirty pages, so every run writes fresh blocks and pays no earlier run's writeback. The
source files sit in the page cache. One untimed warm-up pass over every variant comes first (JVM
class archive, DataNode JIT, page cache); then ``--reps`` passes, each starting at a different
point of the list (shifted by len/reps), the variants of one method next to each other so machine
noise hits them alike. Medians are reported; every run is in the JSON.

Ratios are throughput ratios (= unverified median s / verified median s): 1.0 means verification
costs nothing, 0.5 that it doubles the time. The target is crc32c-verified >= 0.8 x unverified.

Run with ``make bench-transfer``, i.e. ``python benchmarks/transfer_bench.py [--total-mb 1024]
[--files 8] [--reps 3] [--methods hdfs_put,hdfs_cp,distcp,scp] [--target-block-mb 128]
[--source-block-mb 64]``; writes ``.bench/transfer_bench.json``. Needs Java 17, the Hadoop jars
(``bash tests/support/hadoop/fetch.sh``, run automatically) and ``/usr/sbin/sshd`` for scp.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support: the local servers (not part of the wheel)

BENCH_DIR = ROOT / ".bench"
MIB = 1 << 20
BLOCK = 8 * MIB
HDFS_METHODS = ("hdfs_put", "hdfs_cp", "distcp")
REFERENCES = ("scp", "fsspec")
METHODS = (*HDFS_METHODS, *REFERENCES)
# fsspec to webhdfs:// is left out unless asked for: fsspec's WebHDFS writer sends one APPEND per
# buffered block, and a run of 1 GiB took 65-88 s (12-16 MiB/s), a quarter of the whole benchmark.
DEFAULT_METHODS = ("hdfs_put", "hdfs_cp", "distcp", "scp")
VARIANTS = ("unverified", "crc32c", "crc32c+webhdfs", "sha256")
VERIFY_MODE = {"unverified": None, "crc32c": "checksum", "crc32c+webhdfs": "checksum", "sha256": "sha256"}
EXPECTED_CHECK = {"crc32c": "crc32c", "crc32c+webhdfs": "crc32c", "sha256": "sha256"}
TARGET_RATIO = 0.8


def write_sources(source_dir: Path, total_bytes: int, files: int):
    """Random (incompressible) chunk files named as an extract names them; their Manifest."""
    import pyarrow as pa

    from airflow_provider_impala_transfer.core.common.checksums import Digests
    from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest

    source_dir.mkdir(parents=True)
    sizes = [total_bytes // files + (1 if i < total_bytes % files else 0) for i in range(files)]
    entries = []
    for part, size in enumerate(sizes):
        path = source_dir / f"chunk-00000-part-{part:05d}.parquet"
        digests, left = Digests(), size
        with open(path, "wb") as out:
            while left:
                block = os.urandom(min(BLOCK, left))
                out.write(block)
                digests.update(block)
                left -= len(block)
        entries.append(FileEntry(path="file://" + str(path), bytes=size, sha256=digests.sha256,
                                 crc32c=digests.crc32c, rows=0, chunk=0, part=part, format="parquet",
                                 compression="snappy"))
    return Manifest(files=entries, schema=pa.schema([("id", pa.int64())]), chunks=[Chunk(index=0)])


def run_tool(argv: list[str]) -> bytes:
    """No shell: argv as given; stderr shown if the tool fails."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... exited with {result.returncode}: "
                           f"{result.stderr.decode('utf-8', 'replace')[-2000:]}")
    return result.stdout


class Cluster:
    """The untimed chores on the local HDFS clusters: delete a tree, make a directory, list sizes,
    and wait until deleted blocks are really gone from the DataNodes' disks."""

    def __init__(self, hadoop):
        self.hadoop = hadoop
        self.baseline = {name: self._block_bytes(c) for name, c in hadoop.clusters.items()}

    @staticmethod
    def _block_bytes(cluster) -> int:
        total = 0
        for folder, _, names in os.walk(cluster.workdir / "data"):
            for name in names:
                if name.startswith("blk_") and not name.endswith(".meta"):
                    try:
                        total += os.path.getsize(os.path.join(folder, name))
                    except FileNotFoundError:  # deleted while we walk
                        pass
        return total

    def delete(self, uri: str) -> None:
        """``hdfs://clusterN/path``: recursive WebHDFS DELETE (no trash, no JVM)."""
        name, path = uri[len("hdfs://"):].split("/", 1)
        self.hadoop[name].webhdfs("DELETE", "/" + path, "DELETE", recursive="true")

    def mkdir(self, uri: str) -> None:
        name, path = uri[len("hdfs://"):].split("/", 1)
        self.hadoop[name].webhdfs("PUT", "/" + path, "MKDIRS")

    def sizes(self, uri: str) -> dict[str, int]:
        name, path = uri[len("hdfs://"):].split("/", 1)
        listed = self.hadoop[name].webhdfs("GET", "/" + path, "LISTSTATUS")["FileStatuses"]["FileStatus"]
        return {s["pathSuffix"]: s["length"] for s in listed if s["type"] == "FILE"}

    def settle(self, timeout: float = 60.0, slack: int = 4 * MIB) -> float:
        """Until every DataNode holds no more block bytes than at start (+ slack); returns seconds."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if all(self._block_bytes(c) <= self.baseline[n] + slack for n, c in self.hadoop.clusters.items()):
                break
            time.sleep(0.2)
        else:
            print(f"  (DataNodes still hold deleted blocks after {timeout:.0f}s; going on)", flush=True)
        return time.monotonic() - started


class Bench:
    """One measured variant: ``clean()`` (untimed) then ``run(rep)`` -> seconds and phases."""

    name: str
    method: str
    variant: str
    note: str

    def clean(self) -> None:
        raise NotImplementedError

    def run(self, rep: str) -> dict:
        raise NotImplementedError


class RawBench(Bench):
    """One ``hdfs dfs -cp`` or ``-put`` of all files into an existing directory on cluster2."""

    def __init__(self, verb: str, manifest, cluster: Cluster, root: str):
        self.name = self.method = f"raw_{verb}"
        self.variant = "raw"
        self.verb, self.manifest, self.cluster, self.root = verb, manifest, cluster, root
        what = "file:///... URIs" if verb == "cp" else "local paths"
        self.note = f"ONE hdfs dfs -{verb} of all files ({what}), no -mkdir, no verification"

    def clean(self) -> None:
        self.cluster.delete(self.root)

    def run(self, rep: str) -> dict:
        target = f"{self.root}/{rep}"
        self.cluster.mkdir(target)  # untimed: the command is the copy alone
        sources = [f.path if self.verb == "cp" else f.local for f in self.manifest.files]
        started = time.perf_counter()
        run_tool(["hdfs", "dfs", f"-{self.verb}", *sources, target + "/"])
        seconds = time.perf_counter() - started
        found = self.cluster.sizes(target)
        expected = {f.name: f.bytes for f in self.manifest.files}
        if found != expected:
            raise RuntimeError(f"{self.name}: {target} holds {found}, expected {expected}")
        return {"seconds": seconds}


class DeliverBench(Bench):
    """One method, one variant: ``method.deliver`` alone, or ``deliver_chunk`` with a verify mode
    (``method.deliver`` is then timed on its own as the copy phase)."""

    def __init__(self, method_name: str, variant: str, manifest, method, cleanup, note: str):
        self.method, self.variant = method_name, variant
        self.name = method_name if variant == "unverified" else f"{method_name}+{variant}"
        self.manifest, self.impl, self.cleanup, self.note = manifest, method, cleanup, note
        self._copied: float | None = None
        deliver = method.deliver

        def timed_deliver(*args, **kwargs):
            try:
                return deliver(*args, **kwargs)
            finally:
                self._copied = time.perf_counter()

        method.deliver = timed_deliver  # instance attribute: deliver_chunk calls it as usual

    def clean(self) -> None:
        self.cleanup()

    def run(self, rep: str) -> dict:
        from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
        from airflow_provider_impala_transfer.core.transfer.layout import Run

        run = Run(f"bench-{self.name}-{rep}")
        files, expected = self.manifest.files, self.manifest.bytes
        mode = VERIFY_MODE[self.variant]
        self._copied = None
        started = time.perf_counter()
        if mode is None:
            counters = self.impl.deliver(files, run, overwrite=True)
            seconds = time.perf_counter() - started
            result = {"seconds": seconds, "copy_s": seconds}
            # untimed: the copies are there with their sizes
            target_dir = self.impl.target_dir(run)
            paths = [f"{target_dir}/{f.name}" for f in files]
            found = self.impl.destination.file_info(paths, checksum=None)
            if [found[p][0] for p in paths] != [f.bytes for f in files]:
                raise RuntimeError(f"{self.name}: delivered sizes {found} differ from the manifest")
        else:
            record = deliver_chunk(self.impl, self.manifest, run, overwrite=True, verify_mode=mode)
            seconds = time.perf_counter() - started
            counters = record.counters
            if record.bytes != expected or len(record.files) != len(files) or \
                    record.checks != EXPECTED_CHECK[self.variant]:
                raise RuntimeError(f"{self.name}: delivered {record.bytes:,} bytes in {len(record.files)} files "
                                   f"checked by {record.checks}, expected {expected:,} checked by "
                                   f"{EXPECTED_CHECK[self.variant]}")
            copy_s = self._copied - started
            result = {"seconds": seconds, "copy_s": copy_s, "verify_s": seconds - copy_s, "checks": record.checks}
        if counters:
            result["counters"] = counters
            if counters.get("Bytes Copied", expected) != expected:
                raise RuntimeError(f"{self.name}: DistCp copied {counters['Bytes Copied']:,} bytes, expected {expected:,}")
        return result


def build_benches(names: list[str], manifest, work: Path, hadoop, cluster: Cluster | None,
                  start_sshd) -> list[Bench]:
    from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
    from airflow_provider_impala_transfer.core.transfer.destinations import (
        FsspecDestination,
        HdfsDestination,
        SshDestination,
    )
    from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
    from airflow_provider_impala_transfer.core.transfer.distcp import DistcpMethod, DistcpOptions
    from airflow_provider_impala_transfer.core.transfer.methods import (
        FsspecMethod,
        HdfsCpMethod,
        HdfsPutMethod,
        ScpMethod,
    )
    from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget
    from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata

    runner = CommandRunner(timeout=1800)
    benches: list[Bench] = []
    if cluster is not None:
        benches += [RawBench("cp", manifest, cluster, "hdfs://cluster2/bench/raw_cp"),
                    RawBench("put", manifest, cluster, "hdfs://cluster2/bench/raw_put")]
    for name in names:
        if name in HDFS_METHODS:
            for variant in VARIANTS:
                slug = f"{name}-{variant.replace('+', '-')}"
                root = f"hdfs://cluster2/bench/{slug}"
                metadata = None
                if variant == "crc32c+webhdfs":
                    from hdfs import InsecureClient

                    metadata = WebHdfsMetadata(InsecureClient(f"http://{hadoop.target.webhdfs_address}",
                                                              user=hadoop.user))
                destination = HdfsDestination(root=root, shell=HdfsShell(runner=runner), metadata=metadata)
                roots = [root]
                if name == "hdfs_put":
                    method = HdfsPutMethod(destination=destination, runner=runner)
                    what = "hdfs dfs -mkdir -p + -put"
                elif name == "hdfs_cp":
                    method = HdfsCpMethod(destination=destination, runner=runner)
                    what = "hdfs dfs -mkdir -p + -cp file:// -> cluster2"
                else:
                    staged = f"hdfs://cluster1/bench/{slug}-source"
                    method = DistcpMethod(destination=destination, source_shell=HdfsShell(runner=runner),
                                          runner=runner, source_hdfs_path=staged,
                                          options=DistcpOptions(maps=2), listing_dir=str(work / "distcp-listings"))
                    roots.append(staged)
                    what = "-put to cluster1 staging, -mkdir, real DistCp cluster1 -> cluster2 (2 maps), -rm staging"
                verify = {"unverified": ", no verification",
                          "crc32c": " + verify: -stat + one -checksum (COMPOSITE_CRC)",
                          "crc32c+webhdfs": " + verify: WebHDFS LISTSTATUS + one -checksum (COMPOSITE_CRC)",
                          "sha256": " + verify: -stat + one -cat read-back, sha256"}[variant]

                def cleanup(roots=tuple(roots)):
                    for uri in roots:
                        cluster.delete(uri)

                benches.append(DeliverBench(name, variant, manifest, method, cleanup, what + verify))
        elif name == "scp":
            sshd = start_sshd()
            remote = work / "scp-target"
            target = ScpTarget(host=sshd.host, port=sshd.port, user=sshd.user, key_file=str(sshd.key_file),
                               known_hosts=str(sshd.known_hosts), remote_path=str(remote))
            method = ScpMethod(destination=SshDestination(target=target, runner=runner), runner=runner)
            benches.append(DeliverBench("scp", "sha256", manifest, method,
                                        lambda remote=remote: shutil.rmtree(remote, ignore_errors=True),
                                        "scp to sshd on 127.0.0.1 (local disk) + sha256sum over ssh"))
        elif name == "fsspec":
            import fsspec

            host, port = hadoop.target.webhdfs_address.split(":")
            fs = fsspec.filesystem("webhdfs", host=host, port=int(port), user=hadoop.user, skip_instance_cache=True)
            method = FsspecMethod(destination=FsspecDestination(fs=fs, root="/bench/fsspec"))
            benches.append(DeliverBench("fsspec", "sha256", manifest, method,
                                        lambda: cluster.delete("hdfs://cluster2/bench/fsspec"),
                                        "fsspec webhdfs:// put_file to cluster2 + read-back sha256 over WebHDFS"))
    return benches


def summarize(bench: Bench, runs: list[dict], total_bytes: int) -> dict:
    seconds = [r["seconds"] for r in runs]
    summary = {
        "name": bench.name, "method": bench.method, "variant": bench.variant, "note": bench.note, "runs": runs,
        "median_s": statistics.median(seconds), "best_s": min(seconds),
        "median_mib_per_s": total_bytes / MIB / statistics.median(seconds),
        "best_mib_per_s": total_bytes / MIB / min(seconds),
    }
    for phase in ("copy_s", "verify_s"):
        if all(phase in r for r in runs):
            summary[f"median_{phase}"] = statistics.median(r[phase] for r in runs)
    return summary


def matrix(results: dict[str, dict], names: list[str]) -> dict[str, dict]:
    """Per HDFS method: MiB/s per variant, and each verified variant / unverified (throughput ratio)."""
    table = {}
    raw_cp = results.get("raw_cp")
    for name in names:
        if name not in HDFS_METHODS:
            continue
        row: dict[str, object] = {}
        base = results[name]
        for variant in VARIANTS:
            r = results[name if variant == "unverified" else f"{name}+{variant}"]
            row[f"{variant}_mib_per_s"] = r["median_mib_per_s"]
            row[f"{variant}_median_s"] = r["median_s"]
            if variant != "unverified":
                row[f"{variant}_ratio"] = base["median_s"] / r["median_s"]
                row[f"{variant}_verify_s"] = r["median_verify_s"]
                row[f"{variant}_copy_s"] = r["median_copy_s"]
                # the same ratio from the phases of the verified runs alone: copy s / (copy + verify) s
                row[f"{variant}_phase_ratio"] = statistics.median(v["copy_s"] / v["seconds"] for v in r["runs"])
                # the same ratio rep by rep (runs of one rep ran close together), for the noise
                row[f"{variant}_paired_ratios"] = [u["seconds"] / v["seconds"]
                                                   for u, v in zip(base["runs"], r["runs"])]
        if raw_cp:
            row["unverified_vs_raw_cp"] = raw_cp["median_s"] / base["median_s"]
            row["crc32c_vs_raw_cp"] = raw_cp["median_s"] / results[f"{name}+crc32c"]["median_s"]
        row["meets_target"] = row["crc32c_ratio"] >= TARGET_RATIO
        table[name] = row
    return table


def report(results: dict[str, dict], order: list[str], table: dict[str, dict]) -> None:
    print(f"\n{'run':<24} {'median s':>9} {'best s':>7} {'MiB/s':>6} {'copy s':>7} {'verify s':>9}  what")
    for name in order:
        r = results[name]
        copy = f"{r['median_copy_s']:.2f}" if "median_copy_s" in r else "-"
        verify = f"{r['median_verify_s']:.2f}" if "median_verify_s" in r else "-"
        print(f"{name:<24} {r['median_s']:>9.2f} {r['best_s']:>7.2f} {r['median_mib_per_s']:>6.0f} "
              f"{copy:>7} {verify:>9}  {r['note']}")
    if not table:
        return
    print(f"\nMiB/s (median)  {'unverified':>10} {'crc32c':>7} {'ratio':>6} {'verify s':>8} "
          f"{'crc+web':>7} {'ratio':>6} {'verify s':>8} {'sha256':>7} {'ratio':>6} {'verify s':>8}")
    for name, row in table.items():
        cells = [f"{row['unverified_mib_per_s']:>10.0f}"]
        for variant, width in (("crc32c", 7), ("crc32c+webhdfs", 7), ("sha256", 7)):
            cells.append(f"{row[f'{variant}_mib_per_s']:>{width}.0f} {row[f'{variant}_ratio']:>6.2f} "
                         f"{row[f'{variant}_verify_s']:>8.2f}")
        print(f"{name:<15} {' '.join(cells)}")
    print("same ratio from the verified runs' own phases, copy s / (copy + verify) s: " + "; ".join(
        f"{name} " + " ".join(f"{v} {row[f'{v}_phase_ratio']:.2f}" for v in VARIANTS[1:]) for name, row in table.items()))
    for raw in ("raw_cp", "raw_put"):
        if raw in results:
            print(f"{raw:<15} {results[raw]['median_mib_per_s']:>10.0f}  (one hdfs dfs -{raw[4:]}, no -mkdir, "
                  f"no verification)")
    print(f"\nratio: verified MiB/s / unverified MiB/s of the same method (= unverified median s / verified "
          f"median s), separate timed runs; target for crc32c >= {TARGET_RATIO}.\n"
          "verify s: the verification part of the verified run (its deliver_chunk minus its own method.deliver).")


def java_version() -> str | None:
    from tests.support.local_hdfs import java_binary

    try:
        result = subprocess.run([java_binary(), "-version"], stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, check=False)
        return (result.stderr or result.stdout).strip().splitlines()[0]
    except (OSError, IndexError, RuntimeError):
        return None


def verify_breakdown(manifest, cluster: Cluster, samples: int = 3) -> dict[str, float]:
    """Median seconds of each step a crc32c verification runs, on one chunk delivered untimed by
    ``hdfs dfs -put``: a bare FsShell JVM (``-test -d``), ``-stat %b`` of all files,
    ``-Ddfs.checksum.combine.mode=COMPOSITE_CRC -checksum`` of all files, WebHDFS LISTSTATUS."""
    target = "hdfs://cluster2/bench/breakdown"
    cluster.mkdir(target)
    run_tool(["hdfs", "dfs", "-put", *[f.local for f in manifest.files], target + "/"])
    paths = [f"{target}/{f.name}" for f in manifest.files]
    steps = {
        "bare_jvm_s": lambda: run_tool(["hdfs", "dfs", "-test", "-d", target]),
        "stat_s": lambda: run_tool(["hdfs", "dfs", "-stat", "%b", *paths]),
        "checksum_s": lambda: run_tool(["hdfs", "dfs", "-Ddfs.checksum.combine.mode=COMPOSITE_CRC",
                                        "-checksum", *paths]),
        "webhdfs_liststatus_s": lambda: cluster.sizes(target),
    }
    times: dict[str, list[float]] = {step: [] for step in steps}
    for _ in range(samples):
        for step, call in steps.items():
            started = time.perf_counter()
            call()
            times[step].append(time.perf_counter() - started)
    cluster.delete(target)
    return {step: statistics.median(values) for step, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total-mb", type=int, default=1024, help="MiB of chunk files in all (default 1024)")
    parser.add_argument("--files", type=int, default=8, help="number of chunk files (default 8)")
    parser.add_argument("--reps", type=int, default=3, help="timed runs of each variant (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes over every variant first (default 1)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)} (default {','.join(DEFAULT_METHODS)}; "
                             "raw_cp/raw_put always run)")
    parser.add_argument("--target-block-mb", type=int, default=128,
                        help="cluster2's block size, also the client's dfs.blocksize (default 128)")
    parser.add_argument("--source-block-mb", type=int, default=64, help="cluster1's block size (default 64)")
    args = parser.parse_args()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        parser.error(f"unknown methods {unknown}: use some of {', '.join(METHODS)}")
    if min(args.total_mb, args.files, args.reps, args.target_block_mb, args.source_block_mb) <= 0 or args.warmup < 0:
        parser.error("--total-mb, --files, --reps and block sizes must be > 0, --warmup >= 0")
    total_bytes = args.total_mb * MIB

    from tests.support.local_hdfs import LocalHadoop

    wall = time.perf_counter()
    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="transfer-", dir=BENCH_DIR))
    sshd = hadoop = None
    results: dict[str, dict] = {}
    facts: dict[str, object] = {}
    try:
        started = time.perf_counter()
        block_sizes = {"cluster1": args.source_block_mb * MIB, "cluster2": args.target_block_mb * MIB}
        hadoop = LocalHadoop(work / "hadoop", block_sizes=block_sizes)
        hadoop.start()
        os.environ.update(hadoop.env())
        os.environ.pop("HADOOP_USER_NAME", None)
        hdfs = shutil.which("hdfs")
        if hdfs != str(hadoop.bin_dir / "hdfs"):
            raise SystemExit(f"PATH does not resolve hdfs to the local Hadoop: {hdfs}")
        cluster = Cluster(hadoop)
        print(f"started 2 HDFS clusters (NameNode + DataNode each; blocks cluster1 {args.source_block_mb} MiB, "
              f"cluster2 and client {args.target_block_mb} MiB) in {time.perf_counter() - started:.1f}s; "
              f"pids {[c.pids for c in hadoop.clusters.values()]}", flush=True)

        started = time.perf_counter()
        manifest = write_sources(work / "sources", total_bytes, args.files)
        os.sync()
        print(f"wrote {args.files} files, {total_bytes / MIB:,.0f} MiB under {work.relative_to(ROOT)} "
              f"(sha256 + crc32c while writing) in {time.perf_counter() - started:.1f}s", flush=True)

        def start_sshd():
            nonlocal sshd
            from tests.support.local_sshd import LocalSshd

            sshd = LocalSshd(workdir=work / "sshd").start()
            print(f"sshd pid {sshd.pid} on {sshd.host}:{sshd.port}", flush=True)
            return sshd

        benches = build_benches(names, manifest, work, hadoop, cluster, start_sshd)
        order = [b.name for b in benches]
        runs: dict[str, list[dict]] = {b.name: [] for b in benches}
        settle: list[float] = []

        def one(bench: Bench, rep: str) -> dict:
            bench.clean()  # untimed: every run writes fresh files...
            settle.append(cluster.settle())  # ...after the DataNodes removed the last run's blocks
            os.sync()  # untimed: no run pays for the previous run's writeback
            run = bench.run(rep)
            bench.clean()
            return run

        for w in range(args.warmup):
            for bench in benches:
                run = one(bench, f"warmup{w}")
                print(f"warm-up {bench.name:<24} {run['seconds']:6.2f}s (untimed)", flush=True)
        if cluster is not None:
            facts["verify_breakdown"] = verify_breakdown(manifest, cluster)
            print("crc32c verification, step by step (median of 3): " + ", ".join(
                f"{k[:-2]} {v:.2f}s" for k, v in facts["verify_breakdown"].items()), flush=True)
        for rep in range(args.reps):
            shift = rep * len(benches) // args.reps
            for bench in benches[shift:] + benches[:shift]:
                run = one(bench, f"rep{rep}")
                runs[bench.name].append(run)
                phases = (f"  copy {run['copy_s']:.2f}s verify {run['verify_s']:.2f}s" if "verify_s" in run else "")
                print(f"rep {rep + 1} {bench.name:<24} {run['seconds']:6.2f}s "
                      f"{total_bytes / MIB / run['seconds']:7.0f} MiB/s{phases}", flush=True)
        results = {name: summarize(b, runs[name], total_bytes) for name, b in zip(order, benches)}
        facts["settle_s_median"] = statistics.median(settle) if settle else None
        facts["hadoop_version"] = run_tool(["hdfs", "version"]).decode().splitlines()[0]
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"WebHDFS call failed: {exc}: {exc.read()[:2000]!r}") from exc
    finally:
        if sshd is not None:
            sshd.stop()
        if hadoop is not None:
            hadoop.stop()
        shutil.rmtree(work, ignore_errors=True)

    wall_s = time.perf_counter() - wall
    table = matrix(results, names)
    print(f"\n{args.files} files x {total_bytes / args.files / MIB:,.1f} MiB = {total_bytes / MIB:,.0f} MiB, "
          f"{args.reps} reps (median), order rotated per rep, {args.warmup} warm-up pass(es); "
          f"wall time {wall_s / 60:.1f} min")
    report(results, order, table)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
               "java": java_version(), "block_size_mib": {"cluster1": args.source_block_mb,
                                                          "cluster2": args.target_block_mb,
                                                          "client": args.target_block_mb}, **facts}
    print(f"\nmachine: {machine}")
    out = BENCH_DIR / "transfer_bench.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "total_bytes": total_bytes, "files": args.files, "reps": args.reps,
        "warmup": args.warmup, "wall_s": wall_s, "order": order,
        "ratio_definition": "unverified median_s / verified median_s of the same method (throughput ratio), "
                            "from separate timed runs", "target_ratio": TARGET_RATIO,
        "machine": machine, "hdfs_methods": table, "results": results,
    }, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
