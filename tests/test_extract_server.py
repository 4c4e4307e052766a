"""Extracts against a real HiveServer2-protocol server (Spark Thrift Server on 127.0.0.1)."""

from __future__ import annotations

import gzip
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError, SourceError
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, extract_chunk, plan_chunks
from airflow_provider_impala_transfer.core.reconcile import count_rows
from tests.conftest import EVEN_ROWS, EVENTS_ROWS, read_files, source_rows

pytestmark = pytest.mark.server

EXPECTED_TYPES = {
    "id": pa.int32(), "c_tinyint": pa.int8(), "c_smallint": pa.int16(), "c_int": pa.int32(),
    "c_bigint": pa.int64(), "c_float": pa.float32(), "c_double": pa.float64(),
    "c_dec18": pa.decimal128(18, 2), "c_dec38": pa.decimal128(38, 10), "c_string": pa.string(),
    "c_bool": pa.bool_(), "c_date": pa.date32(), "c_ts": pa.timestamp("us"),
}


def run_extract(connector, out: Path, **spec_args) -> Manifest:
    spec = ExtractSpec.build(**spec_args)
    chunks = plan_chunks(connector, spec)
    return Manifest.merge(extract_chunk(connector, spec, c, str(out)) for c in chunks)


def _as_float32(value):
    import numpy as np

    return None if value is None else float(np.float32(value))


def paths(manifest) -> list[str]:
    return [f.path for f in manifest.files]


def test_every_type_round_trips_exactly(hiveserver, connector, tmp_path):
    manifest = run_extract(connector, tmp_path, table="default.sample_types")
    table = read_files(paths(manifest)).sort_by("id")
    assert {f.name: f.type for f in table.schema} == EXPECTED_TYPES
    expected = source_rows(hiveserver, "SELECT * FROM default.sample_types ORDER BY id")
    # FLOAT is 32-bit; the server widens it through decimal text (3.4028235E38), so compare the
    # reference at float32 precision: the file holds the exact stored float.
    float_col = table.schema.names.index("c_float")
    expected = [row[:float_col] + (_as_float32(row[float_col]),) + row[float_col + 1:] for row in expected]
    got = [tuple(row.values()) for row in table.to_pylist()]
    assert got == expected
    # The checks that pandas-based tools fail: NULL ints stay ints, decimals keep every digit,
    # timestamps keep microseconds, strings keep unicode and length.
    by_id = {row["id"]: row for row in table.to_pylist()}
    assert all(v is None for k, v in by_id[4].items() if k != "id")
    assert str(by_id[2]["c_dec38"]) == "-9999999999999999999999999999.9999999999"
    assert by_id[2]["c_ts"].microsecond == 1 and by_id[1]["c_ts"].microsecond == 123456
    assert by_id[2]["c_string"] == "Grüße, 東京 🚀" and len(by_id[5]["c_string"]) == 100_000
    assert by_id[3]["c_bigint"] == 2**63 - 1


def test_csv_output_reads_back_to_the_same_values(hiveserver, connector, tmp_path):
    parquet = read_files(paths(run_extract(connector, tmp_path / "p", table="default.sample_types"))).sort_by("id")
    manifest = run_extract(connector, tmp_path / "c", table="default.sample_types", output_format="csv",
                           compression="gzip")
    [entry] = manifest.files
    assert entry.path.endswith(".csv.gz")
    csv = pacsv.read_csv(
        entry.path.removeprefix("file://"),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=parquet.schema, strings_can_be_null=True,
                                             quoted_strings_can_be_null=False),
    ).sort_by("id")
    for name in parquet.column_names:
        assert csv[name].to_pylist() == parquet[name].to_pylist(), name
    # The text itself, as the server prints it: decimals plain at their scale, every timestamp digit.
    text = gzip.decompress(Path(entry.path.removeprefix("file://")).read_bytes()).decode()
    lines = {line.split(",", 1)[0]: line for line in text.split("\n") if line[:1] == '"'}
    assert lines['"1"'] == ('"1","1","1","1","1","1.5","1.25","1.10","1.0000000001","plain ascii","true",'
                            '"2024-01-31","2024-01-31 12:34:56.123456"')
    assert '"-9999999999999999.99","-9999999999999999999999999999.9999999999"' in lines['"2"']
    assert lines['"4"'] == '"4",,,,,,,,,,,,'
    assert lines['"5"'].startswith('"5","0","0","0","0","0","0.1","0.01","0.0000000001",')
    assert lines['"5"'].endswith('"false","1970-01-01","1970-01-01 00:00:00.500000"')


