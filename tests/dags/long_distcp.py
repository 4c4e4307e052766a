"""Test DAG: one chunk's distcp on YARN, slow enough to be stopped mid-copy, then hdfs put.

The chunk's manifest (local files, their sizes and checksums) is read from the JSON file
``IMPALA_TRANSFER_TEST_MANIFEST`` names; ``-bandwidth 1`` (MB/s per map) with one map makes the job
copy for as many seconds as the chunk has MB. ``distcp`` and ``hdfs_put`` deliver into the same
run's staging directory on ``IMPALA_TRANSFER_TARGET``, as in the group's fallback chain."""

import json
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_impala_transfer.operators.transfer import TransferOperator

manifest_file = os.environ.get("IMPALA_TRANSFER_TEST_MANIFEST")
manifest = json.loads(open(manifest_file).read()) if manifest_file else {}
target = dict(target_path=os.environ.get("IMPALA_TRANSFER_TARGET", "hdfs://cluster2/long-distcp"),
              source_hdfs_path=os.environ.get("IMPALA_TRANSFER_SOURCE_HDFS_PATH", "hdfs://cluster1/long-distcp"),
              transfer_group_id="long")

with DAG(dag_id="long_distcp", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    distcp = TransferOperator(task_id="distcp", method="distcp", manifest=manifest, distcp_maps=1,
                              distcp_bandwidth_mb=1, later_methods=[], **target)
    put = TransferOperator(task_id="hdfs_put", method="hdfs_put", manifest=manifest, skip_if_delivered_by=[],
                           trigger_rule="all_done", **target)
    distcp >> put
