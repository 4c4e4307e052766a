"""Leftovers are found and removed where they are, and only those (issue 18 item 10): a run's files
put back into staging by a roll back wait a full week again; two server-mode groups of one run
export into places of their own; a templated ``output_path`` is rendered before finalize removes
the run's staged chunks. (The distcp source-copy sweep: tests/test_transfer_methods.py.)"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from fsspec.implementations.local import LocalFileSystem
from hdfs import InsecureClient

from airflow_provider_impala_transfer.core.export import plan_export
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.methods import FsspecMethod, HdfsPutMethod
from airflow_provider_impala_transfer.core.transfer.publish import commit, publish, roll_back
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata
from airflow_provider_impala_transfer.operators.transfer import FinalizePublishOperator
from tests.faults.test_publish_locks import deliver
from tests.faults.test_publish_safety import staged
from tests.test_transfer_methods import hdfs_destination, names, unique_dir

DS = {"ds": "2026-12-07"}
MONTH = 30 * 24 * 3600


@pytest.fixture(params=["hdfs dfs", "webhdfs", "local"])
def aged_target(request, tmp_path):
    """(method, age(directory)): a target, and how to make one of its directories a month old."""
    if request.param == "local":
        root = tmp_path / "target"

        def age(directory: str) -> None:
            os.utime(directory, (time.time() - MONTH,) * 2)
        return FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=str(root))), age
    hadoop = request.getfixturevalue("hadoop_env")
    client = InsecureClient(f"http://{hadoop.target.webhdfs_address}", user=hadoop.user)
    metadata = WebHdfsMetadata(client) if request.param == "webhdfs" else None
    method = HdfsPutMethod(destination=hdfs_destination(unique_dir("aged"), metadata=metadata),
                           runner=CommandRunner(timeout=120))

    def age(directory: str) -> None:
        client.set_times(urlsplit(directory).path, modification_time=int((time.time() - MONTH) * 1000))
    return method, age


def test_a_runs_files_put_back_into_staging_by_a_roll_back_wait_a_full_week_again(aged_target, tmp_path):
    """A rename keeps a directory's time: the partition published a month ago, rolled back today,
    would look a month old in staging and be swept by the next run before its retry came."""
    method, age = aged_target
    destination = method.destination
    late, other = Run("scheduled__late", DS), Run("scheduled__other", {"ds": "2026-12-08"})
    files = deliver(method, tmp_path, late, 2)
    publish(destination, late, names(files), names(files))
    age(late.at(destination.root).final_dir)  # published a month ago; its finalize comes only now
    assert roll_back(destination, late)
    theirs = deliver(method, tmp_path, other, 1)
    publish(destination, other, names(theirs), names(theirs))
    commit(destination, other)  # sweeps staging untouched for a week
    assert staged(destination, late) == names(files)


def test_two_server_mode_groups_of_one_run_export_into_tables_and_directories_of_their_own():
    spec = ExtractSpec.build(sql="SELECT 1 AS id", table=None)
    plans = [plan_export(spec, Run("scheduled__2026-12-07", dag_id="daily", group_id=group),
                         source_hdfs_path="hdfs://cluster1/exports") for group in ("orders", "refunds")]
    assert plans[0].table != plans[1].table and plans[0].location != plans[1].location


def test_a_templated_output_path_is_rendered_before_finalize_removes_the_runs_staged_chunks():
    assert "staged_chunks_path" in FinalizePublishOperator.template_fields
    task = FinalizePublishOperator(task_id="finalize", publish_task_id="publish", target_path="hdfs://nn/x",
                                   staged_chunks_path="{{ params.chunks }}")
    task.render_template_fields({"params": {"chunks": "hdfs://cluster1/chunks"}, "ti": SimpleNamespace()})
    assert task.staged_chunks_path == "hdfs://cluster1/chunks"
