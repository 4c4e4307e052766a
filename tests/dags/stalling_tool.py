"""Test DAG: a transfer whose tool stalls, stopped by the task's ``execution_timeout``. The tool
(``STALLING_HDFS``, a script) writes its PID to a file and sleeps; the test checks it is gone."""

import datetime as dt
import json
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_impala_transfer.operators.transfer import TransferOperator

with DAG(dag_id="stalling_tool", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    TransferOperator(
        task_id="hdfs_put",
        method="hdfs_put",
        manifest=json.loads(os.environ["STALLING_MANIFEST"]),
        target_path="hdfs://cluster2/never",
        hdfs_bin=os.environ["STALLING_HDFS"],
        execution_timeout=dt.timedelta(seconds=8),
    )
