"""Make published Parquet files readable as a table on the target cluster.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from airflow_provider_impala_transfer.core.connection import SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.errors import ConfigError, TargetTableError
from airflow_provider_impala_transfer.core.sql import quote_identifier, quote_table_name

DIALECTS = ("impala", "hive")
DEFAULT_DIALECT = "impala"
FILE_FORMATS = ("parquet",)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}
_LOCATION_FORBIDDEN = {"'", '"', "`", "\\", "?", "#"} | _CONTROL
# Characters Hive escapes in partition directory names (FileUtils.escapePathName): a value holding
# one would need a directory name other than ``col=value``, and ``%``/``:``/``#``/``?`` break URIs.
_PARTITION_VALUE_FORBIDDEN = set("'\"`\\/#%*:=?[]{}^") | _CONTROL
_SIZED_TEXT = re.compile(r"^(VARCHAR|CHAR)\(\s*[1-9][0-9]*\s*\)$")
_TYPE_SYNONYMS = {"integer": "int", "real": "double"}


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
        object.__setattr__(self, "location", _clean_location(self.location))
        object.__setattr__(self, "partition", clean_partition(self.partition))

    @property
    def quoted_table(self) -> str:
        return self._quoted

    @property
    def data_location(self) -> str:
        """The directory that holds this publish's files: the partition's, or the table's."""
        if not self.partition:
            return self.location
        return "/".join([self.location, *(f"{col}={value}" for col, value in self.partition.items())])

    def partition_spec(self) -> str:
        """``(`col`='v', ...)``: values are safe to quote as they hold no quote or backslash."""
        pairs = (f"{quote_identifier(c, field='partition')}='{v}'" for c, v in (self.partition or {}).items())
        return "(" + ", ".join(pairs) + ")"


def _clean_location(location: Any) -> str:
    if not isinstance(location, str) or not location.strip():
        raise ConfigError("target_path", "the target location is empty",
                          "give a full URI such as hdfs://namenode:8020/warehouse/db/table")
    location = location.strip()
    bad = sorted({ch for ch in location if ch in _LOCATION_FORBIDDEN})
    if bad:
        raise ConfigError("target_path", f"{location!r} holds {', '.join(map(repr, bad))}",
                          "give a URI without quotes, backslashes, '?', '#' or control characters")
    if not _SCHEME.match(location):
        raise ConfigError("target_path", f"{location!r} has no scheme",
                          "give a full URI such as hdfs://namenode:8020/warehouse/x or file:///data/x")
    parts = urlsplit(location)
    path = parts.path.rstrip("/")
    if not path:
        raise ConfigError("target_path", f"{location!r} names no directory",
                          "give the table's own directory, e.g. hdfs://namenode:8020/warehouse/x")
    segments = path.split("/")[1:]
    if any(s in ("", ".", "..") for s in segments):
        raise ConfigError("target_path", f"{location!r} holds an empty, '.' or '..' path segment",
                          "give a normalized absolute path")
    return f"{parts.scheme}://{parts.netloc}{path}"


def clean_partition(partition: Any) -> dict[str, str] | None:
    """Partition columns and values that are safe both as SQL literals and as Hive directory
    names (``col=value``); shared by the table step and the publish layout."""
    if partition is None or partition == {}:
        return None
    if not isinstance(partition, dict):
        raise ConfigError("partition", f"{partition!r} is not a mapping",
                          "give {column: value}, e.g. {'ds': '2026-01-01'}")
    clean: dict[str, str] = {}
    seen: set[str] = set()
    for column, value in partition.items():
        quote_identifier(column, field="partition")
        if column.lower() in seen:
            raise ConfigError("partition", f"column {column!r} appears twice", "name each column once")
        seen.add(column.lower())
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError("partition", f"the value of {column!r} is {value!r}, not text",
                              "give partition values as strings")
        value = str(value)
        if not value:
            raise ConfigError("partition", f"the value of {column!r} is empty", "give a non-empty value")
        bad = sorted({ch for ch in value if ch in _PARTITION_VALUE_FORBIDDEN})
        if bad:
            raise ConfigError(
                "partition",
                f"the value {value!r} of {column!r} holds {', '.join(map(repr, bad))}",
                "use letters, digits, '-', '_', '.', '+' or spaces (e.g. 2026-01-01): Hive escapes "
                "the others in directory names and quotes/backslashes cannot be passed safely",
            )
        clean[column] = value
    return clean


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
    value = str(dialect or "").strip().lower()
    if value not in DIALECTS:
        raise ConfigError("target_dialect", f"{dialect!r} is not supported", f"use one of {', '.join(DIALECTS)}")
    return value


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


