"""The installed ``impala-transfer`` console script, run as a subprocess the way users run it,
against the local HiveServer2 server and real targets: two real HDFS clusters (the real FsShell and
DistCp: cluster1 holds the source tables and distcp's staging, cluster2 is the target), scp through
a real sshd, S3 through moto. Settings and bad input without a server: tests/test_cli_settings.py."""

from __future__ import annotations

import gzip
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from airflow_provider_impala_transfer.core.common.records import FileEntry
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets
from tests.conftest import EVEN_ROWS, EVENTS_ROWS
from tests.support.hdfs_files import hdfs_bytes, hdfs_names, parquet_rows

pytestmark = [pytest.mark.server]

SCRIPT = str(Path(sys.executable).parent / "impala-transfer")
PASSWORD = "pw-Zq81x-never-shown"
SEED_FLAGS = ["--source-host", "--source-port", "--source-database", "--table", "--query", "--query-file",
              "--target-table", "--target-hdfs-path", "--target-cluster", "--source-hdfs-path", "--use-distcp",
              "--no-distcp", "--method", "--scp-target-host", "--scp-target-path", "--chunk-size",
              "--max-workers", "--output-format", "--compression", "--temp-dir", "--config", "--test-connection",
              "--validate-config", "--show-config", "--dry-run", "--verbose", "--auth-mechanism", "--user",
              "--use-ssl"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "IMPALA_PASSWORD": PASSWORD, **(env or {})}
    for name in ("USE_DISTCP", "SOURCE_HDFS_PATH", "TARGET_CLUSTER", "TARGET_HDFS_PATH"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([SCRIPT, *args], env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def source(hiveserver) -> list[str]:
    return ["--source-host", "127.0.0.1", "--source-port", str(hiveserver.port),
            "--auth-mechanism", "PLAIN", "--user", "airflow"]


@pytest.fixture
def dirs(tmp_path) -> dict:
    """A fresh target directory on cluster2, distcp's staging on cluster1, local temp files."""
    key = uuid.uuid4().hex[:8]
    return {"target": f"hdfs://cluster2/cli/{key}", "temp": tmp_path / "tmp",
            "staging": f"hdfs://cluster1/cli-staging/{key}"}


def local_args(dirs, *more: str) -> list[str]:
    return ["--target-hdfs-path", dirs["target"], "--temp-dir", str(dirs["temp"]), "--table-dialect", "hive", *more]


def local_parquet_rows(directory: Path) -> int:
    files = [p for p in directory.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_"))]
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def summary_methods(stdout: str) -> dict[int, str]:
    """chunk index -> the 'delivered by' column of the summary table."""
    methods = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\d+) .*?\s+[\d,]+\s+[\d,]+\s+\d+\s+(\S+)\s+(crc32c ok|sha256 ok|size ok|-)", line)
        if match:
            methods[int(match.group(1))] = match.group(2)
    return methods


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert PASSWORD not in result.stdout + result.stderr


# --- the transfer, method by method ------------------------------------------------------------

def test_help_lists_every_seed_flag():  # the console script as installed
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in SEED_FLAGS:
        assert flag in result.stdout, flag
    assert "--password " not in result.stdout  # the refused flag is not advertised


def test_hdfs_put_delivers_publishes_and_creates_the_table(source, dirs, hadoop_env):
    result = run_cli(*source, "--table", "default.events", "--split-by", "id", "--chunk-size", "7000",
                     "--max-workers", "2", "--no-distcp", "--target-table", "cli_put_events", "--run-id", "r1",
                     *local_args(dirs))
    assert_ok(result)
    final = f"{dirs['target']}/cli_put_events/r1"
    assert parquet_rows(hadoop_env, final) == EVENTS_ROWS
    assert summary_methods(result.stdout) == {0: "hdfs_put", 1: "hdfs_put", 2: "hdfs_put"}
    assert result.stdout.count("crc32c ok") == 3  # verified by the cluster's checksum, nothing read back
    assert f"counts: source {EVENTS_ROWS:,}, files {EVENTS_ROWS:,}, delivered {EVENTS_ROWS:,}, published {EVENTS_ROWS:,}, " \
           f"target_table {EVENTS_ROWS:,}" in result.stdout
    assert f"at {final}" in result.stdout  # the table reads the published directory on cluster2
    assert hdfs_names(hadoop_env, f"{dirs['target']}/cli_put_events/_impala_transfer_staging") == []
    assert not (dirs["temp"] / "r1").exists()  # local files removed after success
    assert "trying hdfs_put" in result.stderr and "\x1b[" not in result.stderr  # plain lines off a TTY

    again = run_cli(*source, "--table", "default.events", "--split-by", "id", "--chunk-size", "7000",
                    "--no-distcp", "--target-table", "cli_put_events", "--run-id", "r1", *local_args(dirs))
    assert_ok(again)  # the same run id replaces its own directory: no duplicated rows, nothing nested
    assert parquet_rows(hadoop_env, final) == EVENTS_ROWS
    assert all(name.endswith(".parquet") for name in hdfs_names(hadoop_env, final))
    assert f"target_table {EVENTS_ROWS:,}" in again.stdout


def test_distcp_runs_one_real_job_per_chunk_from_cluster1_to_cluster2(source, dirs, hadoop_env):
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                     "--method", "distcp", "--source-hdfs-path", dirs["staging"], "--verbose",
                     "--target-table", "cli_distcp_even", "--run-id", "d1", *local_args(dirs))
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "distcp", 1: "distcp", 2: "distcp"}
    assert result.stdout.count("crc32c ok") == 3
    jobs = re.findall(r"hadoop: .*Running job: (job_local\d+_\d+)", result.stderr)  # streamed while running
    assert len(set(jobs)) == 3
    copied = [int(n) for n in re.findall(r"distcp: .*Files Copied=(\d+)", result.stderr)]
    assert len(copied) == 3 and sum(copied) == 3
    distcp_lines = [line for line in result.stderr.splitlines() if "running: " in line and " distcp " in line]
    assert all("-update" in line and "-delete" not in line and "COMPOSITE_CRC" in line for line in distcp_lines)
    assert parquet_rows(hadoop_env, f"{dirs['target']}/cli_distcp_even/d1") == EVEN_ROWS
    assert f"target_table {EVEN_ROWS:,}" in result.stdout
    staged = f"{dirs['staging']}/_impala_transfer_staging"
    [run_dir] = hdfs_names(hadoop_env, staged)
    assert hdfs_names(hadoop_env, f"{staged}/{run_dir}") == []  # each chunk's staged copies removed after its job


