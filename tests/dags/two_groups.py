"""Test DAGs: two task groups of one DAG publishing to the same target root, which is a template,
so nothing can refuse it when the file is parsed. ``two_groups_partitioned`` gives both the same
partition; ``two_groups_unpartitioned`` none (each run's final directory is then the run key).
In every run the groups must keep apart: their own staging and chunks; and of the two that
publish one final directory, the second is refused with a clear error instead of replacing
the first one's files."""

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group

for dag_id, partition in (("two_groups_partitioned", {"ds": "{{ ds }}"}), ("two_groups_unpartitioned", None)):
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             params={"target": "hdfs://cluster2/unset"}, max_active_tasks=2):
        orders, refunds = (
            impala_transfer_group(
                group, target_path="{{ params.target }}", partition=partition, table="default.even",
                split_by="id", chunk_size=1000, method="hdfs_put",  # one chunk each
                source_hdfs_path=os.environ["IMPALA_TRANSFER_SOURCE_HDFS_PATH"],
                webhdfs_conn_id="target_webhdfs", outlets=[],
            )
            for group in ("orders", "refunds"))
        orders >> refunds  # one after the other: the second finds the first one's published record
