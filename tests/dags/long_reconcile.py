"""Test DAG: a reconcile task whose source ``COUNT(*)`` keeps the server busy for minutes (the
cross join of ``long_query.py``, no row in its result), to be killed mid-way. Its manifest and
deliveries are given literally (no upstream task): only the count reaches the server."""

import os

import pendulum
import pyarrow as pa
from airflow.sdk import DAG

from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.operators.reconcile import ReconcileOperator

ROWS = int(os.environ.get("IMPALA_TRANSFER_LONG_QUERY_ROWS", "200000"))
CROSS_JOIN = (f"SELECT a.id AS a, b.id AS b FROM range({ROWS}) a CROSS JOIN range({ROWS}) b "
              "WHERE a.id * b.id = -1")
NO_FILES = Manifest(files=[], schema=pa.schema([("a", pa.int64()), ("b", pa.int64())])).to_dict()

with DAG(dag_id="long_reconcile", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ReconcileOperator(task_id="reconcile", sql=CROSS_JOIN, manifests=[NO_FILES], deliveries=[])