def test_a_chunk_cluster1_refuses_to_stage_falls_back_to_hdfs_put(source, dirs, hadoop_env):
    """A real refusal, not an injected flag: chunk 1's staging directory on cluster1 belongs to the
    HDFS superuser and is read-only, so distcp cannot stage that chunk; hdfs put then delivers it."""
    target = TransferTargets(hdfs_root=f"{dirs['target']}/even", source_hdfs_path=dirs["staging"])
    distcp = target.method("distcp", CommandRunner())
    chunk1 = distcp.source_staging_dir(Run("f1"), [FileEntry(path="file:///x", bytes=0, sha256="", chunk=1)])
    hadoop_env.hdfs("dfs", "-mkdir", "-p", chunk1.rsplit("/", 1)[0], check=True)
    hadoop_env.hdfs("dfs", "-mkdir", chunk1, superuser=True, check=True)
    hadoop_env.hdfs("dfs", "-chmod", "555", chunk1, superuser=True, check=True)
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                     "--use-distcp", "--source-hdfs-path", dirs["staging"], "--skip-table",
                     "--run-id", "f1", *local_args(dirs))
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "distcp", 1: "hdfs_put", 2: "distcp"}
    line = next(line for line in result.stdout.splitlines() if line.startswith("1 "))
    assert "distcp: hdfs exited with 1" in line  # the failure is in the summary, per chunk
    assert "Permission denied" in result.stderr and "chunk-00001" in result.stderr
    assert parquet_rows(hadoop_env, f"{dirs['target']}/even/f1") == EVEN_ROWS


