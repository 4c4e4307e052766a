"""Type mapping and strict conversion, on impyla's own CBatch built from a thrift TRowSet.

The local server cannot produce some values real Impala sends (nanosecond timestamps, invalid
UTF-8 in STRING), so those cases are built here from the wire-level thrift structures.
"""

from decimal import Decimal

import pyarrow as pa
import pytest
from impala._thrift_gen.TCLIService.ttypes import (
    TColumn,
    TI32Column,
    TRowSet,
    TStringColumn,
)
from impala.hiveserver2 import CBatch

from airflow_provider_impala_transfer.core.extract.arrow_types import BatchConverter, arrow_schema, validate_timestamp_unit
from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError


def describe(*columns):
    return [(name, type_, None, None, p, s, None) for name, type_, p, s in columns]


def batch(description, *columns):
    """A CBatch exactly as impyla builds it with convert_types=False, convert_strings_to_unicode=False."""
    rowset = TRowSet(startRowOffset=0, rows=[], columns=list(columns))
    return CBatch(rowset, False, description, convert_types=False, convert_strings_to_unicode=False)


def strings(values, null_bits=b"\x00"):
    return TColumn(stringVal=TStringColumn(values=values, nulls=null_bits))


def test_nanosecond_timestamps_need_ns_unit_and_are_never_truncated():
    description = describe(("ts", "TIMESTAMP", None, None))
    raw = strings([b"2024-01-31 12:34:56.123456789", b""], b"\x02")
    with pytest.raises(ExtractError, match=r"column 'ts'.*set timestamp_unit='ns'"):
        BatchConverter(arrow_schema(description, "us")).convert(batch(description, raw))
    raw = strings([b"2024-01-31 12:34:56.123456789", b""], b"\x02")
    out = BatchConverter(arrow_schema(description, "ns")).convert(batch(description, raw))
    assert out.column(0).type == pa.timestamp("ns")
    assert out.column(0).cast(pa.int64())[0].as_py() % 1_000_000_000 == 123456789
    assert out.column(0)[1].as_py() is None


def test_decimal_with_more_digits_than_its_scale_is_refused():
    description = describe(("d", "DECIMAL", 18, 2))
    with pytest.raises(ExtractError, match=r"column 'd' \(decimal128\(18, 2\)\).*precision/scale"):
        BatchConverter(arrow_schema(description)).convert(batch(description, strings([b"1.234"])))
    out = BatchConverter(arrow_schema(description)).convert(batch(description, strings([b"-0.50"])))
    assert out.column(0)[0].as_py() == Decimal("-0.50")


def test_invalid_utf8_is_refused_with_a_fix():
    description = describe(("s", "STRING", None, None))
    with pytest.raises(ExtractError, match=r"column 's'.*CAST it to BINARY"):
        BatchConverter(arrow_schema(description)).convert(batch(description, strings([b"\xff\xfe"])))


def test_nulls_come_from_the_null_bitmap_not_the_values():
    description = describe(("i", "INT", None, None), ("s", "STRING", None, None))
    out = BatchConverter(arrow_schema(description)).convert(batch(
        description,
        TColumn(i32Val=TI32Column(values=[0, 7, 0], nulls=b"\x05")),
        strings([b"", b"", b"x"], b"\x03"),
    ))
    assert out.to_pylist() == [{"i": None, "s": None}, {"i": 7, "s": None}, {"i": None, "s": "x"}]
    assert out.schema.field("i").type == pa.int32()  # NULLs do not turn ints into doubles


def test_complex_types_travel_as_json_text_and_say_so():
    schema = arrow_schema(describe(("a", "ARRAY", None, None), ("m", "MAP", None, None), ("n", "NULL", None, None)))
    assert [f.type for f in schema] == [pa.string()] * 3
    assert schema.field("a").metadata[b"encoding"] == b"json"


def test_decimal_without_precision_and_unknown_types_are_refused():
    with pytest.raises(ExtractError, match=r"column 'd'.*CAST the column to DECIMAL"):
        arrow_schema(describe(("d", "DECIMAL", None, None)))
    with pytest.raises(ExtractError, match=r"column 'x': unsupported type GEOMETRY"):
        arrow_schema(describe(("x", "GEOMETRY", None, None)))


def test_timestamp_unit_is_validated():
    with pytest.raises(ConfigError, match=r"^timestamp_unit: "):
        validate_timestamp_unit("minutes")
