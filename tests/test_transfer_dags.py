"""The transfer example DAG under the real Airflow CLI: per-chunk fallback, publish, target table.

Real parts: the local HiveServer2 server (source tables on hdfs://cluster1; target tables over
hdfs://cluster2, ``hive`` dialect), two real HDFS clusters with the real FsShell, DistCp (local job
runner) and WebHDFS (the target's metadata steps, through the hdfs provider's WebHDFSHook), sshd on
loopback for scp.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest

from airflow_provider_impala_transfer.core.common.records import FileEntry
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets
from tests.conftest import EVENTS_ROWS, repo_root
from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.hdfs_files import hdfs_bytes, hdfs_names, parquet_rows
from tests.support.airflow_services import AirflowServices

pytestmark = [pytest.mark.slow, pytest.mark.server]

DAG_ID = "impala_transfer_example"
CHAIN = ("distcp", "hdfs_put", "hdfs_cp", "scp")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, hiveserver, local_hadoop, sshd):
    home = tmp_path_factory.mktemp("airflow-transfer")
    impala = hiveserver.airflow_connection_json()
    webhdfs = local_hadoop.webhdfs_connection_json(local_hadoop.target)
    source_webhdfs = local_hadoop.webhdfs_connection_json(local_hadoop.source)
    env = {**os.environ, **local_hadoop.env()}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW_CONN_IMPALA_DEFAULT=impala,
        AIRFLOW_CONN_IMPALA_TARGET=impala,
        AIRFLOW_CONN_SCP_TARGET=sshd.airflow_connection_json(),
        IMPALA_TRANSFER_OUTPUT_DIR=str(home / "extract"),
        AIRFLOW_CONN_TARGET_WEBHDFS=webhdfs,
        AIRFLOW_CONN_SOURCE_WEBHDFS=source_webhdfs,
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=f"hdfs://cluster1/dag-staging/{uuid.uuid4().hex[:8]}",
        IMPALA_TRANSFER_WEBHDFS_CONN_ID="target_webhdfs",
        IMPALA_TRANSFER_SSH_CONN_ID="scp_target",
        IMPALA_TRANSFER_TABLE_DIALECT="hive",
        IMPALA_TRANSFER_MAX_WORKERS="2",
    )
    (home / "dags").mkdir()
    (home / "dags" / f"{DAG_ID}.py").symlink_to(repo_root() / "dags_examples" / f"{DAG_ID}.py")
    airflow(env, "db", "migrate")
    return {"env": env, "home": home, "hadoop": local_hadoop}




def target_dir(name: str) -> str:
    return f"hdfs://cluster2/dags/{name}-{uuid.uuid4().hex[:8]}"


def run_dag(home, logical_date: str, *, method: str, target: Path | str, table: str, extra_env=None,
            query: str = "SELECT * FROM default.events", extract_mode: str = "client"):
    env = {**home["env"], "IMPALA_TRANSFER_TARGET_TABLE": table, **(extra_env or {})}
    conf = {"query": query, "split_by": "id", "chunk_size": 5000, "extract_mode": extract_mode,
            "method": method, "target_path": target if isinstance(target, str) else f"file://{target}"}
    result = airflow(env, "dags", "test", DAG_ID, logical_date, "-c", json.dumps(conf), check=False)
    run_state, states = latest_run(home["home"] / "airflow.db", DAG_ID)
    return result.stdout + result.stderr, run_state, states


def chunk_states(states, task: str) -> list[str]:
    return [states[(f"events.deliver.{task}", i)] for i in range(4)]


def not_chosen(states, method: str) -> bool:
    """The route left ``method`` out of this run: one skipped row for every chunk, never expanded."""
    rows = {i: s for (t, i), s in states.items() if t == f"events.deliver.{method}"}
    return rows == {-1: "skipped"}


# Runs that later tests build on are module fixtures, so no test runs the DAG again only to have
# something to replace: two kept runs into one table root and table (the re-run test replaces the
# second one's date and checks the first one's is untouched), and the server-mode runs (the restore
# test replaces their partition after changing their table). What a test checks of such a run is
# either recorded by its fixture right after it (output, states, counts) or not changed by the
# tests building on it, so the tests pass in any order.
SHARED_TABLE = "default.events_by_distcp"
SHARED_ROOT = "distcp with space"


@pytest.fixture(scope="module")
def shared_root() -> str:
    return target_dir(SHARED_ROOT)


@pytest.fixture(scope="module")
def distcp_run(airflow_home, shared_root) -> dict:
    """The default hand-off (no output_path) by distcp: 2026-03-01 into ``shared_root``."""
    output, run_state, states = run_dag(airflow_home, "2026-03-01", method="distcp", target=shared_root,
                                        table=SHARED_TABLE, extra_env={"IMPALA_TRANSFER_OUTPUT_DIR": ""})
    return {"output": output, "state": run_state, "states": states, "target": shared_root}


def test_every_chunk_staged_on_cluster1_by_distcp_to_cluster2_verified_published_and_counted(
        distcp_run, airflow_home, local_hadoop, hiveserver):
    """The default hand-off: no output_path, so the extract stages each chunk's files on cluster1
    (any worker can read them) and distcp copies them from there; they are removed once the run
    is kept."""
    target, output, run_state, states = (distcp_run[k] for k in ("target", "output", "state", "states"))
    assert run_state == "success", output[-3000:]
    assert chunk_states(states, "distcp") == ["success"] * 4
    for later in ("hdfs_put", "hdfs_cp", "scp"):
        assert chunk_states(states, later) == ["skipped"] * 4
    assert not_chosen(states, "fsspec") and states[("events.route", -1)] == "success"
    assert chunk_states(states, "delivered") == ["success"] * 4
    assert states[("events.reconcile", -1)] == "success"
    assert "counts: source 20,000, files 20,000, delivered 20,000, published 20,000, target_table 20,000" in output
    assert states[("events.finalize", -1)] == "success"
    assert states[("events.export", -1)] == "skipped"  # the extract_mode branch chose plan + extract
    # ONE real DistCp job per chunk, streamed into the task log while it ran, then its counters
    assert len(set(re.findall(r"Running job: (job_local\d+_\d+)", output))) == 4
    assert len(re.findall(r"distcp: .*Files Copied=1\b", output)) == 4
    assert "-delete" not in output and output.count("-Ddfs.checksum.combine.mode=COMPOSITE_CRC -update") >= 4
    assert len(re.findall(r"verified hdfs://cluster2/.*?\.parquet: [\d,]+ bytes, crc32c [0-9a-f]{8}", output)) >= 4
    source = airflow_home["env"]["IMPALA_TRANSFER_SOURCE_HDFS_PATH"]
    staged = f"{source}/_impala_transfer_chunks/events/{DAG_ID}"  # one directory per task group
    assert len(re.findall(rf"chunk \d: staged 1 files, [\d,]+ bytes on {staged}/", output)) == 4
    assert f"{source}/_impala_transfer_staging" not in output  # distcp read the staged files where they were
    assert hdfs_names(local_hadoop, staged) == []  # removed once the run was kept
    published = f"{target}/ds=2026-03-01"
    assert len(hdfs_names(local_hadoop, published)) == 4
    assert parquet_rows(local_hadoop, published) == EVENTS_ROWS
    assert hdfs_names(local_hadoop, f"{target}/_impala_transfer_staging") == []
    assert hiveserver.query("SELECT COUNT(*) FROM default.events_by_distcp WHERE ds = '2026-03-01'") == [(EVENTS_ROWS,)]
    [location] = [row[1] for row in hiveserver.query("DESCRIBE FORMATTED default.events_by_distcp")
                  if str(row[0]).strip() == "Location"]
    assert location.startswith("hdfs://cluster2/dags/")  # the table reads the published files on cluster2


def test_cluster2s_namenode_down_fails_every_method_names_the_chunks_and_publishes_nothing(
        airflow_home, local_hadoop):
    target = target_dir("down")
    local_hadoop.target.stop_namenode()
    try:
        output, run_state, states = run_dag(airflow_home, "2026-03-02", method="distcp", target=target,
                                            table="default.events_down",
                                            extra_env={"IMPALA_TRANSFER_SSH_CONN_ID": ""})
    finally:
        local_hadoop.target.start_namenode()
    assert run_state == "failed"
    for method in CHAIN:
        assert chunk_states(states, method) == ["failed"] * 4
    assert chunk_states(states, "delivered") == ["failed"] * 4
    for chunk in range(4):
        assert f"chunk {chunk} was not delivered by any method (distcp, hdfs_put, hdfs_cp, scp, fsspec)" in output
    # the first step of each HDFS method, making the run's directory over WebHDFS, names what did not answer
    port = local_hadoop.target.webhdfs_address.rsplit(":", 1)[1]
    assert f"WebHDFS connection 'target_webhdfs': no NameNode answered at 127.0.0.1:{port}" in output
    assert states[("events.publish", -1)] == "upstream_failed"
    assert hdfs_names(local_hadoop, target) is None  # nothing published


def test_a_chunk_no_method_can_deliver_fails_the_run_and_names_it(airflow_home, tmp_path):
    """Chunk 2's file disappears between extract and transfer (a temp cleaner, a full disk):
    every method fails on it for real, the other chunks are delivered, the run fails naming it."""
    extract_dir = tmp_path / "extract"
    target = target_dir("never")
    stop = threading.Event()

    def lose_chunk_2():
        while not stop.is_set():
            for path in extract_dir.rglob("chunk-00002-part-00000.parquet"):
                path.unlink(missing_ok=True)
            time.sleep(0.05)

    watcher = threading.Thread(target=lose_chunk_2, daemon=True)
    watcher.start()
    try:
        output, run_state, states = run_dag(airflow_home, "2026-03-03", method="distcp", target=target,
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
    assert hdfs_names(airflow_home["hadoop"], f"{target}/ds=2026-03-03") is None  # nothing half-published


def test_a_failed_extract_fails_the_run_before_any_transfer(airflow_home, tmp_path):
    target = target_dir("bad")
    output, run_state, states = run_dag(airflow_home, "2026-03-08", method="distcp", target=target,
                                        table="default.events_bad", query="SELECT * FORM default.events")
    assert run_state == "failed"
    assert states[("events.plan", -1)] == "failed"
    assert states[("events.reconcile", -1)] == "upstream_failed"
    assert hdfs_names(airflow_home["hadoop"], target) is None


def test_fsspec_route_skips_the_whole_chain_for_a_single_chunk(airflow_home, tmp_path):
    """One chunk: Airflow hands the single join's output over as a value, not a list of one."""
    target = tmp_path / "target"
    output, run_state, states = run_dag(airflow_home, "2026-03-04", method="fsspec", target=target,
                                        table="default.events_by_fsspec",
                                        query="SELECT * FROM default.events WHERE id < 3000")
    assert run_state == "success", output[-3000:]
    for method in CHAIN:
        assert not_chosen(states, method)
    assert states[("events.deliver.fsspec", 0)] == "success" and ("events.deliver.fsspec", 1) not in states
    assert "Running job" not in output and "hadoop distcp" not in output  # distcp never ran
    assert "bytes, sha256 " in output  # a local target is verified by reading back
    assert "counts: source 3,000, files 3,000, delivered 3,000, published 3,000, target_table 3,000" in output


