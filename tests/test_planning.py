"""Chunk planning: every row in exactly one chunk, for any data, key type and chunk count."""

import datetime as dt
import random
import re
from decimal import Decimal

import pytest

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.extract.planning import (
    Chunk,
    SplitStats,
    split_plan,
    unsplit_plan,
    validate_chunking,
)

_LITERAL = re.compile(r"CAST\('([^']*)' AS (\w+)(?:\(\d+,\d+\))?\)|(-?\d+)")


def _parse(literal: str):
    m = _LITERAL.fullmatch(literal)
    text, kind, integer = m.groups()
    if integer is not None:
        return int(integer)
    return {"DECIMAL": Decimal, "DOUBLE": float, "DATE": dt.date.fromisoformat,
            "TIMESTAMP": dt.datetime.fromisoformat}[kind](text)


def _matches(predicate: str, value) -> bool:
    """Evaluate the planner's predicate grammar (`c >= L`, `c < U`, AND, IS [NOT] NULL)."""
    if predicate.endswith("IS NULL"):
        return value is None
    if value is None:
        return False
    if predicate.endswith("IS NOT NULL"):
        return True
    for clause in predicate.split(" AND "):
        _, op, literal = clause.split(" ", 2)
        bound = _parse(literal)
        if op == ">=" and not value >= bound:
            return False
        if op == "<" and not value < bound:
            return False
    return True


def _plan(values, column_type="BIGINT", **kwargs):
    present = [v for v in values if v is not None]
    stats = SplitStats(min(present) if present else None, max(present) if present else None,
                       len(values), len(present))
    return split_plan("`k`", column_type, stats, **kwargs)


def _assert_exact_cover(chunks, values):
    for value in values:
        owners = [c.index for c in chunks if _matches(c.predicate, value)]
        assert len(owners) == 1, f"{value!r} is in chunks {owners}"


@pytest.mark.parametrize("seed", range(40))
def test_random_integer_data_is_covered_exactly_once(seed):
    rng = random.Random(seed)
    values = [rng.randint(-10**rng.randint(0, 18), 10**rng.randint(0, 18)) for _ in range(rng.randint(1, 300))]
    values += [None] * rng.randint(0, 3)
    chunks = _plan(values, chunk_size=rng.randint(1, 50))
    _assert_exact_cover(chunks, values)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_extreme_bigint_range_is_exact():
    values = [-(2**63), 2**63 - 1, 0, 1, -1]
    _assert_exact_cover(_plan(values, num_chunks=7, chunk_size=1), values)


def test_chunk_count_follows_chunk_size_and_num_chunks():
    values = list(range(1000))
    assert len(_plan(values, chunk_size=100)) == 10
    assert len(_plan(values, chunk_size=1000)) == 1
    assert len(_plan(values, chunk_size=1, num_chunks=3)) == 3
    assert len(_plan(values, chunk_size=1, max_chunks=16)) == 16


def test_narrow_key_span_never_gives_duplicate_ranges():
    values = [5] * 100 + [6] * 100
    chunks = _plan(values, chunk_size=10)
    assert len(chunks) == 2
    _assert_exact_cover(chunks, values)


def test_null_keys_get_their_own_chunk_only_when_present():
    chunks = _plan([1, 2, None], chunk_size=10)
    assert chunks[-1].predicate == "`k` IS NULL"
    assert [c.predicate for c in _plan([1, 2], chunk_size=10)] == ["`k` IS NOT NULL"]
    only_nulls = _plan([None, None], chunk_size=10)
    assert [c.predicate for c in only_nulls] == ["`k` IS NULL"]


def test_empty_result_gives_one_schema_chunk_or_none_written():
    assert _plan([], chunk_size=10) == [Chunk(index=0, predicate=None, write_empty_file=True)]
    assert _plan([], chunk_size=10, empty_result_file=False)[0].write_empty_file is False
    assert unsplit_plan()[0].predicate is None


@pytest.mark.parametrize("column_type,values", [
    ("DATE", [dt.date(2020, 1, 1) + dt.timedelta(days=d) for d in range(0, 2000, 7)] + [dt.date(9999, 12, 31)]),
    ("TIMESTAMP", [dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=13 * i**3) for i in range(300)]),
    ("DECIMAL", [Decimal(i) / Decimal(100) for i in range(-500, 500, 3)]),
    ("DOUBLE", [i * 0.37 - 50 for i in range(400)] + [1e300, -1e300]),
])
def test_non_integer_keys_are_covered_exactly_once(column_type, values):
    chunks = _plan(values, column_type, chunk_size=25)
    assert len(chunks) > 3
    _assert_exact_cover(chunks, values)


def test_server_strings_for_timestamps_with_nanoseconds_are_accepted():
    stats = SplitStats("2024-01-01 00:00:00.123456789", "2024-01-02 00:00:00", 10, 10)
    chunks = split_plan("`ts`", "TIMESTAMP", stats, chunk_size=5)
    assert len(chunks) == 2 and "CAST('2024-01-01 12:00:00.061729' AS TIMESTAMP)" in chunks[1].predicate


def test_string_split_column_is_refused():
    with pytest.raises(ConfigError, match=r"^split_by: .*STRING"):
        split_plan("`s`", "STRING", SplitStats("a", "z", 2, 2), chunk_size=1)


@pytest.mark.parametrize("value", [0, -5, "abc", 1.5, None, True])
def test_bad_chunk_size_names_the_field(value):
    with pytest.raises(ConfigError, match=r"^chunk_size: "):
        validate_chunking(value, None)


def test_chunk_size_from_a_template_string_is_accepted():
    assert validate_chunking("250000", "4") == (250000, 4)
    with pytest.raises(ConfigError, match=r"^num_chunks: "):
        validate_chunking(10, 0)


def test_chunks_round_trip_through_xcom_json():
    import json

    chunk = _plan(list(range(100)), chunk_size=10)[3]
    assert Chunk.from_dict(json.loads(json.dumps(chunk.to_dict()))) == chunk
