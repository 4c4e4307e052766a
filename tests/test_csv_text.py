"""CSV holds every value's exact text: what the file says parses back to the value extracted.

The rows mirror the local server's sample table (tests/support/local_hiveserver.py SAMPLE_ROWS),
plus the extremes the server cannot send: NaN and infinities, the float that rounds wrongly when
its shortest 32-bit text is read through a double, decimals of every scale.
"""

import csv
import datetime as dt
from decimal import Decimal

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from airflow_provider_impala_transfer.core.extract.writer import FileFormat, RollingFileWriter

SAMPLE_SCHEMA = pa.schema([
    ("id", pa.int32()), ("c_tinyint", pa.int8()), ("c_smallint", pa.int16()), ("c_int", pa.int32()),
    ("c_bigint", pa.int64()), ("c_float", pa.float32()), ("c_double", pa.float64()),
    ("c_dec18", pa.decimal128(18, 2)), ("c_dec38", pa.decimal128(38, 10)), ("c_string", pa.string()),
    ("c_bool", pa.bool_()), ("c_date", pa.date32()), ("c_ts", pa.timestamp("us")),
])
SAMPLE = [
    (1, 1, 1, 1, 1, 1.5, 1.25, "1.10", "1.0000000001", "plain ascii", True, dt.date(2024, 1, 31),
     dt.datetime(2024, 1, 31, 12, 34, 56, 123456)),
    (2, -128, -32768, -2**31, -2**63, -3.25, -1.0e300, "-9999999999999999.99",
     "-9999999999999999999999999999.9999999999", "Grüße, 東京 🚀", False, dt.date(1900, 1, 1),
     dt.datetime(1900, 1, 1, 0, 0, 0, 1)),
    (3, 127, 32767, 2**31 - 1, 2**63 - 1, 3.4028234e38, 1.7976931348623157e308, "9999999999999999.99",
     "9999999999999999999999999999.9999999999", "", True, dt.date(9999, 12, 31),
     dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    (4, None, None, None, None, None, None, None, None, None, None, None, None),
    (5, 0, 0, 0, 0, 0.0, 0.1, "0.01", "0.0000000001", "long-" * 20000, False, dt.date(1970, 1, 1),
     dt.datetime(1970, 1, 1, 0, 0, 0, 500000)),
    (6, 7, 7, 7, 12345678901234, -0.0, 2.5e-308, "123.45", "12345.6789012345",
     "quote ' and \\ backslash and \n newline and ; semicolon, \"double\"", True, dt.date(2000, 2, 29),
     dt.datetime(2000, 2, 29, 23, 59, 59, 900000)),
    (7, 1, 1, 1, 1, float("nan"), float("-inf"), "-0.01", "-0.0000000001", "NULL", True, dt.date(1, 1, 1),
     dt.datetime(1, 1, 1)),
    (8, 1, 1, 1, 1, float("inf"), float("nan"), "0.00", "0E-10", "NaN", False, dt.date(1, 1, 1),
     dt.datetime(1, 1, 1)),
]


def sample_table(schema=SAMPLE_SCHEMA, rows=SAMPLE):
    columns = list(zip(*rows))
    arrays = []
    for field, values in zip(schema, columns):
        if pa.types.is_decimal(field.type):
            values = [None if v is None else Decimal(v) for v in values]
        arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_csv(directory, table, *, batch_rows=3):
    """Through the extract's own writer, several batches per file."""
    with RollingFileWriter(fsspec.filesystem("file"), str(directory), 0, table.schema, FileFormat("csv"),
                           max_rows_per_file=table.num_rows + 1) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write(batch)
    [entry] = writer.files
    return entry.path.removeprefix("file://")


def read_back(path, schema):
    """pyarrow, told the convention: only an unquoted empty field is NULL, and a one-column file's
    empty line is a NULL row, not a line to skip."""
    options = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False)
    parse = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
    return pacsv.read_csv(path, parse_options=parse, convert_options=options)


