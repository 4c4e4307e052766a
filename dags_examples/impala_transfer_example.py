"""Example: an Impala query -> Parquet chunks -> another cluster, verified, published, as a table.

plan -> extract (one task per chunk) -> per chunk: route -> distcp -> hdfs_put -> hdfs_cp -> scp
(each method only if the previous one failed) -> delivered -> reconcile (source COUNT(*) == rows
in files == rows delivered) -> publish (staging dir renamed to ``<target_path>/ds=<date>/``) ->
target_table (CREATE EXTERNAL TABLE / ADD PARTITION / REFRESH, COUNT(*)) -> finalize (keep the
new partition, or put the previous one back if anything failed).

With IMPALA_TRANSFER_EXTRACT_MODE=server, ``export`` replaces plan + extract: Impala writes the
Parquet on the source cluster (CREATE EXTERNAL TABLE AS SELECT under the source HDFS path) and
distcp copies it; no row passes through a worker. The mode shapes the graph, so it is chosen when
the DAG is parsed, not per run.

Runs daily; trigger it by hand with your own query, chunk size, first method or target path.
A re-run of the same date replaces that date's partition; other dates are never touched.
Doubles as a system test (``airflow dags test impala_transfer_example``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group

ENV = os.environ.get

with DAG(
    dag_id="impala_transfer_example",
    schedule=ENV("IMPALA_TRANSFER_SCHEDULE", "@daily") or None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["impala", "transfer", "example"],
    params={
        "query": Param("SELECT * FROM default.events", type="string", minLength=1,
                       description="A SELECT (or WITH ... SELECT) statement."),
        "split_by": Param("id", type=["string", "null"],
                          description="Column to cut into key ranges; empty = one stream."),
        "chunk_size": Param(250_000, type="integer", minimum=1, description="Max rows per file and per chunk."),
        "method": Param(ENV("IMPALA_TRANSFER_METHOD", "distcp"),
                        enum=["distcp", "hdfs_put", "hdfs_cp", "scp", "fsspec"],
                        description="First method to try; the later ones of distcp -> hdfs_put -> "
                                    "hdfs_cp -> scp are the fallbacks."),
        "target_path": Param(ENV("IMPALA_TRANSFER_TARGET_PATH", "hdfs://target-namenode:8020/data/events"),
                             type="string", pattern="^[A-Za-z][A-Za-z0-9+.-]*://",
                             description="Table root on the target, a full URI."),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:
    impala_transfer_group(
        "events",
        sql="{{ params.query }}",
        split_by="{{ params.split_by or '' }}",
        chunk_size="{{ params.chunk_size }}",
        impala_conn_id=ENV("IMPALA_TRANSFER_CONN_ID", "impala_default"),
        output_path=ENV("IMPALA_TRANSFER_OUTPUT_DIR", "/tmp/impala-transfer"),
        method="{{ params.method }}",
        target_path="{{ params.target_path }}",
        source_hdfs_path=ENV("IMPALA_TRANSFER_SOURCE_HDFS_PATH") or None,
        webhdfs_conn_id=ENV("IMPALA_TRANSFER_WEBHDFS_CONN_ID") or None,  # the target cluster's, for metadata
        ssh_conn_id=ENV("IMPALA_TRANSFER_SSH_CONN_ID") or None,
        partition={"ds": "{{ (dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d') }}"},  # manual runs may have no logical date
        target_table=ENV("IMPALA_TRANSFER_TARGET_TABLE", "default.events_copy"),
        target_impala_conn_id=ENV("IMPALA_TRANSFER_TARGET_CONN_ID", "impala_target"),
        table_dialect=ENV("IMPALA_TRANSFER_TABLE_DIALECT", "impala"),
        max_active_chunks=int(ENV("IMPALA_TRANSFER_MAX_WORKERS", "4")),
        extract_mode=ENV("IMPALA_TRANSFER_EXTRACT_MODE", "client"),
        source_webhdfs_conn_id=ENV("IMPALA_TRANSFER_SOURCE_WEBHDFS_CONN_ID") or None,  # the source cluster's
        export_dialect=ENV("IMPALA_TRANSFER_EXPORT_DIALECT", "impala"),
    )
