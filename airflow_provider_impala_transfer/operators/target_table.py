"""Make published files readable as a table on the target cluster, and prove the row count."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_impala_transfer.core.common.connection import RunningQueries
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.sql import quote_table_name
from airflow_provider_impala_transfer.core.common.uris import normalize_uri
from airflow_provider_impala_transfer.core.table.ddl import TableTarget
from airflow_provider_impala_transfer.core.table.publish import publish_table
from airflow_provider_impala_transfer.core.transfer.records import PublishResult
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook


class TargetTableOperator(BaseOperator):
    """``CREATE EXTERNAL TABLE IF NOT EXISTS ... STORED AS PARQUET LOCATION`` (columns from the
    extract's Arrow schema), or ``ADD PARTITION``, then ``REFRESH``; fails unless the table's
    ``COUNT(*)`` equals the rows published.

    :param target_table: ``db.table`` on the target (validated and quoted).
    :param published: :class:`PublishOperator`'s result. With ``partition`` the table's root is
        ``target_path`` and the partition is the published directory; without, the table's
        location is the published run directory (switched with SET LOCATION on each run).
    :param manifests: the extract manifests (schema and row total).
    :param dialect: ``impala`` (default) or ``hive`` (HiveServer2/Spark Thrift Server).
    """

    template_fields: Sequence[str] = ("target_table", "target_path", "partition", "manifests", "published", "dialect")
    ui_color = "#e3f2fd"

    def __init__(self, *, target_table: str, target_path: str, manifests: Any, published: Any,
                 target_cluster: str | None = None, target_impala_conn_id: str = ImpalaTransferHook.default_conn_name,
                 partition: dict[str, str] | None = None, dialect: str = "impala",
                 file_format: str = "parquet", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_table = target_table
        self.target_path = target_path
        self.target_cluster = target_cluster
        self.published = published
        self.manifests = manifests
        self.target_impala_conn_id = target_impala_conn_id
        self.partition = partition
        self.dialect = dialect
        self.file_format = file_format
        if "{{" not in str(target_table):  # a bad literal name fails when the DAG is parsed
            quote_table_name(target_table, field="target_table")
        self._running = RunningQueries()  # the statements on_kill cancels
        self._lineage: tuple[Any, ...] | None = None  # what execute learnt, for OpenLineage

    def execute(self, context: Any) -> dict[str, Any]:
        manifest = Manifest.merge(self.manifests)
        if self.partition:
            location = normalize_uri(self.target_path, "target_path", cluster=self.target_cluster)
        else:
            location = PublishResult.from_dict(self.published).final_dir
        target = TableTarget(table=self.target_table, location=location,
                             partition=self.partition or None, dialect=self.dialect,
                             file_format=self.file_format)
        connector = ImpalaTransferHook(impala_conn_id=self.target_impala_conn_id, running=self._running).connector()
        result = publish_table(connector, target, manifest.schema, manifest.rows)
        for sql in result.statements:
            self.log.info("ran: %s", sql)
        self.log.info("%s shows %s rows at %s", result.table, f"{result.rows:,}", result.location)
        self._lineage = (connector, target, manifest, result)
        return result.to_dict()

    def on_kill(self) -> None:
        """Cancel the running statement (a COUNT(*), a REFRESH) on the server."""
        self._running.cancel(log=self.log.warning)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The published files -> the table, with its columns and rows (the OpenLineage provider calls this)."""
        if self._lineage is None:
            return None
        from airflow_provider_impala_transfer.operators.lineage import table_lineage

        connector, target, manifest, result = self._lineage
        return table_lineage(connector, target, result, manifest)