def set_partition_location_sql(target: TableTarget) -> str:
    _need_partition(target)
    return (f"ALTER TABLE {target.quoted_table} PARTITION {target.partition_spec()} "
            f"SET LOCATION '{target.data_location}'")


def set_location_sql(target: TableTarget) -> str:
    if target.partition:
        return set_partition_location_sql(target)
    return f"ALTER TABLE {target.quoted_table} SET LOCATION '{target.location}'"


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


# --------------------------------------------------------------------------------------------
# Reading the server's answers


@dataclass
class TableDescription:
    """What ``DESCRIBE FORMATTED`` says about a table (Impala and Spark layouts both)."""

    columns: list[tuple[str, str]]  # data columns, lower-case names, normalized types
    partition_columns: list[tuple[str, str]]
    location: str | None
    input_format: str | None


def parse_describe_formatted(rows: Sequence[Sequence[Any]]) -> TableDescription:
    """Spark lists partition columns among the columns *and* under ``# Partition Information``;
    Impala/Hive only under the latter. Sections end at a ``#`` heading (``# Detailed Table
    Information`` follows the columns in both); Impala pads them with rows of empty names. Detail
    rows are ``Location`` (Spark) or ``Location:`` (Impala, padded); the first one wins, which for
    ``DESCRIBE FORMATTED t PARTITION (...)`` is the partition's."""
    columns: list[tuple[str, str]] = []
    partition: list[tuple[str, str]] = []
    details: dict[str, str] = {}
    section = "columns"
    for row in rows:
        name = _cell(row, 0)
        value = _cell(row, 1)
        if name.startswith("#"):
            heading = name.lstrip("#").strip().lower()
            if heading == "col_name":
                continue
            section = "partition" if heading == "partition information" else "details"
            continue
        if section in ("columns", "partition"):
            if not name:  # Impala pads sections with blank rows; only a heading ends one
                continue
            (columns if section == "columns" else partition).append((name.lower(), normalize_type(value)))
        else:
            key = name.rstrip(":").strip().lower()
            if key and key not in details:
                details[key] = value
    partition_names = {n for n, _ in partition}
    data = [c for c in columns if c[0] not in partition_names]
    return TableDescription(data, partition, details.get("location") or None, details.get("inputformat") or None)


def _cell(row: Sequence[Any], index: int) -> str:
    if index >= len(row) or row[index] is None:
        return ""
    value = row[index]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def normalize_type(type_sql: str) -> str:
    text = re.sub(r"\s+", "", str(type_sql or "")).lower()
    return _TYPE_SYNONYMS.get(text, text)


def partition_location_from_show(description: Sequence[Sequence[Any]], rows: Sequence[Sequence[Any]],
                                 target: TableTarget) -> str | None:
    """The ``Location`` of our partition in Impala's ``SHOW PARTITIONS`` result (None if absent)."""
    names = [str(d[0]).strip().lower() for d in description or ()]
    if "location" not in names:
        return None
    where = names.index("location")
    values = list((target.partition or {}).values())
    for row in rows:
        if [_cell(row, i) for i in range(len(values))] == values:
            return _cell(row, where) or None
    return None


