"""Test DAG: one unmapped ImpalaExtractOperator that plans and extracts every chunk itself,
with its query in a .sql file (template_ext)."""

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from airflow_provider_impala_transfer.operators.impala_extract import ImpalaExtractOperator

with DAG(
    dag_id="extract_unmapped",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    template_searchpath=[str(Path(__file__).parent / "queries")],
    params={"limit": 5000},
):
    ImpalaExtractOperator(
        task_id="extract",
        sql="events_subset.sql",
        split_by="id",
        chunk_size=2000,
        output_format="csv",
        compression="gzip",
        output_path=os.environ["IMPALA_TRANSFER_OUTPUT_DIR"],
    )