def test_every_method_fails_while_cluster2s_namenode_is_down(source, dirs, hadoop_env):
    hadoop_env.target.stop_namenode()
    try:
        started = time.monotonic()
        result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                         "--use-distcp", "--source-hdfs-path", dirs["staging"], "--skip-table",
                         "--run-id", "down1", *local_args(dirs))
        elapsed = time.monotonic() - started
    finally:
        hadoop_env.target.start_namenode()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: chunk(s) 0, 1, 2 not delivered; nothing was published" in result.stdout
    assert result.stdout.count("NOT DELIVERED") == 3
    assert "Connection refused" in result.stderr
    assert elapsed < 240  # bounded retries: a dead NameNode fails each method within seconds
    assert hdfs_names(hadoop_env, f"{dirs['target']}/even/down1") is None


def test_hdfs_cp_with_gzipped_csv(source, dirs, hadoop_env):
    result = run_cli(*source, "--query", "SELECT id, name FROM default.even WHERE id < 100",
                     "--method", "hdfs_cp", "--output-format", "csv", "--compression", "gzip", "--run-id", "c1",
                     "--target-table", "cp_even", *local_args(dirs))
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "hdfs_cp"}
    assert hdfs_names(hadoop_env, f"{dirs['target']}/cp_even/c1") == ["chunk-00000-part-00000.csv.gz"]
    data = hdfs_bytes(hadoop_env, f"{dirs['target']}/cp_even/c1/chunk-00000-part-00000.csv.gz")
    lines = gzip.decompress(data).decode().splitlines()
    assert lines[0] == '"id","name"' and len(lines) == 101
    assert "target table: skipped (the table step needs parquet files)" in result.stdout


def test_scp_over_a_real_sshd(source, dirs, sshd, tmp_path):
    remote = tmp_path / "remote"
    result = run_cli(*source, "--table", "default.even", "--method", "scp", "--scp-target-host", sshd.host,
                     "--scp-port", str(sshd.port), "--scp-user", sshd.user, "--scp-key-file", str(sshd.key_file),
                     "--scp-known-hosts", str(sshd.known_hosts), "--scp-target-path", str(remote),
                     "--temp-dir", str(dirs["temp"]), "--run-id", "s1")
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "scp"}
    assert local_parquet_rows(remote / "even" / "s1") == EVEN_ROWS
    assert "target table: skipped (files go by scp" in result.stdout


def test_fsspec_to_s3(source, dirs, s3):
    bucket = s3.create_bucket("cli-target")
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "500",
                     "--target-hdfs-path", f"s3://{bucket}/landing", "--skip-table", "--run-id", "o1",
                     "--temp-dir", str(dirs["temp"]), env=s3.env())
    assert_ok(result)
    assert set(summary_methods(result.stdout).values()) == {"fsspec"}
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["landing/even/_impala_transfer_txn/o1",  # the publish record: who published o1, kept
                    "landing/even/o1/chunk-00000-part-00000.parquet", "landing/even/o1/chunk-00001-part-00000.parquet"]


def test_every_method_failing_exits_1_and_publishes_nothing(source, dirs, hadoop_env, tmp_path):
    result = run_cli(*source, "--table", "default.even", "--no-distcp", "--hdfs-bin", str(tmp_path / "no-hdfs"),
                     "--skip-table", "--run-id", "x1", *local_args(dirs))
    assert result.returncode == 1, result.stderr
    assert "NOT DELIVERED" in result.stdout
    assert "hdfs_put: no-hdfs not found" in result.stdout and "scp: scp_target_host" in result.stdout
    assert "FAILED: chunk(s) 0 not delivered; nothing was published" in result.stdout
    assert hdfs_names(hadoop_env, f"{dirs['target']}/even/x1") is None
    [kept] = dirs["temp"].glob("x1-*")  # the run's private directory (0700), kept for a re-run
    assert list(kept.iterdir()) and kept.stat().st_mode & 0o777 == 0o700


