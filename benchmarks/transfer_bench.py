"""Local transfer throughput: each transfer method against plain ``cp`` of the same bytes.

Writes ``--files`` chunk files (default 8 x 128 MiB = 1 GiB) of incompressible random bytes, then
delivers them, as one chunk, with each method through the project's real code path
``core.transfer.delivery.deliver_chunk(method, manifest, layout, overwrite=True, verify_mode="sha256")``:

  hdfs_put      ``hdfs dfs -put`` (Hadoop's REAL FsShell from ``testing.local_hadoop``) to file://
  hdfs_cp       ``hdfs dfs -cp`` from the files' file:// URIs, same FsShell
  distcp        the FAKE ``hadoop distcp`` from ``testing.local_hadoop``: a STAND-IN that copies with
                one FsShell ``-cp``, after the method's real staging ``-put`` into source_hdfs_path.
                Its number is FsShell put + cp + verification, nothing about a real cluster's DistCp.
  scp           OpenSSH ``scp`` to a real sshd on 127.0.0.1 (``testing.local_sshd``)
  fsspec        ``fsspec`` local filesystem -> local filesystem

Every method's seconds include its verification: the delivered files are read back and hashed
(sha256) and compared with the manifest. So the baseline is the same work done the plainest way:

  cp+sha256sum  ``cp --reflink=never`` of the files into a fresh directory, then ``sha256sum`` of
                the copies (the hashes are compared with the manifest, outside the timing)
  cp+hashlib    the same ``cp``, then Python's ``hashlib.sha256`` of the copies in 1 MiB blocks (as
                the fsspec destination verifies). For reference: Debian's ``sha256sum`` (coreutils'
                own C code) does not use the CPU's SHA instructions and hashes several times slower
                than OpenSSL, which hashlib uses; the ratio column vs cp+sha256sum shows that.
  cp            the same ``cp`` without hashing, for reference

The ratios are throughput ratios (method MiB/s / baseline MiB/s, i.e. baseline s / method s): 1.0
means as fast as the baseline, 0.5 means it takes twice as long. For the transfer methods the
seconds are split into copy (``method.deliver``) and verify (the rest of ``deliver_chunk``).

Everything is local and on one disk (``.bench/transfer-*/``, removed at the end). The source files
sit in the page cache (23 GB RAM here), so reads cost no disk I/O; targets are written through the
page cache, not fsynced, by every method and the baseline alike. Before each timed run the previous
target directory is deleted and ``sync`` flushes dirty pages (both outside the timing), so every
run writes fresh files and pays no earlier run's writeback. One untimed warm-up pass of every method
comes first (JVM class archive, sshd, page cache); then ``--reps`` passes, the order rotated each
pass so machine noise hits all methods alike. Medians are reported, best runs kept in the JSON.

Run with ``make bench-transfer``, i.e. ``python benchmarks/transfer_bench.py [--total-mb 1024]
[--files 8] [--reps 3] [--methods hdfs_put,scp]``; writes ``.bench/transfer_bench.json``.
Needs Java 17 (FsShell) and ``/usr/sbin/sshd`` (openssh-server) for the methods that use them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support: the local servers (not part of the wheel)

BENCH_DIR = ROOT / ".bench"
MIB = 1 << 20
BLOCK = 8 * MIB
BASELINES = ("cp+sha256sum", "cp+hashlib", "cp")
TRANSFERS = ("hdfs_put", "hdfs_cp", "distcp", "scp", "fsspec")
NOTES = {
    "cp+sha256sum": "baseline: cp into a fresh dir, then sha256sum of the copies",
    "cp+hashlib": "reference: cp, then Python hashlib sha256 (OpenSSL) of the copies",
    "cp": "cp only, no hashing",
    "hdfs_put": "hdfs dfs -put (real FsShell) + read-back sha256",
    "hdfs_cp": "hdfs dfs -cp (real FsShell) + read-back sha256",
    "distcp": "STAND-IN distcp (FsShell put to staging + FsShell -cp) + read-back sha256",
    "scp": "scp to sshd on 127.0.0.1 + remote sha256sum over ssh",
    "fsspec": "fsspec local -> local + read-back sha256",
}


def write_sources(source_dir: Path, total_bytes: int, files: int) -> dict:
    """Random (incompressible) chunk files named as an extract names them; the manifest for them."""
    source_dir.mkdir(parents=True)
    sizes = [total_bytes // files + (1 if i < total_bytes % files else 0) for i in range(files)]
    entries = []
    for part, size in enumerate(sizes):
        path = source_dir / f"chunk-00000-part-{part:05d}.parquet"
        digest, left = hashlib.sha256(), size
        with open(path, "wb") as out:
            while left:
                block = os.urandom(min(BLOCK, left))
                out.write(block)
                digest.update(block)
                left -= len(block)
        entries.append({"path": "file://" + str(path), "rows": 0, "bytes": size, "sha256": digest.hexdigest(),
                        "chunk": 0, "part": part, "format": "parquet", "compression": "snappy"})
    return {"files": entries, "chunks": [{"index": 0}]}


def run_tool(argv: list[str]) -> bytes:
    """No shell: argv as given; stderr shown if the tool fails."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... exited with {result.returncode}: "
                           f"{result.stderr.decode('utf-8', 'replace')[-2000:]}")
    return result.stdout


