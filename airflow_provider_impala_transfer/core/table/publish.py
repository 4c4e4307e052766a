"""Publishing a table: create or update it so it shows exactly the published files, then prove
it with a ``COUNT(*)``. Idempotent, and an existing table that differs from the files is refused."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from airflow_provider_impala_transfer.core.common.connection import SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.errors import ConfigError, TargetTableError
from airflow_provider_impala_transfer.core.table.ddl import (
    TableTarget,
    add_partition_sql,
    count_sql,
    create_table_sql,
    describe_sql,
    partition_location_sql,
    refresh_sql,
    set_location_sql,
    set_partition_location_sql,
    table_columns,
)
from airflow_provider_impala_transfer.core.table.describe import (
    check_existing_table,
    parse_describe_formatted,
    partition_location_from_show,
    same_location,
)

log = logging.getLogger(__name__)


@dataclass
class TableResult:
    """What the table step did: the table, where it reads, the rows it shows, the SQL it ran."""

    table: str
    partition: dict[str, str] | None
    location: str
    rows: int
    statements: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "partition": self.partition, "location": self.location, "rows": self.rows,
                "statements": list(self.statements)}


def publish_table(connector: SourceConnector, target: TableTarget, schema: pa.Schema,
                  expected_rows: int, *, on_switch: Callable[[str], None] | None = None) -> TableResult:
    """Create/update the table so it shows exactly the published files, then check the count.

    Idempotent: publishing the same partition again changes nothing; a second partition adds its
    rows; a plain table whose location changed is switched to the new directory. If a step fails
    after a location was switched, it is switched back (a new partition stays, and shows what its
    directory holds).

    ``on_switch(previous_location)`` is called before the table's (or the partition's) location is
    switched, with the location it reads now: a process killed after the switch never runs the
    switch back, so whoever decides the run's fate later needs it (:func:`switch_table_back`). If
    it raises, nothing is switched.
    """
    if isinstance(expected_rows, bool) or not isinstance(expected_rows, int) or expected_rows < 0:
        raise ConfigError("expected_rows", f"{expected_rows!r} is not a row count", "give the manifest's rows")
    columns = table_columns(target, schema)
    create = create_table_sql(target, schema)
    statements: list[str] = []
    undo: list[str] = []  # what puts the table back where it read before, should a later step fail
    with connector.session() as cursor:
        def execute(sql: str, what: str) -> None:
            statements.append(sql)
            run_server_call(connector, f"{what} ({target.table})", lambda: cursor.execute(sql))

        def query(sql: str, what: str) -> list[tuple]:
            execute(sql, what)
            return run_server_call(connector, f"{what} ({target.table})", cursor.fetchall)

        try:
            execute(create, "creating the target table")
            desc = parse_describe_formatted(query(describe_sql(target), "describing the target table"))
            check_existing_table(target, desc, columns)
            if target.partition:
                execute(add_partition_sql(target), "adding the partition")
                rows = query(partition_location_sql(target), "reading the partition's location")
                if target.dialect == "hive":
                    current = parse_describe_formatted(rows).location
                else:
                    current = partition_location_from_show(cursor.description, rows, target)
                if not same_location(current, target.data_location):
                    switch = set_partition_location_sql(target)
                    if on_switch is not None:
                        on_switch(current)
                    undo.append(set_partition_location_sql(target, current))
                    execute(switch, "moving the partition")
            elif not same_location(desc.location, target.location):
                switch = set_location_sql(target)
                if on_switch is not None:
                    on_switch(desc.location)
                undo.append(set_location_sql(target, desc.location))
                execute(switch, "switching the table's location")
            for sql in refresh_sql(target):
                execute(sql, "refreshing the table")
            [[count]] = query(count_sql(target), "counting the table's rows")
            count = int(count)
            where = f" partition {_partition_text(target)}" if target.partition else ""
            if count != expected_rows:
                raise TargetTableError(
                    f"table {target.table}{where} shows {count:,} rows but {expected_rows:,} were published "
                    f"to {target.data_location}; check for other files in that directory or a stale table cache")
        except BaseException:
            for sql in undo:  # best effort: the error that brought us here is the one to report
                try:
                    execute(sql, "restoring the previous location")
                except Exception as exc:  # noqa: BLE001
                    log.warning("could not switch %s back (run it by hand: %s): %s", target.table, sql, exc)
            raise
    return TableResult(table=target.table, partition=dict(target.partition) if target.partition else None,
                       location=target.data_location, rows=count, statements=statements)


def _partition_text(target: TableTarget) -> str:
    return ", ".join(f"{c}={v}" for c, v in (target.partition or {}).items())


def switch_back_sql(target: TableTarget, location: str) -> list[str]:
    """What points the table (or ``target``'s partition) back at ``location`` and lists its files
    again: the statements :func:`switch_table_back` runs, and the ones to run by hand if it cannot."""
    if not isinstance(location, str) or not location.strip():
        raise TargetTableError(f"the location {target.table} read before is unknown ({location!r}); "
                               "set it by hand")
    return [set_location_sql(target, location), *refresh_sql(target)]


def switch_table_back(connector: SourceConnector, target: TableTarget, location: str) -> list[str]:
    """Point the table (with ``target.partition``: that partition) back at ``location``, the one
    :func:`publish_table` reported through ``on_switch`` before switching it, and refresh it.

    For a run whose table step was killed after the switch and whose files were then rolled back:
    the table would read a directory that no longer exists. Idempotent: a table that already reads
    ``location`` is set to it again and refreshed, which changes nothing. Returns the statements run.
    """
    statements = switch_back_sql(target, location)
    with connector.session() as cursor:
        for sql in statements:
            run_server_call(connector, f"switching the table back ({target.table})", lambda: cursor.execute(sql))
    return statements


def refresh_table(connector: SourceConnector, target: TableTarget) -> None:
    """Let the engine list the table's files again after they changed under it (a run that was
    rolled back put the previous files back): Impala caches file lists."""
    with connector.session() as cursor:
        for sql in refresh_sql(target):
            run_server_call(connector, f"refreshing the table ({target.table})", lambda: cursor.execute(sql))