def test_scp_route_fetches_the_chunks_staged_on_cluster1_and_delivers_over_real_sshd(airflow_home, tmp_path):
    """scp copies local files: each scp task takes verified copies of its chunk's staged files from
    cluster1 into a private temp dir of its own, as it would on another worker than the extract's.
    Airflow here maps at most 3 tasks ([core] max_map_length): the plan merges 4 chunks into 3."""
    target = tmp_path / "target"
    output, run_state, states = run_dag(airflow_home, "2026-03-05", method="scp", target=target,
                                        table="default.events_by_scp",
                                        extra_env={"IMPALA_TRANSFER_OUTPUT_DIR": "", "AIRFLOW__CORE__MAX_MAP_LENGTH": "3"})
    assert run_state == "success", output[-3000:]
    assert "4 chunks of 5,000 rows would be more than the 3 mapped tasks allowed ([core] max_map_length): " \
           "merged into 3 larger chunks" in output
    assert len(re.findall(r"hdfs dfs -get -f hdfs://cluster1/\S+/_impala_transfer_chunks/", output)) == 3
    assert [states[("events.deliver.scp", i)] for i in range(3)] == ["success"] * 3
    assert ("events.deliver.scp", 3) not in states
    assert all(not_chosen(states, method) for method in ("distcp", "hdfs_put", "hdfs_cp", "fsspec"))
    assert len(list((target / "ds=2026-03-05").glob("chunk-*.parquet"))) == 6  # about 6,667 rows a chunk: two files each
    assert f"counts: source {EVENTS_ROWS:,}, files {EVENTS_ROWS:,}, delivered {EVENTS_ROWS:,}" in output