def hashlib_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


class Bench:
    """One measured method: ``clean()`` (untimed) then ``run(rep)`` -> seconds and phases."""

    name: str
    roots: list[Path]

    def clean(self) -> None:
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)

    def run(self, rep: str) -> dict:
        raise NotImplementedError


class CpBench(Bench):
    def __init__(self, name: str, manifest: dict, target_root: Path, *, hasher: str | None):
        self.name, self.manifest, self.roots, self.hasher = name, manifest, [target_root], hasher
        self.sources = [e["path"][len("file://"):] for e in manifest["files"]]

    def run(self, rep: str) -> dict:
        target = self.roots[0] / rep
        started = time.perf_counter()
        target.mkdir(parents=True)
        run_tool(["cp", "--reflink=never", "--", *self.sources, str(target) + "/"])
        copied = time.perf_counter()
        run = {"seconds": copied - started, "copy_s": copied - started}
        copies = [str(target / os.path.basename(s)) for s in self.sources]
        if self.hasher:
            if self.hasher == "sha256sum":
                out = run_tool(["sha256sum", "--", *copies])
                digests = [line.split(None, 1)[0].lstrip("\\") for line in out.decode().splitlines()]
            else:
                digests = [hashlib_sha256(c) for c in copies]
            run["seconds"] = time.perf_counter() - started
            run["verify_s"] = run["seconds"] - run["copy_s"]
            expected = [e["sha256"] for e in self.manifest["files"]]
            if digests != expected:
                raise RuntimeError(f"{self.name}: sha256sum of the copies differs from the manifest")
        else:
            sizes = [os.path.getsize(c) for c in copies]
            if sizes != [e["bytes"] for e in self.manifest["files"]]:
                raise RuntimeError(f"{self.name}: copied sizes differ from the manifest")
        return run


class DeliverBench(Bench):
    """``deliver_chunk`` with one method; ``method.deliver`` is timed on its own as the copy phase."""

    def __init__(self, name: str, manifest: dict, method, roots: list[Path]):
        self.name, self.manifest, self.method, self.roots = name, manifest, method, roots
        self._copied: float | None = None
        deliver = method.deliver

        def timed_deliver(*args, **kwargs):
            try:
                return deliver(*args, **kwargs)
            finally:
                self._copied = time.perf_counter()

        method.deliver = timed_deliver  # instance attribute: deliver_chunk calls it as usual

    def run(self, rep: str) -> dict:
        from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
        from airflow_provider_impala_transfer.core.transfer.layout import RunLayout

        layout = RunLayout(root="", run_id=f"bench-{self.name}-{rep}")
        self._copied = None
        started = time.perf_counter()
        record = deliver_chunk(self.method, self.manifest, layout, overwrite=True, verify_mode="sha256")
        seconds = time.perf_counter() - started
        expected = sum(e["bytes"] for e in self.manifest["files"])
        files = record["files"]
        if record["bytes"] != expected or len(files) != len(self.manifest["files"]) or \
                not all(f["checksum_verified"] for f in files):
            raise RuntimeError(f"{self.name}: delivered {record['bytes']:,} bytes in {len(files)} files, "
                               f"expected {expected:,} sha256-verified bytes")
        copy_s = self._copied - started
        return {"seconds": seconds, "copy_s": copy_s, "verify_s": seconds - copy_s}


