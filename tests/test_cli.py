"""The installed ``impala-transfer`` console script, run as a subprocess the way users run it,
against the local HiveServer2 server and real targets: file:// through Hadoop's FsShell, the
stand-in distcp, scp through a real sshd, S3 through moto."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import EVEN_ROWS, EVENTS_ROWS

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
def dirs(tmp_path) -> dict[str, Path]:
    return {"target": tmp_path / "target", "temp": tmp_path / "tmp", "staging": tmp_path / "source-hdfs"}


def local_args(dirs, *more: str) -> list[str]:
    return ["--target-hdfs-path", f"file://{dirs['target']}", "--temp-dir", str(dirs["temp"]),
            "--table-dialect", "hive", *more]


def published_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_")))


def parquet_rows(files: list[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def summary_methods(stdout: str) -> dict[int, str]:
    """chunk index -> the 'delivered by' column of the summary table."""
    methods = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\d+) .*?\s+[\d,]+\s+[\d,]+\s+\d+\s+(\S+)\s+(sha256 ok|size ok|-)", line)
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
    final = dirs["target"] / "cli_put_events" / "r1"
    files = published_files(final)
    assert parquet_rows(files) == EVENTS_ROWS
    assert summary_methods(result.stdout) == {0: "hdfs_put", 1: "hdfs_put", 2: "hdfs_put"}
    assert f"counts: source {EVENTS_ROWS:,}, files {EVENTS_ROWS:,}, published {EVENTS_ROWS:,}, " \
           f"target_table {EVENTS_ROWS:,}" in result.stdout
    assert not list((dirs["target"] / "cli_put_events" / "_impala_transfer_staging").iterdir())
    assert not (dirs["temp"] / "r1").exists()  # local files removed after success
    assert "trying hdfs_put" in result.stderr and "\x1b[" not in result.stderr  # plain lines off a TTY

    again = run_cli(*source, "--table", "default.events", "--split-by", "id", "--chunk-size", "7000",
                    "--no-distcp", "--target-table", "cli_put_events", "--run-id", "r1", *local_args(dirs))
    assert_ok(again)  # the same run id replaces its own directory: no duplicated rows
    assert parquet_rows(published_files(final)) == EVENTS_ROWS
    assert f"target_table {EVENTS_ROWS:,}" in again.stdout


def test_distcp_runs_one_job_per_chunk_from_staged_files(source, dirs, hadoop_env):
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                     "--method", "distcp", "--source-hdfs-path", f"file://{dirs['staging']}",
                     "--target-table", "cli_distcp_even", "--run-id", "d1", *local_args(dirs))
    assert_ok(result)
    calls = hadoop_env.distcp_calls()
    assert len(calls) == 3 == len(summary_methods(result.stdout))
    for call in calls:
        args = call["args"]
        assert args[:6] == ["distcp", "-update", "-strategy", "dynamic", "-m", "20"]
        assert "-delete" not in args and args[-3] == "-f"
        assert args[-1] == f"file://{dirs['target']}/cli_distcp_even/_impala_transfer_staging/d1"
        assert all(src.startswith(f"file://{dirs['staging']}/") for src in call["sources"])
    assert set(summary_methods(result.stdout).values()) == {"distcp"}
    assert parquet_rows(published_files(dirs["target"] / "cli_distcp_even" / "d1")) == EVEN_ROWS
    assert not [p for p in dirs["staging"].rglob("*") if p.is_file()]  # staged copies removed after the job


def test_a_chunk_distcp_rejects_falls_back_to_hdfs_put(source, dirs, hadoop_env):
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                     "--use-distcp", "--source-hdfs-path", f"file://{dirs['staging']}", "--skip-table",
                     "--run-id", "f1", *local_args(dirs), env={"FAKE_DISTCP_REJECT": "chunk-00001"})
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "distcp", 1: "hdfs_put", 2: "distcp"}
    chunk1 = next(line for line in result.stdout.splitlines() if line.startswith("1 "))
    assert "distcp: hadoop exited with 25" in chunk1  # the failure is in the summary, per chunk
    assert parquet_rows(published_files(dirs["target"] / "even" / "f1")) == EVEN_ROWS


def test_hdfs_cp_with_gzipped_csv(source, dirs, hadoop_env):
    result = run_cli(*source, "--query", "SELECT id, name FROM default.even WHERE id < 100",
                     "--method", "hdfs_cp", "--output-format", "csv", "--compression", "gzip", "--run-id", "c1",
                     "--target-table", "cp_even", *local_args(dirs))
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "hdfs_cp"}
    [published] = [p for p in (dirs["target"] / "cp_even" / "c1").iterdir() if not p.name.startswith(".")]
    assert published.name == "chunk-00000-part-00000.csv.gz"
    import gzip

    lines = gzip.decompress(published.read_bytes()).decode().splitlines()
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
    assert parquet_rows(published_files(remote / "even" / "s1")) == EVEN_ROWS
    assert "target table: skipped (files go by scp" in result.stdout


def test_fsspec_to_s3(source, dirs, s3):
    bucket = s3.create_bucket("cli-target")
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "500",
                     "--target-hdfs-path", f"s3://{bucket}/landing", "--skip-table", "--run-id", "o1",
                     "--temp-dir", str(dirs["temp"]), env=s3.env())
    assert_ok(result)
    assert set(summary_methods(result.stdout).values()) == {"fsspec"}
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["landing/even/o1/chunk-00000-part-00000.parquet", "landing/even/o1/chunk-00001-part-00000.parquet"]


def test_every_method_failing_exits_1_and_publishes_nothing(source, dirs, hadoop_env, tmp_path):
    result = run_cli(*source, "--table", "default.even", "--no-distcp", "--hdfs-bin", str(tmp_path / "no-hdfs"),
                     "--skip-table", "--run-id", "x1", *local_args(dirs))
    assert result.returncode == 1, result.stderr
    assert "NOT DELIVERED" in result.stdout
    assert "hdfs_put: no-hdfs not found" in result.stdout and "scp: scp_target_host" in result.stdout
    assert "FAILED: chunk(s) 0 not delivered; nothing was published" in result.stdout
    assert not (dirs["target"] / "even" / "x1").exists()
    assert list((dirs["temp"] / "x1").iterdir())  # local files kept for a re-run


def test_seed_environment_variables_single_cluster(source, dirs, hadoop_env, tmp_path):
    """The seed's 'Development Single-Cluster Transfer': USE_DISTCP=false, a bare TARGET_HDFS_PATH."""
    plain = tmp_path / "test_data"
    result = run_cli(*source, "--query", "SELECT * FROM default.even", "--chunk-size", "100000",
                     "--max-workers", "2", "--temp-dir", str(dirs["temp"]), "--run-id", "e1",
                     env={"USE_DISTCP": "false", "TARGET_HDFS_PATH": str(plain)})
    assert_ok(result)
    assert summary_methods(result.stdout) == {0: "hdfs_put"}
    assert parquet_rows(published_files(plain / "query_result" / "e1")) == EVEN_ROWS
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
        assert parquet_rows(published_files(dirs["target"] / "cli_part_even" / f"ds={ds}")) == EVEN_ROWS