def test_seed_environment_variables_single_cluster(source, dirs, hadoop_env):
    """The seed's 'Development Single-Cluster Transfer': USE_DISTCP=false, a bare TARGET_HDFS_PATH,
    which the Hadoop client resolves on its default filesystem (here cluster1)."""
    plain = f"/cli-single/{uuid.uuid4().hex[:8]}/test_data"
    result = run_cli(*source, "--query", "SELECT * FROM default.even", "--chunk-size", "100000",
                     "--max-workers", "2", "--temp-dir", str(dirs["temp"]), "--run-id", "e1",
                     env={"USE_DISTCP": "false", "TARGET_HDFS_PATH": plain})
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "hdfs_put"}
    assert parquet_rows(hadoop_env, f"hdfs://cluster1{plain}/query_result/e1") == EVEN_ROWS
    assert "no scheme, so its cluster is unknown" in result.stdout


def test_partitioned_run_adds_a_table_partition(source, dirs, hadoop_env):
    def run_day(ds: str) -> subprocess.CompletedProcess:
        return run_cli(*source, "--table", "default.even", "--no-distcp", "--target-table", "cli_part_even",
                       "--partition", f"ds={ds}", *local_args(dirs))

    assert_ok(run_day("2024-01-01"))
    second = run_day("2024-01-02")
    assert_ok(second)
    assert f"target_table {EVEN_ROWS:,}" in second.stdout  # the partition's count
    for ds in ("2024-01-01", "2024-01-02"):
        assert parquet_rows(hadoop_env, f"{dirs['target']}/cli_part_even/ds={ds}") == EVEN_ROWS


def test_a_rerun_whose_table_step_fails_puts_the_previous_partition_back_byte_for_byte(
        source, dirs, hadoop_env, hiveserver):
    table_dir = f"{dirs['target']}/cli_restore_even"
    final = f"{table_dir}/ds=2024-02-01"

    def run_day(*query: str) -> subprocess.CompletedProcess:
        return run_cli(*source, *query, "--no-distcp", "--target-table", "cli_restore_even",
                       "--partition", "ds=2024-02-01", "--run-id", "daily", *local_args(dirs))

    assert_ok(run_day("--table", "default.even"))
    first = {name: hdfs_bytes(hadoop_env, f"{final}/{name}") for name in hdfs_names(hadoop_env, final)}
    # Someone changed the table meanwhile: the re-run's table step refuses it, after the swap.
    hiveserver.execute("DROP TABLE default.cli_restore_even",
                       "CREATE EXTERNAL TABLE default.cli_restore_even (other STRING) PARTITIONED BY (ds STRING) "
                       f"STORED AS PARQUET LOCATION '{table_dir}'")
    rerun = run_day("--query", "SELECT * FROM default.even WHERE id < 100")
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "FAILED: target table cli_restore_even:" in rerun.stdout
    assert f"restored {final} to its previous files; the run's files wait in _impala_transfer_staging/" in rerun.stdout
    assert {name: hdfs_bytes(hadoop_env, f"{final}/{name}") for name in hdfs_names(hadoop_env, final)} == first
    assert hdfs_names(hadoop_env, f"{table_dir}/_impala_transfer_previous") == []
    assert hdfs_names(hadoop_env, f"{table_dir}/_impala_transfer_locks", hidden=True) == []