def same_values(got: pa.Array, want: pa.Array) -> bool:
    """Equal value for value; floats compared by their bits, so -0.0 and NaN count too."""
    if pa.types.is_floating(want.type):
        as_int = np.uint32 if want.type == pa.float32() else np.uint64
        g, w = got.to_numpy(zero_copy_only=False), want.to_numpy(zero_copy_only=False)
        return bool(np.array_equal(np.isnan(g), np.isnan(w))
                    and np.array_equal(g[~np.isnan(g)].view(as_int), w[~np.isnan(w)].view(as_int))
                    and got.is_null().equals(want.is_null()))
    return got.equals(want)


def rows_of(path):
    """The file's fields as written: Python's csv module keeps the text, quotes removed."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_every_sample_type_reads_back_to_the_exact_values(tmp_path):
    table = sample_table()
    back = read_back(write_csv(tmp_path, table), table.schema)
    assert back.schema.equals(table.schema)
    for name in table.column_names:
        assert same_values(back[name].combine_chunks(), table[name].combine_chunks()), name


def test_each_value_is_written_as_its_exact_text(tmp_path):
    lines = open(write_csv(tmp_path, sample_table()), encoding="utf-8").read().split("\n")
    assert lines[0] == ",".join(f'"{n}"' for n in SAMPLE_SCHEMA.names)
    assert lines[1] == ('"1","1","1","1","1","1.5","1.25","1.10","1.0000000001","plain ascii","true",'
                        '"2024-01-31","2024-01-31 12:34:56.123456"')
    assert lines[2] == ('"2","-128","-32768","-2147483648","-9223372036854775808","-3.25","-1e+300",'
                        '"-9999999999999999.99","-9999999999999999999999999999.9999999999","Grüße, 東京 🚀",'
                        '"false","1900-01-01","1900-01-01 00:00:00.000001"')
    assert lines[3].startswith('"3","127","32767","2147483647","9223372036854775807","3.4028234663852886e+38",'
                               '"1.7976931348623157e+308","9999999999999999.99",'
                               '"9999999999999999999999999999.9999999999","","true","9999-12-31",'
                               '"9999-12-31 23:59:59.999999"')
    assert lines[4] == '"4",,,,,,,,,,,,'  # NULL: the only unquoted field, and empty
    assert lines[5].startswith('"5","0","0","0","0","0","0.1","0.01","0.0000000001",')
    assert lines[5].endswith('"false","1970-01-01","1970-01-01 00:00:00.500000"')
    assert lines[6].startswith('"6","7","7","7","12345678901234","-0","2.5e-308","123.45","12345.6789012345",')
    assert lines[-3].startswith('"7","1","1","1","1","NaN","-Infinity","-0.01","-0.0000000001","NULL",')
    assert lines[-2].startswith('"8","1","1","1","1","Infinity","NaN","0.00","0.0000000000","NaN",')
    assert lines[-3].endswith('"0001-01-01","0001-01-01 00:00:00.000000"')


def test_text_parses_back_with_plain_python(tmp_path):
    """Decimal(), float(), int(), fromisoformat(): no reader-specific options needed for numbers."""
    table = sample_table()
    parse = {"c_float": float, "c_double": float, "c_dec18": Decimal, "c_dec38": Decimal,
             "c_bool": {"true": True, "false": False}.__getitem__, "c_date": dt.date.fromisoformat,
             "c_ts": dt.datetime.fromisoformat, "c_string": str}
    header, *rows = rows_of(write_csv(tmp_path, table))
    for row, want in zip(rows, table.to_pylist()):
        for name, text in zip(header, row):
            if want[name] is None:
                assert text == "", name
            elif isinstance(want[name], float):  # a FLOAT's text is the double it widens to exactly
                assert same_values(pa.array([float(text)]), pa.array([want[name]])), name
            else:
                got = parse.get(name, int)(text)
                assert got == want[name] and type(got) is type(want[name]), name


@pytest.mark.parametrize("precision,scale,values", [
    (38, 10, ["0.0000000001", "-0.0000000001", "-12.34", "0", "1E+27", "-9999999999999999999999999999.9999999999"]),
    (38, 38, ["0.00000000000000000000000000000000000001", "-0.99999999999999999999999999999999999999", "0"]),
    (38, 0, ["99999999999999999999999999999999999999", "-1", "0", "100"]),
    (10, 10, ["0.0000000001", "-0.9999999999"]),
    (18, 2, ["1.1", "-0.5", "0.01"]),
    (9, 7, ["0.0000001", "-0.0000010", "12.5"]),
])
def test_decimals_are_written_in_plain_notation_at_the_column_scale(tmp_path, precision, scale, values):
    schema = pa.schema([("d", pa.decimal128(precision, scale))])
    table = sample_table(schema, [(v,) for v in values])
    [_, *rows] = rows_of(write_csv(tmp_path, table))
    for [text], value in zip(rows, values):
        assert text == f"{Decimal(value):.{scale}f}"  # plain, every digit of the scale, as Impala prints it
        assert Decimal(text) == Decimal(value)


def test_float_text_reads_back_bit_for_bit_through_a_double_and_as_32_bits(tmp_path):
    """FLOAT 0x15ae43fd's shortest 32-bit text 7.038531e-26 read through a double (as numpy does)
    rounds to the neighbouring float; the widened text does not. Plus random bit patterns."""
    rng = np.random.default_rng(7)
    f32 = np.concatenate([np.array([0x15AE43FD, 0x00000001, 0x7F7FFFFF, 0x80000000, 0x3DCCCCCD], np.uint32),
                          rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)]).view(np.float32)
    f64 = rng.integers(0, 2**64, f32.size, dtype=np.uint64).view(np.float64)
    table = pa.table({"f": pa.array(f32), "d": pa.array(f64)})
    path = write_csv(tmp_path, table, batch_rows=4096)
    back = read_back(path, table.schema)
    assert same_values(back["f"].combine_chunks(), table["f"].combine_chunks())
    assert same_values(back["d"].combine_chunks(), table["d"].combine_chunks())
    _, *rows = rows_of(path)
    assert rows[0][0] == "7.038530691851209e-26"
    through_python = pa.table({"f": pa.array(np.array([float(r[0]) for r in rows]).astype(np.float32)),
                               "d": pa.array([float(r[1]) for r in rows])})
    for name in ("f", "d"):
        assert same_values(through_python[name].combine_chunks(), table[name].combine_chunks()), name


@pytest.mark.parametrize("unit,fraction", [("s", ""), ("ms", ".001"), ("us", ".000001"), ("ns", ".000000001")])
def test_timestamps_keep_every_sub_second_digit_of_their_unit(tmp_path, unit, fraction):
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    seconds = int(dt.datetime(2024, 1, 31, 12, 34, 56, tzinfo=dt.timezone.utc).timestamp())
    table = pa.table({"ts": pa.array([seconds * per_second + (unit != "s")], pa.timestamp(unit))})
    path = write_csv(tmp_path, table)
    assert rows_of(path)[1] == ["2024-01-31 12:34:56" + fraction]
    assert read_back(path, table.schema).equals(table)


def test_null_empty_string_and_null_like_text_stay_apart(tmp_path):
    table = pa.table({"s": pa.array([None, "", "NULL", "null", "NaN", "N/A", '""'])})
    path = write_csv(tmp_path, table)
    assert open(path).read().split("\n")[1:-1] == ["", '""', '"NULL"', '"null"', '"NaN"', '"N/A"', '""""""']
    assert read_back(path, table.schema)["s"].to_pylist() == [None, "", "NULL", "null", "NaN", "N/A", '""']