@pytest.fixture(scope="module")
def s3_run(airflow_home, shared_root, s3) -> dict:
    """Chunks staged on S3, by distcp: 2026-03-06 into ``shared_root`` (beside ``distcp_run``'s date)."""
    bucket = s3.create_bucket(f"chunks-{uuid.uuid4().hex[:8]}")
    output, run_state, states = run_dag(airflow_home, "2026-03-06", method="distcp", target=shared_root,
                                        table=SHARED_TABLE, extra_env={
                                            "IMPALA_TRANSFER_OUTPUT_DIR": f"s3://{bucket}/chunks",
                                            "IMPALA_TRANSFER_OUTPUT_FSSPEC_CONN_ID": "chunk_store",
                                            "AIRFLOW_CONN_CHUNK_STORE": s3.airflow_connection_json()})
    return {"output": output, "state": run_state, "states": states, "target": shared_root, "bucket": bucket}


def test_chunks_staged_on_an_object_store_reach_distcp_through_verified_private_copies_and_are_removed(
        s3_run, local_hadoop, s3):
    """output_path on S3 (moto's server; its credentials only in an fsspec connection): the extract
    writes each chunk there; each distcp task, which cannot read the store, takes a sha256-checked
    copy into a private temp dir of its own worker, stages it on cluster1 and copies it to
    cluster2; finalize removes the run's staged objects once the run is kept."""
    target, bucket, output, run_state, states = (s3_run[k] for k in ("target", "bucket", "output", "state", "states"))
    assert run_state == "success", output[-3000:]
    assert chunk_states(states, "distcp") == ["success"] * 4
    assert len(set(re.findall(rf"wrote (s3://{bucket}/chunks/{DAG_ID}/\S+\.parquet)", output))) == 4
    assert len(set(re.findall(r"Running job: (job_local\d+_\d+)", output))) == 4
    assert "counts: source 20,000, files 20,000, delivered 20,000, published 20,000, target_table 20,000" in output
    assert parquet_rows(local_hadoop, f"{target}/ds=2026-03-06") == EVENTS_ROWS
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # removed once the run was kept


