"""Partition values, one rule for both of their uses: the Hive directory ``<col>=<value>`` that
publishing renames into, and the SQL literal ``PARTITION (`col`='value')`` of the table step."""

from __future__ import annotations

from typing import Any

from airflow_provider_impala_transfer.core.common.sql import quote_identifier
from airflow_provider_impala_transfer.core.errors import ConfigError

_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}
# Characters Hive escapes in partition directory names (FileUtils.escapePathName): a value holding
# one would need a directory name other than ``col=value``, and ``%``/``:``/``#``/``?`` break URIs.
_PARTITION_VALUE_FORBIDDEN = set("'\"`\\/#%*:=?[]{}^") | _CONTROL


def clean_partition(partition: Any) -> dict[str, str] | None:
    """Partition columns and values that are safe both as SQL literals and as Hive directory
    names (``col=value``); None for no partition."""
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
        if value.startswith("."):
            raise ConfigError("partition", f"value {value!r} of {column} would be a hidden directory",
                              "start it with a letter or digit")
        clean[column] = value
    return clean


def partition_path(partition: dict[str, str] | None) -> str:
    """``col=value[/col=value]``: the Hive layout the target table's partitions point at."""
    return "/".join(f"{column}={value}" for column, value in (clean_partition(partition) or {}).items())
