"""Reading the target server's answers: ``DESCRIBE FORMATTED`` (Impala and Spark layouts) and
Impala's ``SHOW PARTITIONS``, and refusing an existing table that would read our files wrongly."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_provider_impala_transfer.core.errors import TargetTableError
from airflow_provider_impala_transfer.core.table.ddl import TableTarget

_TYPE_SYNONYMS = {"integer": "int", "real": "double"}


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
