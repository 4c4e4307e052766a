"""Faults at the target while chunks are delivered, with real processes only: an sshd of the test's
own stopped in the middle of an scp, an HDFS space quota on cluster2 smaller than the chunk, a
local target directory that is a tiny tmpfs (mounted only inside the CLI's own mount namespace),
and two CLI runs of different dates writing into one table root at the same time."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fsspec
import psutil
import pytest

from airflow_provider_impala_transfer.core.transfer.delivery import Attempt, deliver_chunk, deliver_with_fallback
from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets
from tests.conftest import EVENTS_ROWS
from tests.support.hdfs_files import hdfs_bytes, hdfs_names, parquet_rows
from tests.support.local_sshd import LocalSshd
from tests.test_transfer_methods import make_chunk

MiB = 1 << 20


def deliver_in_order(targets: TransferTargets, chain: list[str], manifest, run: Run,
                     on_attempt=lambda attempt: None):
    """The CLI's per-chunk loop (cli/run.py): each method of ``chain`` until one delivers and verifies."""
    runner = targets.runner(timeout=120)
    return deliver_with_fallback(
        [(name, lambda name=name: targets.method(name, runner)) for name in chain],
        lambda method, overwrite: deliver_chunk(method, manifest, run, overwrite=True),
        label="chunk 0", on_attempt=on_attempt)


def tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` (relative path -> size)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def visible(paths) -> list[str]:
    """Paths no component of which is hidden from Hive/Impala (a leading '.' or '_')."""
    return sorted(p for p in paths if not any(part.startswith((".", "_")) for part in Path(p).parts))


# --- 2. sshd stopped in the middle of an scp ----------------------------------------------------

def stop_sshd(server: LocalSshd, *, sessions: bool) -> list[int]:
    """Stop the listening sshd by its PID (as ``systemctl stop ssh`` does: open sessions live on);
    with ``sessions`` also SIGKILL the per-connection sshd processes it forked, found by parent PID
    (the host going down). Returns the sessions' PIDs, so the test can end any that outlive it."""
    children = psutil.Process(server.pid).children(recursive=True)
    server.stop()
    if sessions:
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
    return [c.pid for c in children]


@pytest.mark.parametrize("sessions", [False, True], ids=["listener-stopped", "listener-and-sessions-killed"])
def test_sshd_stopped_mid_scp_fails_that_method_clearly_publishes_nothing_and_the_next_method_delivers(
        sessions, tmp_path):
    """The target host's sshd goes away while a chunk is on the wire. The scp attempt fails with
    ssh's own words and the host it tried; nothing reaches a place readers look (a partial file may
    stay in the hidden staging directory); the chain goes on, here to fsspec writing the same tree,
    which replaces the partial file with the whole, verified one."""
    server = LocalSshd(tmp_path / "sshd").start()
    sessions_left: list[int] = []
    try:
        size = 3 * MiB
        manifest = make_chunk(tmp_path / "extract", parts=1, size=size)
        remote = tmp_path / "remote"
        run = Run("manual__2024-01-01T00:00:00+00:00", {"ds": "2024-01-01"})
        layout = run.at(str(remote))
        arriving = Path(layout.staging_dir) / manifest.files[0].name
        targets = TransferTargets(
            scp=ScpTarget(host=server.host, port=server.port, user=server.user, key_file=str(server.key_file),
                          known_hosts=str(server.known_hosts), remote_path=str(remote), connect_timeout=5,
                          bandwidth_kbit=8_000),  # ~1 MB/s: the copy takes ~3 s
            fsspec=FsspecDestination(fs=fsspec.filesystem("file"), root=str(remote)))
        stopped = threading.Event()

        def stop_once_bytes_arrive():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not stopped.is_set():
                if arriving.exists() and 256 * 1024 <= arriving.stat().st_size < size:
                    sessions_left.extend(stop_sshd(server, sessions=sessions))
                    stopped.set()
                time.sleep(0.02)

        after_scp: dict = {}

        def look(attempt: Attempt):
            if attempt.method == "scp":
                after_scp.update(attempt=attempt, files=tree(remote))

        watcher = threading.Thread(target=stop_once_bytes_arrive, daemon=True)
        watcher.start()
        record, attempts = deliver_in_order(targets, ["scp", "fsspec"], manifest, run, on_attempt=look)
        stopped.set()
        watcher.join(5)
        assert after_scp, "scp was never tried"
        failed, left = after_scp["attempt"], after_scp["files"]
        assert not failed.delivered and f"{server.user}@{server.host}" in failed.detail
        if sessions:  # the copy itself breaks off
            assert failed.error.startswith("scp exited with"), failed.detail
            assert "closed by remote host" in failed.detail or "lost connection" in failed.detail, failed.detail
            assert 0 < left.get(str(arriving.relative_to(remote)), 0) < size  # partial, and hidden
        else:  # the open session finishes the copy, but nothing can check it
            assert failed.error.startswith("cannot read back delivered files under "
                                           f"{server.user}@{server.host}:{layout.staging_dir}"), failed.detail
            assert "Connection refused" in failed.detail
        assert visible(left) == [] and not Path(layout.final_dir).exists()

        assert [a.method for a in attempts] == ["scp", "fsspec"] and record.method == "fsspec"
        assert tree(remote) == {str(arriving.relative_to(remote)): size}  # whole and verified, still staged
    finally:
        server.stop()
        for pid in sessions_left:  # sessions of the stopped listener that outlived it
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass


# --- 3. target full: an HDFS space quota ------------------------------------------------------

def test_an_hdfs_space_quota_smaller_than_the_chunk_fails_every_hdfs_method_naming_the_quota_and_nothing_is_visible(
        hadoop_env, tmp_path):
    """A 5 MiB chunk into a table root with a 3 MiB space quota on cluster2: distcp, hdfs put and
    hdfs cp each fail with the NameNode's own words (the quota and the directory it is set on),
    and neither staging nor the final directory holds any of the file; once the quota is cleared
    the same run delivers."""
    key = uuid.uuid4().hex[:8]
    root = f"hdfs://cluster2/faults/quota-{key}/events"
    quota_dir = root.removeprefix("hdfs://cluster2")
    hadoop_env.hdfs("dfs", "-mkdir", "-p", root, check=True)
    hadoop_env.hdfs("dfsadmin", "-fs", "hdfs://cluster2", "-setSpaceQuota", str(3 * MiB), quota_dir,
                    superuser=True, check=True)
    manifest = make_chunk(tmp_path / "extract", parts=1, size=5 * MiB)  # 3 blocks of cluster2's 2 MiB
    name = manifest.files[0].name
    run = Run("scheduled__2024-01-01T00:00:00+00:00", {"ds": "2024-01-01"})
    layout = run.at(root)
    targets = TransferTargets(hdfs_root=root, source_hdfs_path=f"hdfs://cluster1/faults/quota-{key}-staging")

    record, attempts = deliver_in_order(targets, ["distcp", "hdfs_put", "hdfs_cp"], manifest, run)
    assert record is None and [a.method for a in attempts] == ["distcp", "hdfs_put", "hdfs_cp"]
    for attempt in attempts:
        assert not attempt.delivered
        assert f"The DiskSpace quota of {quota_dir} is exceeded: quota = {3 * MiB} B = 3 MB" in attempt.detail, \
            attempt.detail
    assert hdfs_names(hadoop_env, root) == []  # only the hidden staging directory
    assert hdfs_names(hadoop_env, layout.final_dir) is None
    staged = hdfs_names(hadoop_env, layout.staging_dir, hidden=True) or []
    assert not [n for n in staged if n.startswith((name, f".{name}"))], staged  # no part of it, not even ._COPYING_

    hadoop_env.hdfs("dfsadmin", "-fs", "hdfs://cluster2", "-clrSpaceQuota", quota_dir, superuser=True, check=True)
    record, attempts = deliver_in_order(targets, ["hdfs_put", "hdfs_cp"], manifest, run)
    assert record is not None and record.method == "hdfs_put" and record.checks == "crc32c"
    assert hdfs_names(hadoop_env, layout.staging_dir) == [name]


# --- the CLI against the session's HiveServer2 --------------------------------------------------

SCRIPT = str(Path(sys.executable).parent / "impala-transfer")


def cli_argv(hiveserver, *args: str) -> list[str]:
    return [SCRIPT, "--source-host", "127.0.0.1", "--source-port", str(hiveserver.port),
            "--auth-mechanism", "PLAIN", "--user", "airflow", *args]


def cli_env(hadoop) -> dict[str, str]:
    """This environment with the session's Hadoop clients first on PATH, as an edge node has them."""
    env = {**os.environ, **hadoop.env(), "IMPALA_PASSWORD": "airflow"}
    for name in ("HADOOP_USER_NAME", "USE_DISTCP", "SOURCE_HDFS_PATH", "TARGET_CLUSTER", "TARGET_HDFS_PATH",
                 "RUN_ID", "PARTITION", "TEMP_DIR"):
        env.pop(name, None)
    return env


# --- 3b. target full: a local target directory on a full filesystem ----------------------------

FULL_TARGET_SCRIPT = r"""
target=$1 out=$2; shift 2
mount -t tmpfs -o size=256k,mode=0755 impala-transfer-full "$target" || exit 97
"$@" > "$out/run1.out" 2> "$out/run1.err"; echo $? > "$out/run1.rc"
find "$target" -mindepth 1 -type f -printf '%P %s\n' > "$out/run1.files"
mount -o remount,size=64m "$target" || exit 98
"$@" > "$out/run2.out" 2> "$out/run2.err"; echo $? > "$out/run2.rc"
find "$target" -mindepth 1 -type f -printf '%P %s\n' > "$out/run2.files"
"""


def listed(path: Path) -> dict[str, int]:
    return {name: int(size) for name, size in (line.rsplit(" ", 1) for line in path.read_text().splitlines())}


@pytest.mark.server
def test_a_full_local_target_fails_with_no_space_left_publishes_nothing_and_a_rerun_with_room_delivers(
        hiveserver, local_hadoop, tmp_path):
    """A file:// target directory that is a 256 KiB tmpfs, mounted only inside the CLI's own mount
    namespace (``unshare --mount``; the test's namespace never mounts anything). The 0.6 MB chunk
    fills it mid-file: every method fails with "No space left on device", the run publishes nothing
    and no byte of the chunk stays behind. Given room (the tmpfs remounted at 64 MiB, same
    namespace), the same run id delivers, verified, and publishes the whole file."""
    target, out = tmp_path / "target", tmp_path / "out"
    target.mkdir()
    out.mkdir()
    argv = cli_argv(hiveserver, "--table", "default.events", "--target-hdfs-path", f"file://{target}",
                    "--no-distcp", "--skip-table", "--run-id", "full1", "--temp-dir", str(tmp_path / "tmp"))
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", FULL_TARGET_SCRIPT, "sh",
                    str(target), str(out), *argv], env=cli_env(local_hadoop), check=True, timeout=300)
    assert list(target.iterdir()) == []  # the tmpfs lived and died in the child's namespace

    stdout, stderr = (out / "run1.out").read_text(), (out / "run1.err").read_text()
    assert (out / "run1.rc").read_text().strip() == "1", stdout + stderr
    assert "chunk 0: hdfs_put failed: " in stderr and "chunk 0: hdfs_cp failed: " in stderr, stderr
    assert stderr.count("No space left on device") >= 2, stderr
    assert "FAILED: chunk(s) 0 not delivered; nothing was published" in stdout
    assert listed(out / "run1.files") == {}  # not even a hidden ._COPYING_ or .crc of the chunk

    stdout, stderr = (out / "run2.out").read_text(), (out / "run2.err").read_text()
    assert (out / "run2.rc").read_text().strip() == "0", stdout + stderr
    assert "crc32c ok" in stdout, stdout  # verified by reading the local file back (hdfs_shell.crc32c)
    assert re.search(rf"^counts: source {EVENTS_ROWS:,}, .*published {EVENTS_ROWS:,}$", stdout, re.M), stdout
    assert visible(listed(out / "run2.files")) == ["events/full1/chunk-00000-part-00000.parquet"]


# --- 4. two dates at once into one table root ------------------------------------------------

DAYS = {"2024-01-01": 6_000, "2024-01-02": 4_000}


@pytest.fixture(scope="module")
def daily_table(hiveserver) -> str:
    """default.fault_days: 6,000 rows of 2024-01-01, then 4,000 of 2024-01-02 (ids 0..9999)."""
    hiveserver.execute(
        "DROP TABLE IF EXISTS default.fault_days",
        """CREATE TABLE default.fault_days USING parquet AS
           SELECT id, concat('row-', CAST(id AS STRING)) AS name, id * 0.5D AS amount,
                  IF(id < 6000, '2024-01-01', '2024-01-02') AS ds
           FROM range(10000)""")
    return "default.fault_days"


def day_argv(hiveserver, source: str, ds: str, root: str, target_table: str, temp: Path, *more: str) -> list[str]:
    return cli_argv(hiveserver, "--query", f"SELECT id, name, amount FROM {source} WHERE ds = '{ds}'",
                    "--split-by", "id", "--chunk-size", "3000", "--max-workers", "2", "--no-distcp",
                    "--target-hdfs-path", root, "--target-table", target_table, "--partition", f"ds={ds}",
                    "--temp-dir", str(temp), *more)


def published(hadoop, directory: str) -> dict[str, str]:
    """name -> sha256 of the visible files of a published directory on cluster2."""
    return {name: hashlib.sha256(hdfs_bytes(hadoop, f"{directory}/{name}")).hexdigest()
            for name in hdfs_names(hadoop, directory) or []}


@pytest.fixture(scope="module")
def single_runs(hiveserver, local_hadoop, daily_table, tmp_path_factory) -> dict[str, dict[str, str]]:
    """Each date transferred alone (one after the other): the files a concurrent run must match."""
    root = f"hdfs://cluster2/faults/days-alone-{uuid.uuid4().hex[:8]}"
    temp = tmp_path_factory.mktemp("alone")
    files = {}
    for ds in DAYS:
        argv = day_argv(hiveserver, daily_table, ds, root, "days", temp, "--skip-table", "--run-id", ds)
        result = subprocess.run(argv, env=cli_env(local_hadoop), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
        files[ds] = published(local_hadoop, f"{root}/days/ds={ds}")
    return files


def transfer_dates_at_once(hiveserver, hadoop, source: str, run_ids: dict[str, str],
                           temp: Path) -> dict[str, dict[str, str]]:
    """One `impala-transfer` process per date, started together: one table root on cluster2, one
    table, one --temp-dir. Checks both succeed with the table counting each partition's rows, and
    that each partition directory holds its date's rows; returns ds -> {file name: sha256}."""
    key = uuid.uuid4().hex[:8]
    root, table = f"hdfs://cluster2/faults/days-{key}", f"days_{key}"
    procs = {ds: subprocess.Popen(day_argv(hiveserver, source, ds, root, table, temp, "--table-dialect", "hive",
                                           "--run-id", run_ids[ds]),
                                  env=cli_env(hadoop), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for ds in DAYS}
    outputs = {ds: proc.communicate(timeout=300) for ds, proc in procs.items()}
    for ds, (stdout, stderr) in outputs.items():
        code = procs[ds].returncode
        assert code == 0, f"{ds}: exit {code}\n{stdout}\n{stderr[-3000:]}"
        assert re.search(rf"^counts: source {DAYS[ds]:,}, .*published {DAYS[ds]:,}, target_table {DAYS[ds]:,}$",
                         stdout, re.M), stdout
    assert hdfs_names(hadoop, f"{root}/{table}") == [f"ds={ds}" for ds in DAYS]
    for ds, rows in DAYS.items():
        assert parquet_rows(hadoop, f"{root}/{table}/ds={ds}") == rows
    return {ds: published(hadoop, f"{root}/{table}/ds={ds}") for ds in DAYS}


def assert_each_date_holds_exactly_its_own_files(together, single_runs) -> None:
    assert not set(together["2024-01-01"].values()) & set(together["2024-01-02"].values())  # disjoint
    for ds in DAYS:
        assert together[ds] == single_runs[ds], f"ds={ds} differs from the date transferred alone"


@pytest.mark.server
def test_two_dates_run_at_once_into_one_table_root_each_publish_exactly_their_own_rows(
        hiveserver, local_hadoop, daily_table, single_runs, tmp_path):
    """Two `impala-transfer` processes for two dates started together, each with its own run id
    (as Airflow's two DAG runs have), into one table root on cluster2 with one --temp-dir: both
    succeed, the table counts each partition's rows, and each partition directory holds exactly
    the files (names, sha256, so rows) of its date transferred alone."""
    together = transfer_dates_at_once(hiveserver, local_hadoop, daily_table,
                                      {ds: f"nightly-{ds}" for ds in DAYS}, tmp_path / "tmp")
    assert_each_date_holds_exactly_its_own_files(together, single_runs)


@pytest.mark.server
def test_two_dates_run_at_once_under_one_run_id_each_publish_exactly_their_own_rows(
        hiveserver, local_hadoop, daily_table, single_runs, tmp_path):
    """The same with one run id for both, as two dates started in the same second get from the
    CLI's default run id (cli__<UTC second>), here made deterministic."""
    together = transfer_dates_at_once(hiveserver, local_hadoop, daily_table,
                                      {ds: "cli__2024-01-03T020000" for ds in DAYS}, tmp_path / "tmp")
    assert_each_date_holds_exactly_its_own_files(together, single_runs)
