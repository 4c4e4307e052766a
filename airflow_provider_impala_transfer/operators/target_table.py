"""Make published files readable as a table on the target cluster, and prove the row count."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_impala_transfer.core.common.connection import RunningQueries
from airflow_provider_impala_transfer.core.common.kerberos import closes_tickets
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.sql import quote_table_name
from airflow_provider_impala_transfer.core.common.uris import normalize_uri
from airflow_provider_impala_transfer.core.errors import ImpalaTransferError
from airflow_provider_impala_transfer.core.table.ddl import TableTarget
from airflow_provider_impala_transfer.core.table.publish import publish_table, switch_back_sql, switch_table_back
from airflow_provider_impala_transfer.core.transfer.records import PublishResult
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook

# XCom: where the table (or its partition) read before this task switched it, pushed before the
# switch, so that FinalizePublishOperator switches it back if the run is rolled back.
TABLE_SWITCH_KEY = "table_switch"


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

    @closes_tickets
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

        def before_switch(previous: str) -> None:
            # Said before the switch: if this task is killed after it, the finalize task switches back.
            context["ti"].xcom_push(key=TABLE_SWITCH_KEY, value={
                "table": target.table, "partition": target.partition, "dialect": target.dialect,
                "root": target.location, "previous": previous, "switched_to": target.data_location})
            self.log.info("switching %s from %s to %s", target.table, previous, target.data_location)

        result = publish_table(connector, target, manifest.schema, manifest.rows, on_switch=before_switch)
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


def switch_tables_back(ti: Any, task_ids: Sequence[str], impala_conn_id: str | None, log: Any) -> list[str]:
    """For a run being rolled back: point each table (or partition) that a
    :class:`TargetTableOperator` among ``task_ids`` switched (its :data:`TABLE_SWITCH_KEY`) back
    where it read before, and refresh it. A task killed after the switch never switched back
    itself; one that failed did, and switching again changes nothing.

    Never raises: a failure is logged with the statements to run by hand, and the run's verdict
    stays the error the caller reports. Returns what was switched back.
    """
    done: list[str] = []
    for task_id in task_ids:
        switched = ti.xcom_pull(task_ids=task_id, key=TABLE_SWITCH_KEY)
        if not switched:
            continue
        previous = switched.get("previous")
        where = str(switched.get("table"))
        if switched.get("partition"):
            where += " partition " + ", ".join(f"{c}={v}" for c, v in switched["partition"].items())
        try:
            target = TableTarget(table=switched["table"], location=switched["root"],
                                 partition=switched.get("partition") or None, dialect=switched.get("dialect", "impala"))
            by_hand = "; ".join(switch_back_sql(target, previous))
        except (ImpalaTransferError, KeyError, TypeError) as exc:
            log.warning("could not switch %s back to %s (set its location by hand): %s", where, previous, exc)
            continue
        try:
            connector = ImpalaTransferHook(impala_conn_id=impala_conn_id or ImpalaTransferHook.default_conn_name
                                           ).connector()
            switch_table_back(connector, target, previous)
        except Exception as exc:  # noqa: BLE001 - the run's verdict must not hide behind its clean-up
            log.warning("could not switch %s back to %s (run it by hand: %s): %s", where, previous, by_hand, exc)
            continue
        log.info("switched %s back from %s to %s: %s", where, switched.get("switched_to"), previous, by_hand)
        done.append(where)
    return done
