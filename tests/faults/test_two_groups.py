"""Two task groups of one DAG run that write the same target root (issue 18 item 3), under the real
Airflow CLI (`airflow dags test`) with two real HDFS clusters and the local HiveServer2 server.

Literal targets are refused when the DAG is parsed (tests/test_transfer_operators.py); these
targets are templates, so the run itself must keep the groups apart: each stages its own
chunks, and the second group to publish the same final directory fails with an error naming the
fix, leaving the first group's files exactly as published.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import EVEN_ROWS, repo_root
from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.hdfs_files import hdfs_names, parquet_rows
from tests.support.processes import stop_process_group

pytestmark = [pytest.mark.slow, pytest.mark.server]


DAG_IDS = ["two_groups_partitioned", "two_groups_unpartitioned"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, hiveserver, local_hadoop) -> dict[str, dict]:
    """One run of each DAG, both started at once and waited for: each ``airflow dags test`` in an
    Airflow home of its own (a copy of one migrated metadata DB, so neither waits on the other's
    SQLite lock), its output in a file. Two runs side by side keep both cores busy where one
    after the other mostly waits on one process at a time."""
    migrated = tmp_path_factory.mktemp("airflow-two-groups")
    env = {**os.environ, **local_hadoop.env()}
    env.update(
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_IMPALA_DEFAULT=hiveserver.airflow_connection_json(),
        AIRFLOW_CONN_TARGET_WEBHDFS=local_hadoop.webhdfs_connection_json(local_hadoop.target),
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=f"hdfs://cluster1/two-groups/{uuid.uuid4().hex[:8]}",
    )
    airflow({**env, "AIRFLOW_HOME": str(migrated), "AIRFLOW__CORE__DAGS_FOLDER": str(migrated / "dags")},
            "db", "migrate")
    cli = str(Path(sys.executable).with_name("airflow"))
    started: dict[str, tuple[subprocess.Popen, Path, str]] = {}
    try:
        for dag_id in DAG_IDS:
            home = tmp_path_factory.mktemp(f"airflow-{dag_id}")
            (home / "dags").mkdir()
            (home / "dags" / "two_groups.py").symlink_to(repo_root() / "tests" / "dags" / "two_groups.py")
            shutil.copyfile(migrated / "airflow.db", home / "airflow.db")
            target = f"hdfs://cluster2/two-groups/{uuid.uuid4().hex[:8]}"
            with open(home / "dags-test.log", "wb") as log:
                proc = subprocess.Popen(
                    [cli, "dags", "test", dag_id, "2026-12-07", "-c", json.dumps({"target": target})],
                    env={**env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                         "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"},
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            started[dag_id] = (proc, home, target)
        results = {}
        for dag_id, (proc, home, target) in started.items():
            proc.wait(timeout=900)
            run_state, states = latest_run(home / "airflow.db", dag_id)
            results[dag_id] = {"output": (home / "dags-test.log").read_text(errors="replace"), "state": run_state,
                               "states": states, "target": target}
        return results
    finally:
        for proc, _, _ in started.values():
            if proc.poll() is None:
                stop_process_group(proc.pid, 30)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_second_group_to_publish_one_directory_of_a_run_is_refused_and_the_first_keeps_its_files(
        runs, local_hadoop, dag_id):
    output, run_state, states, target = (runs[dag_id][k] for k in ("output", "state", "states", "target"))
    assert run_state == "failed", output[-3000:]
    assert states[("orders.finalize", -1)] == "success"
    assert states[("refunds.publish", -1)] == "failed"
    assert "was published by another task group of this run" in output
    assert "give each group its own target_path or partition" in output
    published = [n for n in hdfs_names(local_hadoop, target) if not n.startswith("_")]
    assert len(published) == 1  # the first group's directory, whole
    assert parquet_rows(local_hadoop, f"{target}/{published[0]}") == EVEN_ROWS
    staging = hdfs_names(local_hadoop, f"{target}/_impala_transfer_staging")
    assert len(staging) == 1 and "refunds" in staging[0]  # the refused group's own, waiting for a fix
    assert len(hdfs_names(local_hadoop, f"{target}/_impala_transfer_staging/{staging[0]}")) == 1
