"""Example: an Impala query -> exact-typed Parquet/CSV chunks, extracted in parallel.

plan (MIN/MAX/COUNT of split_by) -> one mapped extract task per chunk -> summary, which fails
unless the files add up to the query's COUNT(*). Trigger it from the UI with your own query.
Doubles as a system test (``airflow dags test impala_extract_example``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.sql import resolve_query
from airflow_provider_impala_transfer.core.reconcile import check_counts, count_rows
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook
from airflow_provider_impala_transfer.operators.impala_extract import (
    CHUNK_LABEL_TEMPLATE,
    ImpalaChunkPlanOperator,
    ImpalaExtractOperator,
)

IMPALA_CONN_ID = os.environ.get("IMPALA_TRANSFER_CONN_ID", "impala_default")
OUTPUT_DIR = os.environ.get("IMPALA_TRANSFER_OUTPUT_DIR", "/tmp/impala-transfer")
MAX_WORKERS = int(os.environ.get("IMPALA_TRANSFER_MAX_WORKERS", "4"))

with DAG(
    dag_id="impala_extract_example",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["impala", "example"],
    params={
        "query": Param("SELECT * FROM default.events", type="string", minLength=1,
                       description="A SELECT (or WITH ... SELECT) statement."),
        "split_by": Param("id", type=["string", "null"],
                          description="Integer/decimal/date/timestamp column to cut into ranges; empty = one stream."),
        "chunk_size": Param(250_000, type="integer", minimum=1, description="Max rows per file and per chunk."),
        "output_format": Param("parquet", enum=["parquet", "csv"]),
        "compression": Param("snappy", enum=["snappy", "zstd", "gzip", "none"],
                             description="csv accepts none or gzip."),
        "output_path": Param(OUTPUT_DIR, type="string", description="Local directory or fsspec URL."),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:
    query_args = dict(
        sql="{{ params.query }}",
        split_by="{{ params.split_by or '' }}",
        chunk_size="{{ params.chunk_size }}",
        impala_conn_id=IMPALA_CONN_ID,
    )
    plan = ImpalaChunkPlanOperator(task_id="plan", **query_args)
    extract = ImpalaExtractOperator.partial(
        task_id="extract",
        output_path="{{ params.output_path }}",
        output_format="{{ params.output_format }}",
        compression="{{ params.compression }}",
        max_active_tis_per_dagrun=MAX_WORKERS,
        map_index_template=CHUNK_LABEL_TEMPLATE,  # the grid shows each chunk's key range
        retries=1,
        **query_args,
    ).expand(chunk=plan.output)

    @task
    def summary(manifests: list[dict]) -> dict:
        """Fail unless the files hold exactly the rows the query returns."""
        params = get_current_context()["params"]
        manifest = Manifest.merge(manifests)
        connector = ImpalaTransferHook(impala_conn_id=IMPALA_CONN_ID).connector()
        expected = count_rows(connector, resolve_query(params["query"], None))
        for entry in manifest.files:
            print(f"{entry.rows:>10,} rows {entry.bytes:>12,} bytes  {entry.path}")
        print(f"total: {manifest.rows:,} rows in {len(manifest.files)} files, "
              f"{manifest.bytes:,} bytes; source COUNT(*) = {expected:,}")
        check_counts({"source": expected, "files": manifest.rows})
        return {"rows": manifest.rows, "files": len(manifest.files), "bytes": manifest.bytes,
                "paths": [f.path for f in manifest.files]}

    summary(extract.output)