def test_ctrl_c_stops_the_running_tool_and_exits_130(source, dirs, hadoop_env, tmp_path):
    """A stand-in `hdfs` that only sleeps (the point is the interruption, not Hadoop)."""
    pid_file = tmp_path / "tool.pid"
    slow = tmp_path / "slow-hdfs"
    slow.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 300\n")
    slow.chmod(0o755)
    proc = subprocess.Popen([SCRIPT, *source, "--table", "default.even", "--no-distcp", "--hdfs-bin", str(slow),
                             "--skip-table", "--run-id", "i1", *local_args(dirs)],
                            env={**os.environ, "IMPALA_PASSWORD": PASSWORD}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), proc.communicate(timeout=30)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "interrupted; running commands were stopped, nothing was published" in stderr
    tool = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(tool, 0)  # the tool's process group was killed, not left behind
    assert hdfs_names(hadoop_env, f"{dirs['target']}/even/i1") is None


# --- modes -------------------------------------------------------------------------------------

def test_dry_run_prints_plan_and_commands_and_writes_nothing(source, dirs, hadoop_env):
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                     "--use-distcp", "--source-hdfs-path", dirs["staging"], "--target-table",
                     "cli_dry_even", "--run-id", "n1", *local_args(dirs), "--dry-run")
    assert_ok(result)
    out = result.stdout
    assert "3 chunk(s)" in out and "chunk 0: `id` < " in out and "chunk 2: `id` >= " in out
    assert "methods, tried in order per chunk: distcp -> hdfs_put -> hdfs_cp -> scp" in out
    assert re.search(r"hadoop distcp -Dmapreduce\.job\.name=impala-transfer:n1:chunk-00000 "
                     r"-Ddfs\.checksum\.combine\.mode=COMPOSITE_CRC -update -strategy dynamic -m 20 "
                     rf"-f file://\S+\.list {dirs['target']}/cli_dry_even/_impala_transfer_staging/n1", out)
    assert f"hdfs dfs -put -f file://{dirs['temp']}/n1-XXXXXXXX/chunk-00001-part-00000.parquet" in out
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `cli_dry_even`" in out
    assert "nothing was extracted" in out
    assert hdfs_names(hadoop_env, dirs["target"]) is None and hdfs_names(hadoop_env, dirs["staging"]) is None
    assert not dirs["temp"].exists()


def test_test_connection(source, dirs, hadoop_env, closed_port):
    result = run_cli(*source, "--table", "default.even", "--no-distcp", *local_args(dirs), "--test-connection")
    assert_ok(result)
    assert re.search(r"^source: ok, 127\.0\.0\.1:\d+ answered SELECT 1", result.stdout, re.M)
    assert re.search(r"^target \(hdfs\): ok, hdfs://cluster2/\S+ is reachable", result.stdout, re.M)
    assert "target impala: ok" in result.stdout
    down = run_cli("--source-host", "127.0.0.1", "--source-port", str(closed_port), "--table", "default.even",
                   "--no-distcp", "--connect-timeout", "3", *local_args(dirs), "--test-connection")
    assert down.returncode == 1
    assert re.search(r"^source: FAILED, cannot reach Impala at 127\.0\.0\.1:\d+", down.stdout, re.M)


def test_validate_config(source, dirs):
    result = run_cli(*source, "--table", "default.even", "--no-distcp", *local_args(dirs), "--validate-config")
    assert_ok(result)
    assert result.stdout.startswith("configuration is valid: hdfs://cluster2/")
    assert "methods hdfs_put -> hdfs_cp -> scp" in result.stdout


def test_progress_bar_on_a_terminal(source, dirs, hadoop_env):
    primary, replica = pty.openpty()
    env = {**os.environ, "IMPALA_PASSWORD": PASSWORD, "COLUMNS": "160"}
    proc = subprocess.Popen([SCRIPT, *source, "--table", "default.even", "--no-distcp", "--skip-table",
                             "--run-id", "p1", *local_args(dirs)], stdout=subprocess.PIPE, stderr=replica, env=env)
    os.close(replica)
    chunks = []
    while True:
        ready, _, _ = select.select([primary], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=60)
    os.close(primary)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen
    assert "ETA" in screen and "all chunks" in screen and "delivered by hdfs_put" in screen
    assert f"{EVEN_ROWS:,} rows" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen) or f"{EVEN_ROWS:,}" in screen
    assert "hdfs_put" in stdout.decode()
