"""The target table's SQL: what to create, alter, refresh and count so published Parquet files
read as a table on the target cluster (:mod:`.publish` runs it, :mod:`.describe` reads the answers).

An external table points at the files where they already are; nothing is copied or rewritten:

* ``CREATE EXTERNAL TABLE IF NOT EXISTS`` with column types taken from the exact Arrow schema the
  files were written with (so the table types are the file types, not a guess);
* for a partitioned target, ``ADD IF NOT EXISTS PARTITION`` pointing at ``<root>/<col>=<value>``
  (the Hive layout), and a partition that exists elsewhere is moved with ``SET LOCATION``;
* for a plain target, ``SET LOCATION`` when the table points at an older data directory, so a new
  extract into a fresh directory replaces the old one in one metadata step;
* a refresh (``REFRESH t`` on Impala, ``REFRESH TABLE t`` on HiveServer2/Spark), then a
  ``COUNT(*)`` that must equal the published rows.

An existing table whose columns differ from the files (name, type or order) is refused: Impala
resolves Parquet columns by position by default, so a mismatch would read the wrong column, not fail.

Two SQL dialects: ``impala`` (the default) and ``hive`` (HiveServer2 as served by Spark's Thrift
Server, the project's local test server), which has no ``REFRESH <t>``/``INVALIDATE METADATA`` but
``REFRESH TABLE <t>``. Plain Python: no Airflow import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

from airflow_provider_impala_transfer.core.common.partitions import clean_partition, partition_path
from airflow_provider_impala_transfer.core.common.sql import quote_identifier, quote_table_name
from airflow_provider_impala_transfer.core.common.uris import directory_uri, join
from airflow_provider_impala_transfer.core.common.values import check_choice
from airflow_provider_impala_transfer.core.errors import ConfigError, TargetTableError

DIALECTS = ("impala", "hive")
DEFAULT_DIALECT = "impala"
FILE_FORMATS = ("parquet",)

_SIZED_TEXT = re.compile(r"^(VARCHAR|CHAR)\(\s*[1-9][0-9]*\s*\)$")

# --------------------------------------------------------------------------------------------
# What to publish


@dataclass(frozen=True)
class TableTarget:
    """Where published files become a table.

    ``location`` is the table's root directory as a full URI (``hdfs://nn:8020/warehouse/x``,
    ``s3a://bucket/x``, ``file:///tmp/x``). With ``partition`` the files live in
    ``<location>/<col>=<value>/...`` and the partition columns are ``STRING``.
    """

    table: str
    location: str
    partition: dict[str, str] | None = None
    dialect: str = DEFAULT_DIALECT
    file_format: str = "parquet"
    _quoted: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_quoted", quote_table_name(self.table, field="target_table"))
        object.__setattr__(self, "table", self.table.strip())
        object.__setattr__(self, "dialect", _check_dialect(self.dialect))
        file_format = str(self.file_format or "").strip().lower()
        if file_format not in FILE_FORMATS:
            raise ConfigError("output_format", "target_table needs parquet files",
                              "set output_format=parquet or drop target_table")
        object.__setattr__(self, "file_format", file_format)
        object.__setattr__(self, "location", directory_uri(self.location, "target_path"))
        object.__setattr__(self, "partition", clean_partition(self.partition))

    @property
    def quoted_table(self) -> str:
        return self._quoted

    @property
    def data_location(self) -> str:
        """The directory that holds this publish's files: the partition's, or the table's."""
        return join(self.location, partition_path(self.partition)) if self.partition else self.location

    def partition_spec(self) -> str:
        """``(`col`='v', ...)``: values are safe to quote as they hold no quote or backslash."""
        pairs = (f"{quote_identifier(c, field='partition')}='{v}'" for c, v in (self.partition or {}).items())
        return "(" + ", ".join(pairs) + ")"


# --------------------------------------------------------------------------------------------
# Types


def column_type_sql(field: pa.Field, dialect: str = DEFAULT_DIALECT) -> str:
    """The SQL type of a table column that reads ``field`` from our Parquet files.

    The source's own type (field metadata ``impala_type``) is used when it carries more than the
    Arrow type and the target reads our encoding into it: a sized ``VARCHAR(n)``/``CHAR(n)`` for a
    string column. Today the extractor records only the bare type name (``VARCHAR``, ``DECIMAL``)
    and the Arrow type already holds precision/scale, so every other type comes from Arrow.

    Notes per type: ``TIMESTAMP`` columns are written as Parquet INT64 with unit ``MICROS``/
    ``MILLIS`` (Impala reads those since 3.2, Spark always); ``NANOS`` is refused for ``hive``
    because Spark cannot read it. ``BINARY`` needs Impala 4.1 or later on an ``impala`` target
    (Impala reads a BYTE_ARRAY column without UTF8 annotation into BINARY or STRING; BINARY keeps
    the meaning). ``DATE`` needs Impala 3.3 or later.
    """
    dialect = _check_dialect(dialect)
    arrow_sql = _arrow_type_sql(field, dialect)
    source = (field.metadata or {}).get(b"impala_type", b"").decode("utf-8", "replace").strip().upper()
    if arrow_sql == "STRING" and _SIZED_TEXT.match(source):
        return re.sub(r"\s+", "", source)
    return arrow_sql


