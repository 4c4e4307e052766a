"""Test DAG: extract tasks whose query keeps the server busy for minutes (a cross join of two
ranges, no row in its result), to be killed mid-way. ``IMPALA_TRANSFER_LONG_QUERY_ROWS`` sizes the
ranges; their product is the rows the server must join."""

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_impala_transfer.operators.impala_extract import ImpalaChunkPlanOperator, ImpalaExtractOperator

ROWS = int(os.environ.get("IMPALA_TRANSFER_LONG_QUERY_ROWS", "200000"))
CROSS_JOIN = (f"SELECT a.id AS a, b.id AS b FROM range({ROWS}) a CROSS JOIN range({ROWS}) b "
              "WHERE a.id * b.id = -1")

with DAG(dag_id="long_query", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    # The extract's own query: no split_by, so nothing runs before it.
    ImpalaExtractOperator(task_id="extract", sql=CROSS_JOIN, output_path=os.environ["IMPALA_TRANSFER_OUTPUT_DIR"])
    # The plan's MIN/MAX/COUNT over the same join.
    ImpalaChunkPlanOperator(task_id="plan", sql=CROSS_JOIN, split_by="a")