@pytest.mark.parametrize("split_by,chunk_size", [(None, 3000), ("id", 3000), ("event_ts", 4000),
                                                 ("event_date", 5000), ("amount_decimal", 6000),
                                                 ("amount_double", 7000), ("maybe_null", 5000)])
def test_every_row_lands_in_exactly_one_file(connector, tmp_path, split_by, chunk_size):
    manifest = run_extract(connector, tmp_path, table="default.events", split_by=split_by, chunk_size=chunk_size)
    ids = read_files(paths(manifest))["id"].to_pylist()
    assert len(ids) == manifest.rows == EVENTS_ROWS == count_rows(connector, "SELECT * FROM default.events")
    assert sorted(ids) == list(range(EVENTS_ROWS))
    assert all(0 < f.rows <= chunk_size for f in manifest.files)
    if split_by == "maybe_null":
        null_files = [f for f in manifest.files if f.rows == EVENTS_ROWS // 7 + 1]
        assert null_files, "NULL split keys get their own chunk"


def test_an_even_total_gives_no_empty_file(connector, tmp_path):
    split = run_extract(connector, tmp_path / "split", table="default.even", split_by="id", chunk_size=250)
    assert [f.rows for f in split.files] == [250] * 4
    unsplit = run_extract(connector, tmp_path / "unsplit", table="default.even", chunk_size=100)
    assert [f.rows for f in unsplit.files] == [100] * (EVEN_ROWS // 100)
    assert len(os.listdir(tmp_path / "unsplit")) == EVEN_ROWS // 100


def test_empty_result_gives_one_schema_file_or_none(connector, tmp_path):
    for split_by in (None, "id"):
        manifest = run_extract(connector, tmp_path / str(split_by), table="default.empty_table", split_by=split_by)
        [entry] = manifest.files
        table = read_files([entry.path])
        assert entry.rows == 0 and table.num_rows == 0
        assert table.schema.names == ["id", "name"] and table.schema.field("id").type == pa.int32()
    none = run_extract(connector, tmp_path / "none", table="default.empty_table", empty_result="none")
    assert none.files == [] and none.rows == 0


def test_a_retried_chunk_gives_byte_identical_files(connector, tmp_path):
    spec = ExtractSpec.build(table="default.events", split_by="id", chunk_size=5000, order_by="id")
    chunk = plan_chunks(connector, spec)[2]
    first = extract_chunk(connector, spec, chunk, str(tmp_path))
    before = {p: Path(p.removeprefix("file://")).read_bytes() for p in paths(first)}
    second = extract_chunk(connector, spec, chunk, str(tmp_path))
    assert paths(first) == paths(second)
    assert [f.sha256 for f in first.files] == [f.sha256 for f in second.files]
    assert {p: Path(p.removeprefix("file://")).read_bytes() for p in paths(second)} == before
    assert len(os.listdir(tmp_path)) == len(first.files)


def test_parallel_chunks_use_their_own_connections(connector, tmp_path):
    """The original tool shared one impyla connection between threads and hung with two workers."""
    spec = ExtractSpec.build(table="default.events", split_by="id", num_chunks=4, chunk_size=EVENTS_ROWS)
    chunks = plan_chunks(connector, spec)
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def work(chunk):
        try:
            results[chunk.index] = extract_chunk(connector, spec, chunk, str(tmp_path))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors
    assert sum(m.rows for m in results.values()) == EVENTS_ROWS


def test_duplicate_column_names_are_refused_with_a_fix(connector, tmp_path):
    with pytest.raises(ExtractError, match=r"column 'a' appears twice.*alias"):
        run_extract(connector, tmp_path, sql="SELECT 1 AS a, 2 AS a")
    assert os.listdir(tmp_path) == []


def test_sql_syntax_error_surfaces_the_server_message_and_writes_nothing(connector, tmp_path):
    with pytest.raises(SourceError, match="PARSE_SYNTAX_ERROR"):
        run_extract(connector, tmp_path / "out", sql="SELECT * FORM default.events")
    assert not any((tmp_path / "out").rglob("*.parquet"))


def test_more_chunks_than_airflow_maps_are_merged_into_larger_ones_and_the_log_says_so(connector, caplog):
    spec = ExtractSpec.build(table="default.events", split_by="id", chunk_size=100, max_chunks=7)
    with caplog.at_level("WARNING"):
        chunks = plan_chunks(connector, spec)
    assert len(chunks) == 7
    assert "200 chunks of 100 rows would be more than the 7 mapped tasks allowed ([core] max_map_length): " \
           "merged into 7 larger chunks" in caplog.text
    with pytest.raises(ConfigError, match="max_chunks: "):
        ExtractSpec.build(table="default.events", max_chunks=0)


def test_split_by_must_be_a_column_of_the_result(connector):
    with pytest.raises(ConfigError, match=r"^split_by: 'nope' is not a column .*columns: id, small_int"):
        plan_chunks(connector, ExtractSpec.build(table="default.events", split_by="nope"))


@pytest.mark.parametrize("sql,keyword", [
    ("DROP TABLE default.events", "DROP"),
    ("WITH x AS (SELECT * FROM default.events) INSERT INTO default.events SELECT * FROM x", "INSERT"),
])
def test_non_select_is_refused_before_connecting(sql, keyword):
    with pytest.raises(ConfigError, match=rf"^sql: holds '{keyword}', which writes"):
        ExtractSpec.build(sql=sql)


def test_allow_non_select_extracts_a_result_that_cannot_be_a_derived_table(connector, tmp_path):
    """Why the switch exists: SHOW/DESCRIBE output is a result set, but not a query to wrap."""
    with pytest.raises(ConfigError, match=r"^sql: the statement starts with 'SHOW'"):
        run_extract(connector, tmp_path, sql="SHOW TABLES IN default")
    manifest = run_extract(connector, tmp_path, sql="SHOW TABLES IN default", allow_non_select=True)
    assert "sample_types" in read_files(paths(manifest))["tableName"].to_pylist()


def test_unreachable_host_fails_fast_naming_host_and_port(closed_port):
    connector = SourceConnector(host="127.0.0.1", port=closed_port, connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(SourceError, match=rf"cannot reach Impala at 127\.0\.0\.1:{closed_port}"):
        connector.connect()
    assert time.monotonic() - started < 3


def test_a_server_that_never_answers_is_bounded_by_connect_timeout(silent_server):
    connector = SourceConnector(host="127.0.0.1", port=silent_server, connect_timeout=2,
                                options={"auth_mechanism": "PLAIN", "user": "u", "password": "p"})
    started = time.monotonic()
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{silent_server} .*did not answer within 2s"):
        connection = connector.connect()
        connector.cursor(connection)
    assert time.monotonic() - started < 15


def test_wrong_auth_mechanism_says_what_to_set(hiveserver):
    connector = SourceConnector(host="127.0.0.1", port=hiveserver.port, connect_timeout=5,
                                options={"auth_mechanism": "NOSASL"})
    with pytest.raises(SourceError, match="auth_mechanism=NOSASL.*set the connection extra auth_mechanism"):
        connector.cursor(connector.connect())
    with pytest.raises(ConfigError, match=r"^auth_mechanism: 'KERBEROS' is not supported"):
        SourceConnector(host="h", options={"auth_mechanism": "KERBEROS"})


def test_unwritable_output_location_names_output_path(connector, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    spec = ExtractSpec.build(table="default.even")
    with pytest.raises(ConfigError, match=r"^output_path: cannot create"):
        extract_chunk(connector, spec, plan_chunks(connector, spec)[0], str(blocker / "out"))


def test_the_password_never_shows_in_the_connector_repr():
    connector = SourceConnector(host="h", options={"password": "s3cr3t", "user": "u"})
    assert "s3cr3t" not in repr(connector) and "***" in repr(connector)