def same_location(a: str | None, b: str | None) -> bool:
    """``file:/x`` == ``file:///x`` == ``file:///x/``; hosts compared when both name one, ports
    when both give one (a server may add the default port)."""
    if not a or not b:
        return False
    pa_, pb = urlsplit(a.strip()), urlsplit(b.strip())
    if pa_.scheme.lower() != pb.scheme.lower():
        return False
    if unquote(pa_.path).rstrip("/") != unquote(pb.path).rstrip("/"):
        return False
    if pa_.hostname and pb.hostname and pa_.hostname.lower() != pb.hostname.lower():
        return False
    try:
        ports = (pa_.port, pb.port)
    except ValueError:
        return False
    return None in ports or ports[0] == ports[1]


def check_existing_table(target: TableTarget, desc: TableDescription, columns: list[tuple[str, str]]) -> None:
    """Refuse a table that would read our files into the wrong columns or types."""
    expected = [(n.lower(), normalize_type(t)) for n, t in columns]
    if desc.columns != expected:
        raise TargetTableError(
            f"table {target.table} already exists with columns {_show(desc.columns)} but the files "
            f"hold {_show(expected)}; drop or rename the table, or change the query to match it "
            "(the table reads Parquet columns by position, so a mismatch would give wrong data)"
        )
    expected_partition = [(c.lower(), "string") for c in target.partition or {}]
    if desc.partition_columns != expected_partition:
        have = _show(desc.partition_columns) if desc.partition_columns else "no partition columns"
        want = _show(expected_partition) if expected_partition else "no partition columns"
        raise TargetTableError(
            f"table {target.table} already exists with {have} but the target has {want}; "
            "drop or rename the table, or set partition= to match it"
        )
    if desc.input_format and "parquet" not in desc.input_format.lower():
        raise TargetTableError(
            f"table {target.table} already exists but reads {desc.input_format}, not Parquet; "
            "drop or rename the table"
        )


def _show(columns: list[tuple[str, str]]) -> str:
    return "(" + ", ".join(f"{n} {t}" for n, t in columns) + ")"


# --------------------------------------------------------------------------------------------
# Publishing


def publish_table(connector: SourceConnector, target: TableTarget, schema: pa.Schema,
                  expected_rows: int) -> dict[str, Any]:
    """Create/update the table so it shows exactly the published files, then check the count.

    Idempotent: publishing the same partition again changes nothing; a second partition adds its
    rows; a plain table whose location changed is switched to the new directory.
    """
    if isinstance(expected_rows, bool) or not isinstance(expected_rows, int) or expected_rows < 0:
        raise ConfigError("expected_rows", f"{expected_rows!r} is not a row count", "give the manifest's rows")
    columns = table_columns(target, schema)
    create = create_table_sql(target, schema)
    statements: list[str] = []
    connection = connector.connect()
    try:
        cursor = connector.cursor(connection, columnar=False)
        try:
            def execute(sql: str, what: str) -> None:
                statements.append(sql)
                run_server_call(connector, f"{what} ({target.table})", lambda: cursor.execute(sql))

            def query(sql: str, what: str) -> list[tuple]:
                execute(sql, what)
                return run_server_call(connector, f"{what} ({target.table})", cursor.fetchall)

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
                    execute(set_partition_location_sql(target), "moving the partition")
            elif not same_location(desc.location, target.location):
                execute(set_location_sql(target), "switching the table's location")
            for sql in refresh_sql(target):
                execute(sql, "refreshing the table")
            [[count]] = query(count_sql(target), "counting the table's rows")
        finally:
            cursor.close()
    finally:
        connection.close()
    count = int(count)
    where = f" partition {_partition_text(target)}" if target.partition else ""
    if count != expected_rows:
        raise TargetTableError(
            f"table {target.table}{where} shows {count:,} rows but {expected_rows:,} were published "
            f"to {target.data_location}; check for other files in that directory or a stale table cache"
        )
    return {
        "table": target.table,
        "partition": dict(target.partition) if target.partition else None,
        "location": target.data_location,
        "rows": count,
        "statements": statements,
    }


def _partition_text(target: TableTarget) -> str:
    return ", ".join(f"{c}={v}" for c, v in (target.partition or {}).items())