def build_transfers(names: list[str], manifest: dict, work: Path, start_sshd: Callable) -> list[Bench]:
    import fsspec

    from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
    from airflow_provider_impala_transfer.core.transfer.destinations import (
        FsspecDestination,
        HdfsDestination,
        SshDestination,
    )
    from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
    from airflow_provider_impala_transfer.core.transfer.methods import (
        DistcpMethod,
        FsspecMethod,
        HdfsCpMethod,
        HdfsPutMethod,
        ScpMethod,
    )
    from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget

    targets = work / "targets"
    runner = CommandRunner()
    benches: list[Bench] = []
    for name in names:
        root = targets / name
        if name in ("hdfs_put", "hdfs_cp", "distcp"):
            destination = HdfsDestination(root="file://" + str(root), shell=HdfsShell(runner=runner))
            if name == "hdfs_put":
                method = HdfsPutMethod(destination=destination, runner=runner)
                roots = [root]
            elif name == "hdfs_cp":
                method = HdfsCpMethod(destination=destination, runner=runner)
                roots = [root]
            else:
                staged = work / "distcp-source"
                method = DistcpMethod(destination=destination, source_shell=HdfsShell(runner=runner),
                                      runner=runner, source_hdfs_path="file://" + str(staged),
                                      listing_dir=str(work / "distcp-listings"))
                roots = [root, staged]
        elif name == "scp":
            sshd = start_sshd()
            target = ScpTarget(host=sshd.host, port=sshd.port, user=sshd.user, key_file=str(sshd.key_file),
                               known_hosts=str(sshd.known_hosts), remote_path=str(root))
            method = ScpMethod(destination=SshDestination(target=target, runner=runner), runner=runner)
            roots = [root]
        elif name == "fsspec":
            method = FsspecMethod(destination=FsspecDestination(fs=fsspec.filesystem("file"), root=str(root)))
            roots = [root]
        else:
            raise SystemExit(f"unknown method {name!r}: use some of {', '.join(TRANSFERS)}")
        benches.append(DeliverBench(name, manifest, method, roots))
    return benches


def summarize(name: str, runs: list[dict], total_bytes: int) -> dict:
    seconds = [r["seconds"] for r in runs]
    summary = {
        "method": name, "note": NOTES[name], "runs": runs,
        "median_s": statistics.median(seconds), "best_s": min(seconds),
        "median_mib_per_s": total_bytes / MIB / statistics.median(seconds),
        "best_mib_per_s": total_bytes / MIB / min(seconds),
    }
    for phase in ("copy_s", "verify_s"):
        if all(phase in r for r in runs):
            summary[f"median_{phase}"] = statistics.median(r[phase] for r in runs)
    return summary


def report(results: dict[str, dict], order: list[str]) -> None:
    base, bare = results["cp+sha256sum"], results["cp"]
    print(f"\n{'method':<14} {'median s':>9} {'best s':>8} {'MiB/s':>8} {'vs cp+sha256sum':>16} "
          f"{'vs cp':>7} {'copy s':>7} {'verify s':>9}  what")
    for name in order:
        r = results[name]
        r["ratio_vs_cp_sha256sum"] = base["median_s"] / r["median_s"]
        r["ratio_vs_cp"] = bare["median_s"] / r["median_s"]
        copy = f"{r['median_copy_s']:.2f}" if "median_copy_s" in r else "-"
        verify = f"{r['median_verify_s']:.2f}" if "median_verify_s" in r else "-"
        print(f"{name:<14} {r['median_s']:>9.2f} {r['best_s']:>8.2f} {r['median_mib_per_s']:>8.0f} "
              f"{r['ratio_vs_cp_sha256sum']:>16.2f} {r['ratio_vs_cp']:>7.2f} {copy:>7} {verify:>9}  {r['note']}")
    print("\nratios: method MiB/s / baseline MiB/s (= baseline median s / method median s); < 1 is slower.\n"
          "Every transfer method's time includes reading the delivered files back and hashing them (sha256),\n"
          "so the baseline is cp+sha256sum. cp+hashlib (the same hash through OpenSSL, as hdfs_*, distcp and\n"
          "fsspec verify in Python) and bare cp are for reference; scp verifies with sha256sum on the target.\n"
          "distcp is a local STAND-IN (FsShell -put to the staging dir + FsShell -cp), not a real DistCp job:\n"
          "its number says nothing about a cluster.")