def test_rerun_of_the_same_date_replaces_its_partition_only(distcp_run, s3_run, airflow_home, local_hadoop,
                                                            hiveserver):
    """Two dates kept in one table root and table (``distcp_run``'s 2026-03-01, ``s3_run``'s
    2026-03-06); a re-run of 2026-03-06 by hdfs put replaces that partition and nothing else."""
    assert (distcp_run["state"], s3_run["state"]) == ("success", "success"), "the two kept runs this test re-runs beside"
    target = distcp_run["target"]

    def mtimes(date: str) -> dict[str, int]:
        return {n: local_hadoop.target.file_status(f"/{target.split('/', 3)[3]}/ds={date}/{n}")["modificationTime"]
                for n in hdfs_names(local_hadoop, f"{target}/ds={date}")}
    other = mtimes("2026-03-01")
    assert len(other) == 4
    output, run_state, _ = run_dag(airflow_home, "2026-03-06", method="hdfs_put", target=target, table=SHARED_TABLE)
    assert run_state == "success", output[-3000:]
    assert re.search(r"replacing hdfs://cluster2/.*/ds=2026-03-06; its files wait at .*_impala_transfer_previous/ds=2026-03-06", output)
    assert mtimes("2026-03-01") == other  # the other date untouched
    assert all(n.endswith(".parquet") for n in hdfs_names(local_hadoop, f"{target}/ds=2026-03-06"))  # nothing nested
    assert parquet_rows(local_hadoop, f"{target}/ds=2026-03-06") == EVENTS_ROWS
    assert hiveserver.query(f"SELECT COUNT(*) FROM {SHARED_TABLE}") == [(2 * EVENTS_ROWS,)]
    assert hdfs_names(local_hadoop, f"{target}/_impala_transfer_previous") == []
    assert hdfs_names(local_hadoop, f"{target}/_impala_transfer_locks", hidden=True) == []


@pytest.fixture(scope="module")
def server_runs(airflow_home, local_hadoop, hiveserver) -> dict:
    """The Param extract_mode=server, twice for 2026-03-10 (the second a re-run): each attempt's
    output, states, the partition's rows and what is left of the run's export, as they were right
    after it; the table's count after both."""
    target = target_dir("server")
    env = {"IMPALA_TRANSFER_SOURCE_WEBHDFS_CONN_ID": "source_webhdfs", "IMPALA_TRANSFER_EXPORT_DIALECT": "hive"}
    staging = airflow_home["env"]["IMPALA_TRANSFER_SOURCE_HDFS_PATH"]
    attempts = []
    for _ in range(2):
        output, run_state, states = run_dag(airflow_home, "2026-03-10", method="distcp", target=target,
                                            table="default.events_server", extra_env=env, extract_mode="server")
        attempts.append({"output": output, "state": run_state, "states": states,
                         "rows": parquet_rows(local_hadoop, f"{target}/ds=2026-03-10"),
                         "export_left": hdfs_names(local_hadoop, f"{staging}/_impala_transfer_export")})
        if run_state != "success":
            break
    return {"target": target, "attempts": attempts,
            "table_count": hiveserver.query("SELECT COUNT(*) FROM default.events_server")}


