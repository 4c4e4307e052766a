"""The counts a run must agree on before anything at the target changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_impala_transfer.core.common.connection import RunningQueries
from airflow_provider_impala_transfer.core.common.kerberos import closes_tickets
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.sql import resolve_query
from airflow_provider_impala_transfer.core.reconcile import check_counts, count_rows
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook
from airflow_provider_impala_transfer.operators.transfer import delivery_records


class ReconcileOperator(BaseOperator):
    """Before anything is replaced: the source query's ``COUNT(*)`` == the rows in the files == the
    rows delivered; fails naming each count otherwise. ``on_kill`` cancels the running ``COUNT(*)``
    on the server.

    :param sql: the source query, or a path ending in ``.sql`` (templated). Exactly one of sql/table.
    :param table: ``db.table`` counted whole (templated).
    :param manifests: the extract's (or export's) manifests (templated).
    :param deliveries: every chunk's delivery record, the chunk joins' outputs (templated).
    :param impala_conn_id: the source's connection, of type ``impala`` or ``impala_transfer``.
    :param connect_timeout: seconds for TCP connect, handshake and session open (overrides the
        connection extra).
    :return: the counts (``source``, ``files``, ``delivered``) through XCom.
    """

    template_fields: Sequence[str] = ("sql", "table", "manifests", "deliveries")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#e6f1f2"

    def __init__(self, *, manifests: Any, deliveries: Any, sql: str | None = None, table: str | None = None,
                 impala_conn_id: str = ImpalaTransferHook.default_conn_name, connect_timeout: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.table = table
        self.manifests = manifests
        self.deliveries = deliveries
        self.impala_conn_id = impala_conn_id
        self.connect_timeout = connect_timeout
        self._running = RunningQueries()  # the COUNT(*) on_kill cancels

    @closes_tickets
    def execute(self, context: Any) -> dict[str, int]:
        manifest = Manifest.merge(self.manifests)
        records = delivery_records(self.deliveries)
        hook = ImpalaTransferHook(impala_conn_id=self.impala_conn_id, connect_timeout=self.connect_timeout,
                                  running=self._running)
        source = count_rows(hook.connector(), resolve_query(self.sql or None, self.table or None))
        counts = {"source": source, "files": manifest.rows, "delivered": sum(r.rows for r in records)}
        for record in sorted(records, key=lambda r: r.chunk):
            self.log.info("%-14s delivered by %s", record.chunk, record.method)
        self.log.info("counts: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        check_counts(counts)
        return counts

    def on_kill(self) -> None:
        """Cancel the running ``COUNT(*)`` on the server (a killed client's query would run on there)."""
        self._running.cancel(log=self.log.warning)
