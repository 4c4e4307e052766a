"""Chunk planning: cut one query into contiguous, non-overlapping key ranges.

The idea is Sqoop's ``--split-by``: one ``SELECT MIN, MAX, COUNT`` over the query, then N ranges
of the split column. Unlike ``LIMIT ... OFFSET`` (which Impala refuses without ORDER BY, and which
drops or repeats rows when the order is not total), ranges of a column cover every row exactly
once: the first range is open below, the last open above, and NULL keys get a chunk of their own.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_impala_transfer.core.common.records import Chunk
from airflow_provider_impala_transfer.core.common.values import positive_int
from airflow_provider_impala_transfer.core.errors import ConfigError

# Airflow's default [core] max_map_length: more mapped task instances than this fail to expand.
DEFAULT_MAX_CHUNKS = 1024

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT"}
SPLITTABLE_TYPES = INTEGER_TYPES | {"DECIMAL", "FLOAT", "DOUBLE", "REAL", "DATE", "TIMESTAMP"}


@dataclass(frozen=True)
class SplitStats:
    """What one ``SELECT MIN(c), MAX(c), COUNT(*), COUNT(c)`` said about the split column."""

    minimum: Any
    maximum: Any
    rows: int
    non_null_rows: int


def stats_query(wrapped_sql: str, column_sql: str) -> str:
    return (
        f"SELECT MIN({column_sql}), MAX({column_sql}), COUNT(*), COUNT({column_sql}) "
        f"FROM ({wrapped_sql}) impala_transfer_stats"
    )


def validate_chunking(chunk_size: Any, num_chunks: Any) -> tuple[int, int | None]:
    chunk_size = positive_int(chunk_size, "chunk_size")
    if num_chunks is not None:
        num_chunks = positive_int(num_chunks, "num_chunks")
    return chunk_size, num_chunks


def unsplit_plan(*, empty_result_file: bool = True) -> list[Chunk]:
    """One streamed query; the writer still rolls files every chunk_size rows."""
    return [Chunk(index=0, predicate=None, write_empty_file=empty_result_file)]


def split_plan(
    column_sql: str,
    column_type: str,
    stats: SplitStats,
    *,
    chunk_size: int,
    num_chunks: int | None = None,
    max_chunks: int = DEFAULT_MAX_CHUNKS,
    empty_result_file: bool = True,
) -> list[Chunk]:
    """Ranges over the split column, sized so each holds about ``chunk_size`` rows."""
    column_type = column_type.upper()
    if column_type not in SPLITTABLE_TYPES:
        raise ConfigError(
            "split_by",
            f"the column is of type {column_type}, which cannot be cut into ranges",
            "split by an integer, decimal, float, date or timestamp column",
        )
    if stats.rows == 0:
        return unsplit_plan(empty_result_file=empty_result_file)

    null_rows = stats.rows - stats.non_null_rows
    chunks: list[Chunk] = []
    if stats.non_null_rows:
        wanted = num_chunks or math.ceil(stats.non_null_rows / chunk_size)
        wanted = max(1, min(wanted, max_chunks - (1 if null_rows else 0)))
        codec = _codec(column_type)
        low, high = codec.to_number(stats.minimum), codec.to_number(stats.maximum)
        bounds = codec.boundaries(low, high, wanted)
        literals = [codec.to_literal(b) for b in bounds]
        edges: list[str | None] = [None, *literals, None]
        for i in range(len(edges) - 1):
            lower, upper = edges[i], edges[i + 1]
            parts = []
            if lower is not None:
                parts.append(f"{column_sql} >= {lower}")
            if upper is not None:
                parts.append(f"{column_sql} < {upper}")
            predicate = " AND ".join(parts) or f"{column_sql} IS NOT NULL"
            chunks.append(Chunk(index=len(chunks), predicate=predicate, description=predicate))
    if null_rows:
        predicate = f"{column_sql} IS NULL"
        chunks.append(Chunk(index=len(chunks), predicate=predicate, description=predicate))
    return chunks


class _NumberCodec:
    """Maps a split column's values onto numbers we can interpolate, and back to SQL literals."""

    integral = False

    def to_number(self, value: Any) -> Any:
        return value

    def from_number(self, number: Any) -> Any:
        return number

    def to_literal(self, number: Any) -> str:
        return str(number)

    def boundaries(self, low: Any, high: Any, n: int) -> list[Any]:
        """n-1 strictly increasing inner boundaries in (low, high]; fewer when the span is small."""
        result: list[Any] = []
        if self.integral:
            span = high - low + 1
            n = min(n, span)
            for i in range(1, n):
                result.append(low + -(-i * span // n))  # ceil without floats: exact for bigints
        else:
            span = high - low
            for i in range(1, n):
                result.append(self.interpolate(low, span, i, n))
        out: list[Any] = []
        for b in result:
            if low < b <= high and (not out or b > out[-1]):
                out.append(b)
        return out

    def interpolate(self, low: Any, span: Any, i: int, n: int) -> Any:
        return low + span * i / n


class _IntegerCodec(_NumberCodec):
    integral = True

    def to_number(self, value: Any) -> int:
        return int(value)


class _DecimalCodec(_NumberCodec):
    def to_number(self, value: Any) -> Decimal:
        return Decimal(str(value))

    def interpolate(self, low: Decimal, span: Decimal, i: int, n: int) -> Decimal:
        exponent = min(low.as_tuple().exponent, (low + span).as_tuple().exponent)
        value = low + span * i / n
        return value.quantize(Decimal(1).scaleb(exponent)) if isinstance(exponent, int) else value

    def to_literal(self, number: Decimal) -> str:
        return f"CAST('{number}' AS DECIMAL(38,{max(0, -number.as_tuple().exponent)}))"


class _FloatCodec(_NumberCodec):
    def to_number(self, value: Any) -> float:
        return float(value)

    def to_literal(self, number: float) -> str:
        return f"CAST('{number!r}' AS DOUBLE)"


class _DateCodec(_NumberCodec):
    integral = True

    def to_number(self, value: Any) -> int:
        if isinstance(value, str):
            value = dt.date.fromisoformat(value[:10])
        return value.toordinal()

    def to_literal(self, number: int) -> str:
        return f"CAST('{dt.date.fromordinal(number).isoformat()}' AS DATE)"


class _TimestampCodec(_NumberCodec):
    """Microseconds since year 1: integral, so bounds are exact and never collide."""

    integral = True
    _EPOCH = dt.datetime(1, 1, 1)

    def to_number(self, value: Any) -> int:
        if isinstance(value, str):
            value = _parse_timestamp(value)
        delta = value - self._EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds

    def to_literal(self, number: int) -> str:
        ts = self._EPOCH + dt.timedelta(microseconds=number)
        return f"CAST('{ts.isoformat(sep=' ', timespec='microseconds')}' AS TIMESTAMP)"


def _parse_timestamp(text: str) -> dt.datetime:
    # Servers print up to nanoseconds; microseconds are enough for a range boundary (the first
    # range is open below and the last open above, so rounding a bound never loses a row).
    text = text.strip().replace("T", " ")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    return dt.datetime.fromisoformat(text)


def _codec(column_type: str) -> _NumberCodec:
    if column_type in INTEGER_TYPES:
        return _IntegerCodec()
    if column_type == "DECIMAL":
        return _DecimalCodec()
    if column_type in {"FLOAT", "DOUBLE", "REAL"}:
        return _FloatCodec()
    if column_type == "DATE":
        return _DateCodec()
    return _TimestampCodec()