def test_server_mode_exports_on_cluster1_distcps_to_cluster2_and_a_rerun_replaces(server_runs):
    """The Param extract_mode=server: export (CREATE TABLE AS SELECT by the source engine into
    hdfs://cluster1) -> distcp per chunk -> publish -> table COUNT(*) == source; the run's export is
    dropped once kept; a re-run of the date replaces its partition."""
    for attempt in server_runs["attempts"]:
        output, run_state, states = attempt["output"], attempt["state"], attempt["states"]
        assert run_state == "success", output[-3000:]
        assert states[("events.export", -1)] == "success" and states[("events.chunks", -1)] == "success"
        assert states[("events.plan", -1)] == "skipped"  # the extract_mode branch chose the export
        delivered = [s for (t, _), s in states.items() if t == "events.deliver.distcp"]
        assert delivered and set(delivered) == {"success"}
        assert "counts: source 20,000, files 20,000, delivered 20,000, published 20,000, target_table 20,000" in output
        assert attempt["rows"] == EVENTS_ROWS
        assert attempt["export_left"] == []  # dropped once kept
    assert len(server_runs["attempts"]) == 2
    assert "replacing hdfs://cluster2/" in output  # the second run replaced the first's partition
    assert server_runs["table_count"] == [(EVENTS_ROWS,)]


def test_a_rerun_whose_table_step_fails_puts_the_previous_partition_back(server_runs, airflow_home, local_hadoop,
                                                                         hiveserver):
    """The table step refuses after the swap (the table was changed meanwhile): the finalize leaf
    restores the partition byte for byte and fails the run; nothing nested, nothing left over.
    The partition replaced is the one ``server_runs`` kept (its table is changed here)."""
    assert [a["state"] for a in server_runs["attempts"]] == ["success", "success"], "the kept run this test re-runs"
    target = server_runs["target"]
    final = f"{target}/ds=2026-03-10"
    first = {n: hdfs_bytes(local_hadoop, f"{final}/{n}") for n in hdfs_names(local_hadoop, final)}
    assert first
    hiveserver.execute("DROP TABLE default.events_server",
                       "CREATE EXTERNAL TABLE default.events_server (other STRING) PARTITIONED BY (ds STRING) "
                       f"STORED AS PARQUET LOCATION '{target}'")
    output, run_state, states = run_dag(airflow_home, "2026-03-10", method="hdfs_put", target=target,
                                        table="default.events_server", query="SELECT * FROM default.events WHERE id < 7000",
                                        extra_env={"AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1"})
    assert run_state == "failed"
    assert (states[("events.publish", -1)], states[("events.target_table", -1)], states[("events.finalize", -1)]) \
        == ("success", "failed", "failed")
    assert "the run failed at target_table: restored what the run replaced (hdfs)" in output
    assert {n: hdfs_bytes(local_hadoop, f"{final}/{n}") for n in hdfs_names(local_hadoop, final)} == first
    assert hdfs_names(local_hadoop, f"{target}/_impala_transfer_previous") == []
    assert hdfs_names(local_hadoop, f"{target}/_impala_transfer_locks", hidden=True) == []


