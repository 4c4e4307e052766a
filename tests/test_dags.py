"""The example DAGs under the real Airflow CLI (`airflow dags test`, SQLite metadata DB)."""

from __future__ import annotations

import json
import os
import sqlite3

import pyarrow.csv as pacsv
import pytest

from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.conftest import EVENTS_ROWS, read_files, repo_root

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, hiveserver):
    home = tmp_path_factory.mktemp("airflow-home")
    out = tmp_path_factory.mktemp("extract-out")
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW_CONN_IMPALA_DEFAULT=hiveserver.airflow_connection_json(),
        IMPALA_TRANSFER_OUTPUT_DIR=str(out),
        IMPALA_TRANSFER_MAX_WORKERS="2",
    )
    (home / "dags").mkdir()
    for dag in [repo_root() / "dags_examples" / "impala_extract_example.py",
                repo_root() / "tests" / "dags" / "extract_unmapped.py"]:
        (home / "dags" / dag.name).symlink_to(dag)
    (home / "dags" / "queries").symlink_to(repo_root() / "tests" / "dags" / "queries")
    airflow(env, "db", "migrate")
    return {"env": env, "home": home, "out": out}




def test_example_dag_extracts_every_row_in_parallel_chunks(airflow_home):
    conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": 3000}
    result = airflow(airflow_home["env"], "dags", "test", "impala_extract_example", "-c", json.dumps(conf))
    assert f"total: {EVENTS_ROWS:,} rows in 7 files" in result.stdout + result.stderr
    run_state, states = latest_run(airflow_home["home"] / "airflow.db", "impala_extract_example")
    assert run_state == "success"
    assert states[("plan", -1)] == "success" and states[("summary", -1)] == "success"
    assert [states[("extract", i)] for i in range(7)] == ["success"] * 7
    with sqlite3.connect(airflow_home["home"] / "airflow.db") as db:
        labels = [row[0] for row in db.execute(
            "SELECT rendered_map_index FROM task_instance WHERE task_id = 'extract' ORDER BY map_index")]
    # the grid names each chunk by its key range: 20,000 ids in 7 ranges
    assert labels[0] == "`id` < 2858" and labels[1] == "`id` >= 2858 AND `id` < 5715"
    assert labels[-1] == "`id` >= 17143" and len(set(labels)) == 7
    files = sorted((airflow_home["out"] / "impala_extract_example").rglob("*.parquet"))
    assert len(files) == 7
    assert sorted(read_files([str(f) for f in files])["id"].to_pylist()) == list(range(EVENTS_ROWS))


def test_example_dag_fails_with_the_servers_message_on_a_bad_query(airflow_home):
    conf = {"query": "SELECT * FORM default.events", "split_by": "id"}
    result = airflow(airflow_home["env"], "dags", "test", "impala_extract_example", "-c", json.dumps(conf), check=False)
    output = result.stdout + result.stderr
    assert "PARSE_SYNTAX_ERROR" in output
    run_state, states = latest_run(airflow_home["home"] / "airflow.db", "impala_extract_example")
    assert run_state == "failed"
    assert states[("plan", -1)] == "failed"
    assert states[("summary", -1)] == "upstream_failed"


def test_unmapped_operator_renders_a_sql_file_and_writes_csv(airflow_home):
    airflow(airflow_home["env"], "dags", "test", "extract_unmapped")
    files = sorted((airflow_home["out"] / "extract_unmapped").rglob("*.csv.gz"))
    assert len(files) == 3  # 5000 rows split by id into chunks of 2000
    ids = sorted(i for f in files for i in pacsv.read_csv(f)["id"].to_pylist())
    assert ids == list(range(5000))
