"""The transfer example DAG under the real Airflow CLI: per-chunk fallback, publish, target table.

Real parts: the local HiveServer2 server (source *and* target table, ``hive`` dialect), Hadoop's
FsShell behind ``hdfs``, sshd on loopback for scp. distcp is the stand-in ``hadoop`` executable
(no YARN here): same argv, copies with FsShell, exits like DistCp.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.processes import free_port
from tests.conftest import EVENTS_ROWS, repo_root

pytestmark = [pytest.mark.slow, pytest.mark.server]

DAG_ID = "impala_transfer_example"
CHAIN = ("distcp", "hdfs_put", "hdfs_cp", "scp")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, hiveserver, hadoop_tools, sshd):
    home = tmp_path_factory.mktemp("airflow-transfer")
    kwargs = hiveserver.connect_kwargs()
    impala = json.dumps({"conn_type": "impala_transfer", "host": "127.0.0.1", "port": hiveserver.port,
                         "login": kwargs["user"], "password": kwargs["password"],
                         "extra": {"auth_mechanism": kwargs["auth_mechanism"]}})
    env = {**os.environ, **hadoop_tools.additions}
    env.pop("FAKE_DISTCP_REJECT", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW_CONN_IMPALA_DEFAULT=impala,
        AIRFLOW_CONN_IMPALA_TARGET=impala,
        AIRFLOW_CONN_SCP_TARGET=sshd.airflow_connection_json(),
        IMPALA_TRANSFER_OUTPUT_DIR=str(home / "extract"),
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=f"file://{home}/source-hdfs",
        IMPALA_TRANSFER_SSH_CONN_ID="scp_target",
        IMPALA_TRANSFER_TABLE_DIALECT="hive",
        IMPALA_TRANSFER_MAX_WORKERS="2",
    )
    (home / "dags").mkdir()
    (home / "dags" / f"{DAG_ID}.py").symlink_to(repo_root() / "dags_examples" / f"{DAG_ID}.py")
    airflow(env, "db", "migrate")
    return {"env": env, "home": home}




def run_dag(home, logical_date: str, *, method: str, target: Path, table: str, extra_env=None,
            query: str = "SELECT * FROM default.events"):
    env = {**home["env"], "IMPALA_TRANSFER_TARGET_TABLE": table, **(extra_env or {})}
    conf = {"query": query, "split_by": "id", "chunk_size": 5000,
            "method": method, "target_path": f"file://{target}"}
    result = airflow(env, "dags", "test", DAG_ID, logical_date, "-c", json.dumps(conf), check=False)
    run_state, states = latest_run(home["home"] / "airflow.db", DAG_ID)
    return result.stdout + result.stderr, run_state, states


def chunk_states(states, task: str) -> list[str]:
    return [states[(f"events.deliver.{task}", i)] for i in range(4)]


def test_every_chunk_by_distcp_published_as_a_partition_and_counted(airflow_home, hadoop_tools, hiveserver, tmp_path):
    target = tmp_path / "target with space"
    output, run_state, states = run_dag(airflow_home, "2026-03-01", method="distcp", target=target,
                                        table="default.events_by_distcp")
    assert run_state == "success", output[-3000:]
    assert chunk_states(states, "distcp") == ["success"] * 4
    for later in ("hdfs_put", "hdfs_cp", "scp", "fsspec"):
        assert chunk_states(states, later) == ["skipped"] * 4
    assert chunk_states(states, "delivered") == ["success"] * 4
    assert states[("events.reconcile", -1)] == "success"
    assert "counts: source 20,000, files 20,000, published 20,000, target_table 20,000" in output
    # ONE distcp job per chunk, all of its files through a -f listing, never -delete
    calls = [c for c in hadoop_tools.distcp_calls() if str(target) in " ".join(c["args"])]
    assert len(calls) == 4
    for call in calls:
        argv = call["args"]
        assert argv[:8] == ["distcp", "-update", "-strategy", "dynamic", "-m", "20", "-f", argv[7]]
        assert argv[7].startswith("file://") and argv[8].startswith(f"file://{target}/_impala_transfer_staging/")
        assert "-delete" not in argv
    published = target / "ds=2026-03-01"
    files = sorted(published.glob("chunk-*.parquet"))
    assert len(files) == 4
    assert sum(pq.read_metadata(f).num_rows for f in files) == EVENTS_ROWS
    assert not list((target / "_impala_transfer_staging").iterdir())
    assert hiveserver.query("SELECT COUNT(*) FROM default.events_by_distcp WHERE ds = '2026-03-01'") == [(EVENTS_ROWS,)]


def test_distcp_rejected_for_one_chunk_is_delivered_by_hdfs_put(airflow_home, tmp_path):
    target = tmp_path / "target"
    output, run_state, states = run_dag(airflow_home, "2026-03-02", method="distcp", target=target,
                                        table="default.events_fallback",
                                        extra_env={"FAKE_DISTCP_REJECT": "chunk-00001-"})
    assert run_state == "success", output[-3000:]
    assert chunk_states(states, "distcp") == ["success", "failed", "success", "success"]
    assert chunk_states(states, "hdfs_put") == ["skipped", "success", "skipped", "skipped"]
    assert chunk_states(states, "hdfs_cp") == ["skipped"] * 4
    assert chunk_states(states, "delivered") == ["success"] * 4
    assert "rejected by target cluster" in output  # distcp's own stderr reached the task log
    assert "chunk 1        delivered by hdfs_put" in output
    assert len(list((target / "ds=2026-03-02").glob("chunk-*.parquet"))) == 4


def test_a_chunk_no_method_can_deliver_fails_the_run_and_names_it(airflow_home, tmp_path):
    """Chunk 2's file disappears between extract and transfer (a temp cleaner, a full disk):
    every method fails on it for real, the other chunks are delivered, the run fails naming it."""
    extract_dir = tmp_path / "extract"
    stop = threading.Event()

    def lose_chunk_2():
        while not stop.is_set():
            for path in extract_dir.rglob("chunk-00002-part-00000.parquet"):
                path.unlink(missing_ok=True)
            time.sleep(0.05)

    watcher = threading.Thread(target=lose_chunk_2, daemon=True)
    watcher.start()
    try:
        output, run_state, states = run_dag(airflow_home, "2026-03-03", method="distcp", target=tmp_path / "target",
                                            table="default.events_never",
                                            extra_env={"IMPALA_TRANSFER_OUTPUT_DIR": str(extract_dir)})
    finally:
        stop.set()
        watcher.join()
    assert run_state == "failed"
    assert [states[(f"events.deliver.{m}", 2)] for m in CHAIN] == ["failed"] * 4
    assert chunk_states(states, "delivered") == ["success", "success", "failed", "success"]
    assert "chunk 2 was not delivered by any method (distcp, hdfs_put, hdfs_cp, scp, fsspec)" in output
    assert states[("events.publish", -1)] == "upstream_failed"
    assert states[("events.reconcile", -1)] == "upstream_failed"
    assert not (tmp_path / "target" / "ds=2026-03-03").exists()  # nothing half-published


def test_a_failed_extract_fails_the_run_before_any_transfer(airflow_home, tmp_path):
    output, run_state, states = run_dag(airflow_home, "2026-03-08", method="distcp", target=tmp_path / "t",
                                        table="default.events_bad", query="SELECT * FORM default.events")
    assert run_state == "failed"
    assert states[("events.plan", -1)] == "failed"
    assert states[("events.reconcile", -1)] == "upstream_failed"
    assert not (tmp_path / "t").exists()


def test_fsspec_route_skips_the_whole_chain(airflow_home, hadoop_tools, tmp_path):
    target = tmp_path / "target"
    before = len(hadoop_tools.distcp_calls())
    output, run_state, states = run_dag(airflow_home, "2026-03-04", method="fsspec", target=target,
                                        table="default.events_by_fsspec")
    assert run_state == "success", output[-3000:]
    for method in CHAIN:
        assert chunk_states(states, method) == ["skipped"] * 4
    assert chunk_states(states, "fsspec") == ["success"] * 4
    assert len(hadoop_tools.distcp_calls()) == before  # distcp never ran
    assert "target_table 20,000" in output


def test_scp_route_delivers_over_real_sshd(airflow_home, tmp_path):
    target = tmp_path / "target"
    output, run_state, states = run_dag(airflow_home, "2026-03-05", method="scp", target=target,
                                        table="default.events_by_scp")
    assert run_state == "success", output[-3000:]
    assert chunk_states(states, "scp") == ["success"] * 4
    assert chunk_states(states, "distcp") == ["skipped"] * 4
    assert len(list((target / "ds=2026-03-05").glob("chunk-*.parquet"))) == 4


def test_rerun_of_the_same_date_replaces_its_partition_only(airflow_home, tmp_path, hiveserver):
    target = tmp_path / "target"
    for date in ("2026-03-06", "2026-03-07"):
        _, run_state, _ = run_dag(airflow_home, date, method="hdfs_put", target=target, table="default.events_rerun")
        assert run_state == "success"
    other = sorted((target / "ds=2026-03-06").iterdir())
    output, run_state, _ = run_dag(airflow_home, "2026-03-07", method="hdfs_put", target=target,
                                   table="default.events_rerun")
    assert run_state == "success", output[-3000:]
    assert "replacing this run's earlier data" in output
    assert sorted((target / "ds=2026-03-06").iterdir()) == other
    assert hiveserver.query("SELECT COUNT(*) FROM default.events_rerun") == [(2 * EVENTS_ROWS,)]
    assert not list((target / "_impala_transfer_trash").iterdir())


@pytest.mark.timeout(900)
def test_fallback_under_a_real_scheduler(airflow_home, tmp_path):
    """api-server (127.0.0.1), scheduler and dag-processor as separate processes, a triggered run."""
    env = dict(airflow_home["env"], FAKE_DISTCP_REJECT="chunk-00003-", IMPALA_TRANSFER_SCHEDULE="",
               IMPALA_TRANSFER_TARGET_TABLE="default.events_scheduled")
    port = free_port()
    env.update(AIRFLOW__API__PORT=str(port), AIRFLOW__API__HOST="127.0.0.1",
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
               AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__CORE__PARALLELISM="2",
               AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
               AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5")
    cli = str(Path(sys.executable).with_name("airflow"))
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []
    try:
        for name, args in (("api-server", ["api-server", "-H", "127.0.0.1", "-p", str(port)]),
                           ("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"])):
            out = open(logs / f"{name}.log", "wb")
            procs.append(subprocess.Popen([cli, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        _wait_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", 120)
        target = tmp_path / "target"
        conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": 5000,
                "method": "distcp", "target_path": f"file://{target}"}
        _wait_for(lambda: airflow(env, "dags", "unpause", DAG_ID, check=False).returncode == 0, 120)
        airflow(env, "dags", "trigger", DAG_ID, "-c", json.dumps(conf), "-r", "scheduled_fallback")
        db = airflow_home["home"] / "airflow.db"

        def finished():
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT state FROM dag_run WHERE run_id = 'scheduled_fallback'").fetchone()
            return row and row[0] in ("success", "failed")
        _wait_for(finished, 600)
        with sqlite3.connect(db) as conn:
            run_state = conn.execute("SELECT state FROM dag_run WHERE run_id = 'scheduled_fallback'").fetchone()[0]
            states = dict(((t, i), s) for t, i, s in conn.execute(
                "SELECT task_id, map_index, state FROM task_instance WHERE run_id = 'scheduled_fallback'"))
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
    assert run_state == "success", (logs / "scheduler.log").read_text()[-3000:]
    assert chunk_states(states, "distcp") == ["success", "success", "success", "failed"]
    assert chunk_states(states, "hdfs_put") == ["skipped", "skipped", "skipped", "success"]
    assert chunk_states(states, "delivered") == ["success"] * 4
    assert states[("events.reconcile", -1)] == "success"


def _wait_http(url: str, timeout: float) -> None:
    def ok():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False
    _wait_for(ok, timeout)


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s")