def test_ctrl_c_stops_the_running_tool_and_exits_130(source, dirs, tmp_path):
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
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted; running commands were stopped, nothing was published" in stderr
    tool = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(tool, 0)  # the tool's process group was killed, not left behind
    assert not (dirs["target"] / "even" / "i1").exists()


# --- modes -------------------------------------------------------------------------------------

def test_dry_run_prints_plan_and_commands_and_writes_nothing(source, dirs, hadoop_env):
    result = run_cli(*source, "--table", "default.even", "--split-by", "id", "--chunk-size", "400",
                     "--use-distcp", "--source-hdfs-path", f"file://{dirs['staging']}", "--target-table",
                     "cli_dry_even", "--run-id", "n1", *local_args(dirs), "--dry-run")
    assert_ok(result)
    out = result.stdout
    assert "3 chunk(s)" in out and "chunk 0: `id` < " in out and "chunk 2: `id` >= " in out
    assert "methods, tried in order per chunk: distcp -> hdfs_put -> hdfs_cp -> scp" in out
    assert re.search(r"hadoop distcp -update -strategy dynamic -m 20 -f file://\S+\.list "
                     rf"file://{dirs['target']}/cli_dry_even/_impala_transfer_staging/n1", out)
    assert f"hdfs dfs -put -f {dirs['temp']}/n1/chunk-00001-part-00000.parquet" in out
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `cli_dry_even`" in out
    assert "nothing was extracted" in out
    assert not dirs["target"].exists() and not dirs["temp"].exists() and not dirs["staging"].exists()
    assert hadoop_env.distcp_calls() == []


def test_test_connection(source, dirs, hadoop_env, closed_port):
    result = run_cli(*source, "--table", "default.even", "--no-distcp", *local_args(dirs), "--test-connection")
    assert_ok(result)
    assert re.search(r"^source: ok, 127\.0\.0\.1:\d+ answered SELECT 1", result.stdout, re.M)
    assert re.search(r"^target \(hdfs\): ok, file://\S+ is reachable", result.stdout, re.M)
    assert "target impala: ok" in result.stdout
    down = run_cli("--source-host", "127.0.0.1", "--source-port", str(closed_port), "--table", "default.even",
                   "--no-distcp", "--connect-timeout", "3", *local_args(dirs), "--test-connection")
    assert down.returncode == 1
    assert re.search(r"^source: FAILED, cannot reach Impala at 127\.0\.0\.1:\d+", down.stdout, re.M)


def test_validate_config(source, dirs):
    result = run_cli(*source, "--table", "default.even", "--no-distcp", *local_args(dirs), "--validate-config")
    assert_ok(result)
    assert result.stdout.startswith("configuration is valid: file://")
    assert "methods hdfs_put -> hdfs_cp -> scp" in result.stdout
    assert not dirs["target"].exists()


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
