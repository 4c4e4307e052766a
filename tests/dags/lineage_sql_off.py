"""Test DAG: the same query, holding a literal that must not leave the workers, through three
groups: client extract and server export with ``lineage_sql=False``, and a server export with the
default (``lineage_sql=True``) as the control that shows where the text goes when it is on. The
query is written here, not given in the run's conf: OpenLineage's run facet carries the conf."""

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group

SECRET = "secret-literal-42"
QUERY = f"SELECT * FROM default.events WHERE id < 1000 AND name <> '{SECRET}'"
TARGET = os.environ.get("IMPALA_TRANSFER_LINEAGE_SQL_TARGET", "hdfs://cluster2/unset")
SOURCE = os.environ.get("IMPALA_TRANSFER_SOURCE_HDFS_PATH", "hdfs://cluster1/unset")

with DAG(dag_id="lineage_sql_off", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    common = dict(sql=QUERY, source_hdfs_path=SOURCE, webhdfs_conn_id="target_webhdfs", outlets=[],
                  source_webhdfs_conn_id="source_webhdfs", export_dialect="hive")
    impala_transfer_group("client", target_path=f"{TARGET}/client", split_by="id", chunk_size=1000,
                          method="hdfs_put", lineage_sql=False, **common)
    impala_transfer_group("server", target_path=f"{TARGET}/server", extract_mode="server", chunk_size=1000,
                          method="hdfs_cp", lineage_sql=False, **common)
    impala_transfer_group("server_sql", target_path=f"{TARGET}/server_sql", extract_mode="server",
                          chunk_size=1000, method="hdfs_cp", **common)