def tool_versions() -> dict:
    versions = {}
    for key, argv in {"cp": ["cp", "--version"], "ssh": ["ssh", "-V"], "java": ["java", "-version"]}.items():
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            versions[key] = ((result.stdout or "") + (result.stderr or "")).strip().splitlines()[0]
        except (OSError, IndexError):
            versions[key] = None
    return versions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total-mb", type=int, default=1024, help="MiB of chunk files in all (default 1024)")
    parser.add_argument("--files", type=int, default=8, help="number of chunk files (default 8)")
    parser.add_argument("--reps", type=int, default=3, help="timed runs of each method (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes over every method first (default 1)")
    parser.add_argument("--methods", default=",".join(TRANSFERS),
                        help=f"comma-separated subset of {','.join(TRANSFERS)} (the cp baselines always run)")
    args = parser.parse_args()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in TRANSFERS]
    if unknown or not names:
        parser.error(f"unknown methods {unknown}: use some of {', '.join(TRANSFERS)}")
    if args.total_mb <= 0 or args.files <= 0 or args.reps <= 0 or args.warmup < 0:
        parser.error("--total-mb, --files and --reps must be > 0, --warmup >= 0")
    total_bytes = args.total_mb * MIB

    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="transfer-", dir=BENCH_DIR))
    sshd = None
    results: dict[str, dict] = {}
    try:
        started = time.perf_counter()
        manifest = write_sources(work / "sources", total_bytes, args.files)
        os.sync()
        print(f"wrote {args.files} files, {total_bytes / MIB:,.0f} MiB under {work.relative_to(ROOT)} "
              f"in {time.perf_counter() - started:.1f}s", flush=True)

        if {"hdfs_put", "hdfs_cp", "distcp"} & set(names):
            from tests.support.local_hadoop import install_hadoop_tools

            started = time.perf_counter()
            os.environ.update(install_hadoop_tools(work / "bin", work / "hadoop"))
            hdfs, hadoop = shutil.which("hdfs"), shutil.which("hadoop")
            if hdfs != str((work / "bin" / "hdfs").resolve()) or hadoop != str((work / "bin" / "hadoop").resolve()):
                raise SystemExit(f"PATH does not resolve to the local Hadoop tools: hdfs={hdfs} hadoop={hadoop}")
            print(f"installed local hdfs (real FsShell) and hadoop (fake distcp) in "
                  f"{time.perf_counter() - started:.1f}s", flush=True)

        def start_sshd():
            nonlocal sshd
            from tests.support.local_sshd import LocalSshd

            sshd = LocalSshd(workdir=work / "sshd").start()
            print(f"sshd pid {sshd.pid} on {sshd.host}:{sshd.port}", flush=True)
            return sshd

        benches: list[Bench] = [
            CpBench("cp+sha256sum", manifest, work / "targets" / "cp+sha256sum", hasher="sha256sum"),
            CpBench("cp+hashlib", manifest, work / "targets" / "cp+hashlib", hasher="hashlib"),
            CpBench("cp", manifest, work / "targets" / "cp", hasher=None),
            *build_transfers(names, manifest, work, start_sshd),
        ]
        order = [b.name for b in benches]
        runs: dict[str, list[dict]] = {b.name: [] for b in benches}

        def one(bench: Bench, rep: str) -> dict:
            bench.clean()  # untimed: every run writes fresh files
            os.sync()  # untimed: no run pays for the previous run's writeback
            run = bench.run(rep)
            bench.clean()
            return run

        for w in range(args.warmup):
            for bench in benches:
                run = one(bench, f"warmup{w}")
                print(f"warm-up {bench.name:<13} {run['seconds']:6.2f}s (untimed)", flush=True)
        for rep in range(args.reps):
            shift = rep % len(benches)
            for bench in benches[shift:] + benches[:shift]:
                run = one(bench, f"rep{rep}")
                runs[bench.name].append(run)
                print(f"rep {rep + 1} {bench.name:<13} {run['seconds']:6.2f}s "
                      f"{total_bytes / MIB / run['seconds']:7.0f} MiB/s", flush=True)
        results = {name: summarize(name, runs[name], total_bytes) for name in order}
    finally:
        if sshd is not None:
            sshd.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.files} files x {total_bytes / args.files / MIB:,.1f} MiB = {total_bytes / MIB:,.0f} MiB, "
          f"{args.reps} reps (median), order rotated per rep, {args.warmup} warm-up pass(es)")
    report(results, order)
    out = BENCH_DIR / "transfer_bench.json"
    out.write_text(json.dumps({
        "total_bytes": total_bytes, "files": args.files, "reps": args.reps, "warmup": args.warmup,
        "methods": order, "ratio_definition": "baseline median_s / method median_s (throughput ratio)",
        "baseline": NOTES["cp+sha256sum"], "distcp_note": NOTES["distcp"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "tools": tool_versions()},
        "results": results,
    }, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
