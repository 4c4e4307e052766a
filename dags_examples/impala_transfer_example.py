"""Example: an Impala query -> Parquet chunks -> another cluster, verified, published, as a table.

route (the methods, once per run) -> plan -> extract (one task per chunk) -> per chunk: distcp ->
hdfs_put -> hdfs_cp -> scp (each method only if the previous one failed) -> delivered -> reconcile (source COUNT(*) == rows
in files == rows delivered) -> publish (staging dir renamed to ``<target_path>/ds=<date>/``) ->
target_table (CREATE EXTERNAL TABLE / ADD PARTITION / REFRESH, COUNT(*)) -> finalize (keep the
new partition, or put the previous one back if anything failed).

With the Param extract_mode=server (default from IMPALA_TRANSFER_EXTRACT_MODE), ``export`` runs
instead of plan + extract: Impala writes the Parquet on the source cluster (CREATE EXTERNAL TABLE
AS SELECT under the source HDFS path) and distcp copies it; no row passes through a worker. The
``extract_mode`` branch picks the path per run; ``chunks`` hands its manifests on.

Runs daily; trigger it by hand with your own query, chunk size, first method or target path.
A re-run of the same date replaces that date's partition; other dates are never touched.
Doubles as a system test (``airflow dags test impala_transfer_example``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, Param

from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group

ENV = os.environ.get
# The target's table root. A manual run may publish elsewhere (the target_path Param), but an Asset
# needs its URI when the DAG is parsed: the default target is the asset downstream DAGs schedule on
# (dags_examples/impala_transfer_downstream.py); each event's extras name what its run published.
TARGET_PATH = ENV("IMPALA_TRANSFER_TARGET_PATH", "hdfs://target-namenode:8020/data/events")

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
        "extract_mode": Param(ENV("IMPALA_TRANSFER_EXTRACT_MODE", "client"), enum=["client", "server"],
                              description="client: the worker streams the rows into Parquet (small results, "
                                          "any target); server: the source engine writes the Parquet on its "
                                          "cluster and distcp copies it (large results to HDFS)."),
        "target_path": Param(TARGET_PATH,
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
        # The chunks go from the extract to the transfer tasks through the source cluster's HDFS
        # (<source_hdfs_path>/_impala_transfer_chunks/events): with Celery or Kubernetes each task may run
        # on another worker. IMPALA_TRANSFER_OUTPUT_DIR may name another shared place: an object store
        # (s3://bucket/prefix) with its fsspec connection in IMPALA_TRANSFER_OUTPUT_FSSPEC_CONN_ID.
        output_path=ENV("IMPALA_TRANSFER_OUTPUT_DIR") or None,
        output_fsspec_conn_id=ENV("IMPALA_TRANSFER_OUTPUT_FSSPEC_CONN_ID") or None,
        method="{{ params.method }}",
        target_path="{{ params.target_path }}",
        source_hdfs_path=ENV("IMPALA_TRANSFER_SOURCE_HDFS_PATH", "hdfs://source-namenode:8020/tmp/impala-transfer"),
        webhdfs_conn_id=ENV("IMPALA_TRANSFER_WEBHDFS_CONN_ID") or None,  # the target cluster's, for metadata
        ssh_conn_id=ENV("IMPALA_TRANSFER_SSH_CONN_ID") or None,
        partition={"ds": "{{ (dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d') }}"},  # manual runs may have no logical date
        target_table=ENV("IMPALA_TRANSFER_TARGET_TABLE", "default.events_copy"),
        target_impala_conn_id=ENV("IMPALA_TRANSFER_TARGET_CONN_ID", "impala_target"),
        table_dialect=ENV("IMPALA_TRANSFER_TABLE_DIALECT", "impala"),
        max_active_chunks=int(ENV("IMPALA_TRANSFER_MAX_WORKERS", "4")),
        extract_mode="{{ params.extract_mode }}",
        source_webhdfs_conn_id=ENV("IMPALA_TRANSFER_SOURCE_WEBHDFS_CONN_ID") or None,  # the source cluster's
        export_dialect=ENV("IMPALA_TRANSFER_EXPORT_DIALECT", "impala"),
        outlets=[Asset(TARGET_PATH)],  # one event per kept run, from the finalize task
    )
