"""Example: a DAG downstream of ``impala_transfer_example``, scheduled on its target as an asset.

The transfer's finalize task records one asset event on the target's table root each time a run
keeps a new partition there (a run that fails or is rolled back records none). Its extras name the
directory published, the partition, the rows, files and bytes, the table and the run, so this DAG
needs no XCom of the other: it reads the new partition's row count from the event and checks it
against the target table's own ``COUNT(*)`` of that partition.
"""

from __future__ import annotations

import logging
import os

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_impala_transfer.core.common.connection import run_server_call
from airflow_provider_impala_transfer.core.errors import TargetTableError
from airflow_provider_impala_transfer.core.table.ddl import TableTarget, count_sql
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook

ENV = os.environ.get
log = logging.getLogger(__name__)
# The same default target as impala_transfer_example's (its asset).
EVENTS = Asset(ENV("IMPALA_TRANSFER_TARGET_PATH", "hdfs://target-namenode:8020/data/events"))

with DAG(
    dag_id="impala_transfer_downstream",
    schedule=[EVENTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["impala", "transfer", "example"],
    doc_md=__doc__,
):

    @task(inlets=[EVENTS])
    def new_partition_rows(*, triggering_asset_events=None) -> list[dict]:
        """Each new partition: its rows as published, checked against the table's COUNT(*)."""
        seen = []
        for event in (triggering_asset_events or {}).get(EVENTS, []):
            extra = event.extra
            partition = ", ".join(f"{k}={v}" for k, v in (extra.get("partition") or {}).items()) or "(no partition)"
            rows = extra["rows"]
            if extra.get("table"):
                target = TableTarget(table=extra["table"], location=extra["target_path"],
                                     partition=extra.get("partition"),
                                     dialect=ENV("IMPALA_TRANSFER_TABLE_DIALECT", "impala"))
                connector = ImpalaTransferHook(impala_conn_id=ENV("IMPALA_TRANSFER_TARGET_CONN_ID",
                                                                  "impala_target")).connector()
                with connector.session() as cursor:
                    run_server_call(connector, f"counting {target.table}", lambda: cursor.execute(count_sql(target)))
                    [[counted]] = cursor.fetchall()
                if int(counted) != rows:
                    raise TargetTableError(f"table {target.table} partition {partition} shows {int(counted):,} rows "
                                           f"but run {extra['run_id']} published {rows:,}")
            log.info("new partition %s of %s: %s rows in %d files at %s (run %s of %s)", partition,
                     extra.get("table") or extra["target_path"], f"{rows:,}", extra["files"], extra["published"],
                     extra["run_id"], extra["dag_id"])
            seen.append({"partition": extra.get("partition"), "rows": rows, "published": extra["published"]})
        return seen

    new_partition_rows()