def _arrow_type_sql(field: pa.Field, dialect: str) -> str:
    t = field.type
    simple = (
        (pa.types.is_int8, "TINYINT"), (pa.types.is_int16, "SMALLINT"), (pa.types.is_int32, "INT"),
        (pa.types.is_int64, "BIGINT"), (pa.types.is_float32, "FLOAT"), (pa.types.is_float64, "DOUBLE"),
        (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_string, "STRING"),
        (pa.types.is_large_string, "STRING"), (pa.types.is_binary, "BINARY"),
        (pa.types.is_large_binary, "BINARY"), (pa.types.is_date32, "DATE"),
    )
    for check, sql in simple:
        if check(t):
            return sql
    if pa.types.is_decimal128(t):
        if not 1 <= t.precision <= 38:
            raise _unsupported(field, "precision above 38 does not fit a DECIMAL column")
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            raise _unsupported(field, "a time-zone-aware timestamp has no TIMESTAMP equivalent")
        if t.unit == "ns" and dialect == "hive":
            raise ConfigError(
                "timestamp_unit",
                f"column {field.name!r} holds nanosecond timestamps (Parquet INT64 NANOS), "
                "which Spark/Hive cannot read",
                "use timestamp_unit='us' for a hive target",
            )
        return "TIMESTAMP"
    raise _unsupported(field, "no target column type reads it")


def _unsupported(field: pa.Field, why: str) -> ConfigError:
    return ConfigError(
        "target_table",
        f"column {field.name!r} has Arrow type {field.type}: {why}",
        "CAST the column in the query to a supported type (e.g. STRING) or drop target_table",
    )


def _check_dialect(dialect: str) -> str:
    return check_choice(str(dialect or "").strip().lower(), "target_dialect", DIALECTS, "supported")


def table_columns(target: TableTarget, schema: pa.Schema) -> list[tuple[str, str]]:
    """``[(name, SQL type)]`` of the data columns, checked against the partition columns."""
    columns: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for f in schema:
        try:
            quote_identifier(f.name, field="target_table")
        except ConfigError:
            raise ConfigError(
                "target_table",
                f"column {f.name!r} is not a valid table column name",
                "alias it in the query with letters, digits and underscores (SELECT count(*) AS n ...)",
            ) from None
        if f.name.lower() in seen:
            raise ConfigError("target_table",
                              f"columns {seen[f.name.lower()]!r} and {f.name!r} differ only in case",
                              "tables ignore case in column names: alias one of them")
        seen[f.name.lower()] = f.name
        columns.append((f.name, column_type_sql(f, target.dialect)))
    if not columns:
        raise ConfigError("target_table", "the files have no columns", "select at least one column")
    for column in target.partition or {}:
        if column.lower() in seen:
            raise ConfigError(
                "partition",
                f"partition column {column!r} is also a column in the files",
                "drop it from the query (its value comes from the directory) or rename the partition",
            )
    return columns


# --------------------------------------------------------------------------------------------
# SQL text


def create_table_sql(target: TableTarget, schema: pa.Schema) -> str:
    cols = ",\n  ".join(f"{quote_identifier(n, field='target_table')} {t}" for n, t in table_columns(target, schema))
    sql = f"CREATE EXTERNAL TABLE IF NOT EXISTS {target.quoted_table} (\n  {cols}\n)"
    if target.partition:
        pcols = ", ".join(f"{quote_identifier(c, field='partition')} STRING" for c in target.partition)
        sql += f"\nPARTITIONED BY ({pcols})"
    return sql + f"\nSTORED AS PARQUET\nLOCATION '{target.location}'"


def add_partition_sql(target: TableTarget) -> str:
    _need_partition(target)
    return (f"ALTER TABLE {target.quoted_table} ADD IF NOT EXISTS PARTITION {target.partition_spec()} "
            f"LOCATION '{target.data_location}'")


def set_partition_location_sql(target: TableTarget, location: str | None = None) -> str:
    """Point the partition at its directory (or back at ``location``, read from the server)."""
    _need_partition(target)
    return (f"ALTER TABLE {target.quoted_table} PARTITION {target.partition_spec()} "
            f"SET LOCATION '{_literal(location or target.data_location)}'")


def set_location_sql(target: TableTarget, location: str | None = None) -> str:
    if target.partition:
        return set_partition_location_sql(target, location)
    return f"ALTER TABLE {target.quoted_table} SET LOCATION '{_literal(location or target.location)}'"


def _literal(location: str) -> str:
    """A location as a SQL string literal body; one read back from the server may hold anything."""
    if any(c in location for c in "'\\\n\r\0"):
        raise TargetTableError(f"location {location!r} holds a quote, backslash or line break; "
                               "set it by hand")
    return location


def refresh_sql(target: TableTarget) -> list[str]:
    if target.dialect == "hive":
        return [f"REFRESH TABLE {target.quoted_table}"]
    if target.partition:
        return [f"REFRESH {target.quoted_table} PARTITION {target.partition_spec()}"]
    return [f"REFRESH {target.quoted_table}"]


def count_sql(target: TableTarget) -> str:
    sql = f"SELECT COUNT(*) FROM {target.quoted_table}"
    if target.partition:
        sql += " WHERE " + " AND ".join(
            f"{quote_identifier(c, field='partition')} = '{v}'" for c, v in target.partition.items())
    return sql


def describe_sql(target: TableTarget) -> str:
    return f"DESCRIBE FORMATTED {target.quoted_table}"


def partition_location_sql(target: TableTarget) -> str:
    """Where the server reads the partition from: Spark describes a partition, Impala lists them."""
    _need_partition(target)
    if target.dialect == "hive":
        return f"DESCRIBE FORMATTED {target.quoted_table} PARTITION {target.partition_spec()}"
    return f"SHOW PARTITIONS {target.quoted_table}"


def _need_partition(target: TableTarget) -> None:
    if not target.partition:
        raise ConfigError("partition", "the target has no partition", "give partition={column: value}")
