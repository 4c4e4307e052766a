"""Exact Impala -> Arrow typing, and vectorised conversion of raw HiveServer2 column batches.

impyla's own conversion parses every TIMESTAMP/DECIMAL/DATE value in a Python loop (the bottleneck
of a naive extract) and pandas then guesses types from data (ints with NULLs become doubles,
decimals lose precision). Here the schema comes from ``cursor.description`` alone, and each raw
column (native ints/floats/bools, or bytes for everything sent as text) becomes one Arrow array
with a single vectorised cast. Arrow's casts are strict: a decimal that would need rounding, a
nanosecond timestamp in a microsecond column or invalid UTF-8 fails loudly instead of changing data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError

TIMESTAMP_UNITS = ("us", "ns", "ms", "s")

_FIXED_TYPES: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INT": pa.int32(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "FLOAT": pa.float32(),
    "REAL": pa.float64(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "BINARY": pa.binary(),
}
# Sent as text by HiveServer2 and kept as text: complex types arrive rendered as JSON by the server.
_TEXT_TYPES = {"STRING", "VARCHAR", "CHAR", "NULL", "ARRAY", "MAP", "STRUCT", "UNION", "UNIONTYPE",
               "INTERVAL", "USER", "JSON"}


@dataclass(frozen=True)
class ColumnType:
    """One column as the server described it."""

    name: str
    type_name: str
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def from_description(cls, entry: Sequence[Any]) -> ColumnType:
        return cls(name=str(entry[0]), type_name=str(entry[1]).upper(), precision=entry[4], scale=entry[5])


def validate_timestamp_unit(unit: str) -> str:
    if unit not in TIMESTAMP_UNITS:
        raise ConfigError("timestamp_unit", f"{unit!r} is not one of {', '.join(TIMESTAMP_UNITS)}",
                          "use 'us' (microseconds, years 1-9999) or 'ns' (nanoseconds, 1677-2262)")
    return unit


def arrow_type(column: ColumnType, timestamp_unit: str = "us") -> pa.DataType:
    name = column.type_name
    if name in _FIXED_TYPES:
        return _FIXED_TYPES[name]
    if name == "DECIMAL":
        if column.precision is None or column.scale is None:
            raise ExtractError(
                f"column {column.name!r}: the server did not report DECIMAL precision/scale; "
                "CAST the column to DECIMAL(p,s) in the query"
            )
        return pa.decimal128(column.precision, column.scale)
    if name == "TIMESTAMP":
        return pa.timestamp(timestamp_unit)
    if name in _TEXT_TYPES:
        return pa.string()
    raise ExtractError(f"column {column.name!r}: unsupported type {name}; CAST it to STRING in the query")


def arrow_schema(description: Sequence[Sequence[Any]], timestamp_unit: str = "us") -> pa.Schema:
    columns = [ColumnType.from_description(d) for d in description]
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise ExtractError(
                f"column {column.name!r} appears twice in the query result; give each column a unique "
                "alias (SELECT a.id AS a_id, b.id AS b_id ...)"
            )
        seen.add(column.name)
    fields = []
    for column in columns:
        metadata = {"impala_type": column.type_name}
        if column.type_name in {"ARRAY", "MAP", "STRUCT"}:
            metadata["encoding"] = "json"
        fields.append(pa.field(column.name, arrow_type(column, timestamp_unit), nullable=True, metadata=metadata))
    return pa.schema(fields)


class BatchConverter:
    """Turns impyla ``CBatch`` objects (fetched with ``convert_types=False`` and
    ``convert_strings_to_unicode=False``) into Arrow record batches of a fixed schema."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._converters = [_converter_for(field) for field in schema]

    def convert(self, batch: Any) -> pa.RecordBatch:
        arrays = []
        for field, convert, column in zip(self.schema, self._converters, batch.columns):
            values = column.values
            mask = _null_mask(column.nulls, len(values))
            try:
                arrays.append(convert(values, mask))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError, TypeError) as exc:
                raise ExtractError(_explain(field, exc)) from exc
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _null_mask(nulls: Any, length: int) -> np.ndarray | None:
    """impyla keeps NULL flags as a little-endian bitarray (possibly padded); Arrow wants bools."""
    if not nulls.any():
        return None
    return np.frombuffer(nulls.unpack(), dtype=np.bool_)[:length]


def _converter_for(field: pa.Field):
    target = field.type
    impala_type = (field.metadata or {}).get(b"impala_type", b"").decode()
    if pa.types.is_string(target):
        return lambda values, mask: pa.array(values, type=pa.binary(), mask=mask).cast(pa.string())
    if pa.types.is_binary(target):
        return lambda values, mask: pa.array(values, type=pa.binary(), mask=mask)
    if pa.types.is_decimal(target) or pa.types.is_timestamp(target) or pa.types.is_date(target):
        # Sent as text: decode the whole column at once, then one strict cast.
        return lambda values, mask: pa.array(values, type=pa.binary(), mask=mask).cast(pa.string()).cast(target)
    if pa.types.is_float32(target) and impala_type == "FLOAT":
        # FLOAT travels widened to a double; narrowing back is exact for values that were floats.
        return lambda values, mask: pa.array(values, type=pa.float64(), mask=mask).cast(target)
    return lambda values, mask: pa.array(values, type=target, mask=mask)


def _explain(field: pa.Field, exc: Exception) -> str:
    text = str(exc)
    hint = ""
    if pa.types.is_timestamp(field.type) and "timestamp" in text:
        hint = "; values carry more sub-second digits than the unit keeps: set timestamp_unit='ns'"
    elif "UTF8" in text or "utf8" in text.lower():
        hint = "; the column holds bytes that are not UTF-8: CAST it to BINARY in the query"
    elif pa.types.is_decimal(field.type):
        hint = "; a value does not fit the declared precision/scale"
    return f"column {field.name!r} ({field.type}): {text}{hint}"
