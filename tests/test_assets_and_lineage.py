"""What a transfer tells the rest of Airflow: the asset event of a kept partition, the DAG it
triggers, and the OpenLineage events of its tasks.

One ``airflow dags test`` run of the example DAG (2 chunks by hdfs put, hdfs://cluster1's Spark
server -> hdfs://cluster2, the hive-dialect table) feeds every test here but the first (which
only parses), to keep the suite's time down: its OpenLineage events go to a file (the provider's
file transport), its asset event to the metadata DB. ``airflow dags test`` triggers no other DAG,
so the downstream DAG is run by a real scheduler (with dag-processor and api-server, LocalExecutor,
SQLite) started afterwards: the event queued it, as it would have in a deployment.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from airflow.sdk import DAG, Asset

from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group
from tests.conftest import EVENTS_ROWS, repo_root
from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.hdfs_files import hdfs_names
from tests.support.processes import answers, free_port, stop_process_group, wait_for


DAG_ID = "impala_transfer_example"
DOWNSTREAM = "impala_transfer_downstream"
DATE = "2026-04-01"
TABLE = "default.events_assets"
COLUMNS = ["id", "small_int", "amount_double", "name", "amount_decimal", "event_ts", "event_date", "is_even",
           "maybe_null"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, hiveserver, local_hadoop):
    home = tmp_path_factory.mktemp("airflow-assets")
    impala = hiveserver.airflow_connection_json()
    target = f"hdfs://cluster2/dags/assets-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **local_hadoop.env()}
    env.pop("HADOOP_USER_NAME", None)
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW_CONN_IMPALA_DEFAULT=impala, AIRFLOW_CONN_IMPALA_TARGET=impala,
        AIRFLOW_CONN_TARGET_WEBHDFS=local_hadoop.webhdfs_connection_json(local_hadoop.target),
        IMPALA_TRANSFER_WEBHDFS_CONN_ID="target_webhdfs",
        IMPALA_TRANSFER_OUTPUT_DIR=str(home / "extract"),
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=f"hdfs://cluster1/dag-staging/{uuid.uuid4().hex[:8]}",
        IMPALA_TRANSFER_TARGET_PATH=target,  # the asset both DAGs name, and this run's target
        IMPALA_TRANSFER_TARGET_TABLE=TABLE, IMPALA_TRANSFER_TABLE_DIALECT="hive",
        IMPALA_TRANSFER_SCHEDULE="", IMPALA_TRANSFER_MAX_WORKERS="2",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",  # active once known: no `dags unpause` CLI start
        AIRFLOW__OPENLINEAGE__NAMESPACE="impala-transfer-tests",
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(home / "lineage.jsonl"),
                                                    "append": True}),
    )
    (home / "dags").mkdir()
    for dag in (DAG_ID, DOWNSTREAM):
        (home / "dags" / f"{dag}.py").symlink_to(repo_root() / "dags_examples" / f"{dag}.py")
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")  # the downstream DAG is known, scheduled on the asset and
    with sqlite3.connect(home / "airflow.db") as db:  # active (not paused at creation) before the event,
        assert db.execute("SELECT is_paused FROM dag WHERE dag_id = ?", (DOWNSTREAM,)).fetchall() == [(0,)]
    # so the event queues it
    return {"env": env, "home": home, "db": home / "airflow.db", "target": target, "hiveserver": hiveserver,
            "hadoop": local_hadoop}


@pytest.fixture(scope="module")
def kept_run(home):
    conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": EVENTS_ROWS // 2,
            "method": "hdfs_put", "target_path": home["target"]}
    result = airflow(home["env"], "dags", "test", DAG_ID, DATE, "-c", json.dumps(conf), check=False)
    output = result.stdout + result.stderr
    run_state, states = latest_run(home["db"], DAG_ID)
    assert run_state == "success", output[-3000:]
    with sqlite3.connect(home["db"]) as db:
        [run_id] = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ?", (DAG_ID,)).fetchone()
    return {"output": output, "states": states, "run_id": run_id}


def test_the_group_declares_a_literal_target_as_its_asset_and_a_templated_one_only_when_given():
    """An Asset needs its URI when the DAG is parsed: a literal target_path is it (normalized as
    the transfer writes it); a template is only known in the run, so only ``outlets=`` declares one.
    On the finalize task: the files stay after it, not after the publish."""
    common = dict(output_path="/tmp/x", sql="SELECT 1")
    with DAG("assets_shape", schedule=None) as dag:
        impala_transfer_group("literal", target_path="hdfs://nn2:8020/data/x/", **common)
        impala_transfer_group("cluster", target_path="/data/y", target_cluster="nn2:8020", **common)
        impala_transfer_group("templated", target_path="{{ params.target }}", **common)
        impala_transfer_group("given", target_path="{{ params.target }}", outlets=[Asset("hdfs://nn2:8020/data/x")],
                              **common)
        impala_transfer_group("none", target_path="hdfs://nn2:8020/data/z", outlets=[], **common)
        impala_transfer_group("no_namenode", target_path="hdfs:///data/x", **common)  # no asset Airflow accepts
    outlets = {group: [a.uri for a in dag.task_dict[f"{group}.finalize"].outlets]
               for group in ("literal", "cluster", "templated", "given", "none", "no_namenode")}
    assert outlets == {"literal": ["hdfs://nn2:8020/data/x"], "cluster": ["hdfs://nn2:8020/data/y"], "templated": [],
                       "given": ["hdfs://nn2:8020/data/x"], "none": [], "no_namenode": []}
    assert dag.task_dict["literal.publish"].outlets == []


def asset_events(home) -> list[dict]:
    with sqlite3.connect(home["db"]) as db:
        rows = db.execute("SELECT asset.uri, asset_event.extra, asset_event.source_dag_id, asset_event.source_task_id, "
                          "asset_event.source_run_id FROM asset_event JOIN asset ON asset.id = asset_event.asset_id "
                          "ORDER BY asset_event.id").fetchall()
    return [{"uri": uri, "extra": json.loads(extra), "dag_id": dag, "task_id": task, "run_id": run}
            for uri, extra, dag, task, run in rows]


def lineage_events(home, run: dict, task_id: str) -> list[dict]:
    """The COMPLETE events of one task of the run, from the provider's file transport."""
    lines = (home["home"] / "lineage.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{DAG_ID}.{task_id}"
            and e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") == run["run_id"]]


@pytest.mark.slow
@pytest.mark.server
def test_a_kept_run_records_one_asset_event_on_the_table_root_naming_its_new_partition(home, kept_run):
    """The finalize task (after it the files stay) records it; the extras say what the run
    published, so a consumer needs no XCom of this DAG."""
    [event] = asset_events(home)
    published = f"{home['target']}/ds={DATE}"
    assert event["uri"] == home["target"]
    assert (event["dag_id"], event["task_id"], event["run_id"]) == (DAG_ID, "events.finalize", kept_run["run_id"])
    extra = event["extra"]
    assert {k: extra[k] for k in ("published", "target_path", "partition", "rows", "files", "table", "run_id")} == {
        "published": published, "target_path": home["target"], "partition": {"ds": DATE}, "rows": EVENTS_ROWS,
        "files": 2, "table": TABLE, "run_id": kept_run["run_id"]}
    assert extra["bytes"] > 0 and len(hdfs_names(home["hadoop"], published)) == 2


@pytest.mark.slow
@pytest.mark.server
def test_a_run_that_is_rolled_back_records_no_asset_event(home, kept_run):
    """Its table step fails after the publish (the table's columns differ), finalize puts the
    previous state back and fails: nothing was kept, so no event and no downstream run."""
    home["hiveserver"].execute("DROP TABLE IF EXISTS default.events_assets_other",
                               "CREATE TABLE default.events_assets_other (other STRING) USING parquet")
    env = {**home["env"], "IMPALA_TRANSFER_TARGET_TABLE": "default.events_assets_other",
           "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1"}
    conf = {"query": "SELECT * FROM default.events WHERE id < 100", "split_by": "id", "chunk_size": 50,
            "method": "hdfs_put", "target_path": home["target"]}
    result = airflow(env, "dags", "test", DAG_ID, "2026-04-02", "-c", json.dumps(conf), check=False)
    output = result.stdout + result.stderr
    run_state, states = latest_run(home["db"], DAG_ID)
    assert run_state == "failed", output[-3000:]
    assert (states[("events.publish", -1)], states[("events.target_table", -1)], states[("events.finalize", -1)]) \
        == ("success", "failed", "failed"), output[-8000:]
    assert [e["run_id"] for e in asset_events(home)] == [kept_run["run_id"]]  # still only the kept run's


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.timeout(900)
def test_the_event_triggers_the_downstream_dag_under_a_real_scheduler_and_it_logs_the_new_rows(
        home, kept_run, tmp_path):
    """The downstream DAG reads the partition's rows from the event and checks them against the
    target table's COUNT(*) of that partition."""
    port = free_port()
    env = dict(home["env"], AIRFLOW__API__PORT=str(port), AIRFLOW__API__HOST="127.0.0.1",
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
               AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__CORE__PARALLELISM="2",
               AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1", AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5")
    env.pop("AIRFLOW__OPENLINEAGE__TRANSPORT")  # the lineage tests read the example DAG's events only
    cli = str(Path(sys.executable).with_name("airflow"))
    procs = []
    try:
        # The api-server first: the event is there already, so the scheduler queues the downstream
        # task at once, and its supervisor fails if the Execution API does not answer yet.
        for name, args in (("api-server", ["api-server", "-H", "127.0.0.1", "-p", str(port)]),
                           ("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"])):
            with open(tmp_path / f"{name}.log", "wb") as out:
                procs.append(subprocess.Popen([cli, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            if name == "api-server":
                wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/v2/monitor/health"), 120, "the api-server")
        wait_for(lambda: downstream_run(home["db"]) in ("success", "failed"), 600, "the downstream run")
    finally:
        for proc in procs:
            stop_process_group(proc.pid, 30)
    with sqlite3.connect(home["db"]) as db:
        [(run_id, run_type, state)] = db.execute("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ?",
                                                 (DOWNSTREAM,)).fetchall()
    [log] = (home["home"] / "logs").glob(f"dag_id={DOWNSTREAM}/run_id={run_id}/task_id=new_partition_rows/attempt=1.log")
    text = log.read_text()
    assert (run_type, state) == ("asset_triggered", "success"), text[-3000:]
    assert re.search(rf"new partition ds={DATE} of {TABLE}: 20,000 rows in 2 files at {home['target']}/ds={DATE} "
                     rf"\(run {re.escape(kept_run['run_id'])} of {DAG_ID}\)", text), text[-3000:]


@pytest.mark.slow
@pytest.mark.server
def test_extract_lineage_reads_the_source_table_and_writes_the_chunk_files_with_their_schema(home, kept_run):
    events = lineage_events(home, kept_run, "events.extract")
    assert len(events) == 2  # one per chunk
    port = home["hiveserver"].port
    for event in events:
        assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [(f"impala://127.0.0.1:{port}",
                                                                          "default.events")]
        assert event["job"]["facets"]["sql"]["query"] == "SELECT * FROM default.events"
        [output] = event["outputs"]
        assert output["namespace"] == "file"
        assert output["name"].startswith(f"{home['home']}/extract/{DAG_ID}/")
        fields = output["facets"]["schema"]["fields"]
        assert [f["name"] for f in fields] == COLUMNS
        assert {f["name"]: f["type"] for f in fields}["amount_decimal"] == "decimal128(22, 6)"  # exact, from Arrow
        assert output["outputFacets"]["outputStatistics"]["fileCount"] == 1
    assert sum(e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] for e in events) == EVENTS_ROWS


@pytest.mark.slow
@pytest.mark.server
def test_publish_lineage_writes_the_table_root_the_asset_names(home, kept_run):
    [event] = lineage_events(home, kept_run, "events.publish")
    [output] = event["outputs"]
    assert (output["namespace"], output["name"]) == ("hdfs://cluster2", home["target"].split("/", 3)[3])
    statistics = output["outputFacets"]["outputStatistics"]
    assert (statistics["rowCount"], statistics["fileCount"]) == (EVENTS_ROWS, 2) and statistics["size"] > 0
    [finalize] = lineage_events(home, kept_run, "events.finalize")  # its Asset outlet, as the provider converts it
    assert [(d["namespace"], d["name"]) for d in finalize["outputs"]] == [(output["namespace"], output["name"])]


@pytest.mark.slow
@pytest.mark.server
def test_table_lineage_reads_the_files_and_writes_the_table_with_its_columns(home, kept_run):
    [event] = lineage_events(home, kept_run, "events.target_table")
    [files] = event["inputs"]
    assert (files["namespace"], files["name"]) == ("hdfs://cluster2", home["target"].split("/", 3)[3])
    [table] = event["outputs"]
    assert (table["namespace"], table["name"]) == (f"hive://127.0.0.1:{home['hiveserver'].port}", TABLE)
    columns = {f["name"]: f["type"] for f in table["facets"]["schema"]["fields"]}
    assert list(columns) == [*COLUMNS, "ds"]
    assert (columns["id"], columns["amount_decimal"], columns["ds"]) == ("BIGINT", "DECIMAL(22,6)", "STRING")
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == EVENTS_ROWS


LINEAGE_SQL_DAG = "lineage_sql_off"
SECRET = "secret-literal-42"  # the literal in that DAG's query


@pytest.fixture(scope="module")
def run_without_sql(home):
    """One run of tests/dags/lineage_sql_off.py: the query, with SECRET in it, through a client group
    and a server group with ``lineage_sql=False`` and a server group with the default."""
    (home["home"] / "dags" / f"{LINEAGE_SQL_DAG}.py").symlink_to(repo_root() / "tests" / "dags" / f"{LINEAGE_SQL_DAG}.py")
    env = {**home["env"], "AIRFLOW_CONN_SOURCE_WEBHDFS": home["hadoop"].webhdfs_connection_json(home["hadoop"].source),
           "IMPALA_TRANSFER_LINEAGE_SQL_TARGET": f"{home['target']}-lineage-sql"}
    result = airflow(env, "dags", "test", LINEAGE_SQL_DAG, DATE, check=False)
    output = result.stdout + result.stderr
    run_state, _ = latest_run(home["db"], LINEAGE_SQL_DAG)
    assert run_state == "success", output[-3000:]
    with sqlite3.connect(home["db"]) as db:
        [run_id] = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ?", (LINEAGE_SQL_DAG,)).fetchone()
        xcoms = db.execute("SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = ? AND run_id = ?",
                           (LINEAGE_SQL_DAG, run_id)).fetchall()
    lines = (home["home"] / "lineage.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    events = [e for e in events if e["job"]["name"].split(".")[0] == LINEAGE_SQL_DAG]  # its one run: the DAG's too
    return {"output": output, "run_id": run_id, "events": events,
            "xcoms": {(task, index, key): str(value) for task, index, key, value in xcoms}}


@pytest.mark.slow
@pytest.mark.server
def test_with_lineage_sql_false_no_lineage_event_and_no_xcom_value_holds_the_query_text(home, run_without_sql):
    """``lineage_sql=False`` on the group: plan, extract and export send no SQL job facet (their
    input tables are still read from the query), and neither an event nor an XCom value of those
    groups holds the query's literal; the export's XCom keeps what finalize needs to drop it (table
    and directory), without its statements. The default group beside them shows where the text
    goes when it is on: the SQL facet and the export's statements."""
    port = home["hiveserver"].port
    events, xcoms = run_without_sql["events"], run_without_sql["xcoms"]

    def completed(task_id: str) -> list[dict]:
        return [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{LINEAGE_SQL_DAG}.{task_id}"]

    for task_id in ("client.plan", "client.extract", "server.export"):
        [event] = completed(task_id)
        assert "sql" not in event["job"]["facets"], task_id
    for task_id in ("client.extract", "server.export"):  # the plan writes nothing: it has no datasets
        [event] = completed(task_id)
        assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [(f"impala://127.0.0.1:{port}",
                                                                          "default.events")], task_id
    assert [e for e in completed("client.extract") if e["outputs"]]  # the chunk files, as before
    control = f"{LINEAGE_SQL_DAG}.server_sql."
    assert [e["job"]["name"] for e in events if SECRET in json.dumps(e) and not e["job"]["name"].startswith(control)] \
        == []  # nor the DAG's own events
    assert [k for k, value in xcoms.items() if not k[0].startswith("server_sql.") and SECRET in value] == []
    export = json.loads(xcoms[("server.export", -1, "export")])
    assert export["statements"] == [] and export["table"] and export["location"].startswith("hdfs://cluster1/")
    assert re.search(r"dropped \S+ and removed hdfs://cluster1/\S+_server-[0-9a-f]{12}\b", run_without_sql["output"])
    # the control, lineage_sql left on: the query text is in its SQL facet and its export's statements
    [on] = completed("server_sql.export")
    assert SECRET in on["job"]["facets"]["sql"]["query"]
    assert SECRET in xcoms[("server_sql.export", -1, "export")]


def downstream_run(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state FROM dag_run WHERE dag_id = ?", (DOWNSTREAM,)).fetchone()
    return row[0] if row else None