@pytest.mark.timeout(900)
def test_fallback_for_a_real_refusal_under_a_real_scheduler_with_distcp_deferred_on_yarn(
        airflow_home, local_hadoop, local_yarn, tmp_path):
    """api-server (127.0.0.1), scheduler, dag-processor and triggerer as separate processes, ONE
    worker slot (LocalExecutor, parallelism 1), a triggered run whose distcp tasks defer
    (``[impala_transfer] default_deferrable``) while their jobs copy on YARN.

    Chunk 3's staging directory on cluster1 belongs to the HDFS superuser and is read-only, so
    distcp cannot stage that chunk (a real permission refusal by cluster1's NameNode) and hdfs put
    delivers it; the other chunks go by distcp, each a MapReduce application named after its chunk,
    and at least two of those copy at the same time: the one slot was free while they ran."""
    target = target_dir("scheduled")
    staging = airflow_home["env"]["IMPALA_TRANSFER_SOURCE_HDFS_PATH"]
    distcp = TransferTargets(hdfs_root=target, source_hdfs_path=staging).method("distcp", CommandRunner())
    run = Run("scheduled_fallback", {"ds": "2026-03-20"}, dag_id=DAG_ID, group_id="events")  # the DAG's group
    chunk3 = distcp.source_staging_dir(run, [FileEntry(path="x", bytes=0, sha256="", chunk=3)])
    local_hadoop.hdfs("dfs", "-mkdir", "-p", chunk3.rsplit("/", 1)[0], check=True)
    local_hadoop.hdfs("dfs", "-mkdir", chunk3, superuser=True, check=True)
    local_hadoop.hdfs("dfs", "-chmod", "555", chunk3, superuser=True, check=True)
    env = dict(airflow_home["env"], **local_yarn.env(), IMPALA_TRANSFER_SCHEDULE="",
               IMPALA_TRANSFER_TARGET_TABLE="default.events_scheduled",
               AIRFLOW__IMPALA_TRANSFER__DEFAULT_DEFERRABLE="True")
    conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": 5000, "method": "distcp",
            "target_path": target}
    with AirflowServices(env, tmp_path / "logs", parallelism=1, triggerer=True) as services:
        run_state, rows = services.trigger(DAG_ID, conf, "scheduled_fallback", "2026-03-20T00:00:00+00:00")
    assert run_state == "success", services.log("scheduler")[-3000:]
    states = {(task, i): state for task, i, state, _ in rows}
    assert chunk_states(states, "distcp") == ["success", "success", "success", "failed"]
    assert chunk_states(states, "hdfs_put") == ["skipped", "skipped", "skipped", "success"]
    for later in ("hdfs_cp", "scp"):
        assert chunk_states(states, later) == ["skipped"] * 4
    assert chunk_states(states, "delivered") == ["success"] * 4
    # A chunk starts on a worker only its extract, the methods it needed and the join; the scheduler
    # marked the methods it did not need skipped without a worker slot (a started task has a hostname).
    started = [(task.removeprefix("events.").removeprefix("deliver."), i) for task, i, _, host in rows if host]
    assert {i: sorted(t for t, j in started if j == i) for i in range(4)} == {
        0: ["delivered", "distcp", "extract"], 1: ["delivered", "distcp", "extract"],
        2: ["delivered", "distcp", "extract"], 3: ["delivered", "distcp", "extract", "hdfs_put"]}
    assert sorted(t for t, i in started if i == -1) == [
        "chunks", "extract_mode", "finalize", "plan", "publish", "reconcile", "route", "target_table"]
    assert states[("events.reconcile", -1)] == "success"
    assert parquet_rows(local_hadoop, f"{target}/ds={_run_date(airflow_home)}") == EVENTS_ROWS
    # YARN ran the three distcp jobs, under their chunks' names; two or more copied at once.
    apps = {app["name"]: app for app in local_yarn.apps()
            if app["name"].startswith(f"distcp: impala-transfer:{DAG_ID}:scheduled_fallback:")}
    assert sorted(apps) == [f"distcp: impala-transfer:{DAG_ID}:scheduled_fallback:chunk-0000{i}" for i in range(3)]
    assert {(a["state"], a["finalStatus"]) for a in apps.values()} == {("FINISHED", "SUCCEEDED")}
    spans = sorted((a["startedTime"], a["finishedTime"]) for a in apps.values())
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans
    # The triggerer polled each job and the task resumed to verify it.
    logs = "\n".join(p.read_text(errors="replace") for p in (airflow_home["home"] / "logs").glob(
        f"dag_id={DAG_ID}/run_id=scheduled_fallback/task_id=events.deliver.distcp/**/*.log"))
    for app in apps.values():
        assert re.search(rf"distcp job {app['id']} \(queue root\.default\): (ACCEPTED|RUNNING)", logs), logs[-3000:]
        assert f"distcp job {app['id']} (queue root.default): FINISHED, SUCCEEDED" in logs, logs[-3000:]
    # ...and logged the job's DistCp counters, read from the JobHistory server, as a synchronous distcp prints them.
    assert len(re.findall(r"distcp: .*Bytes Copied=[\d,]+.*Files Copied=1", logs)) == 3, logs[-3000:]


def _run_date(airflow_home) -> str:
    with sqlite3.connect(airflow_home["home"] / "airflow.db") as conn:
        [(value,)] = conn.execute("SELECT COALESCE(logical_date, run_after) FROM dag_run "
                                  "WHERE run_id = 'scheduled_fallback'").fetchall()
    return str(value)[:10]
