"""The target table: SQL text (pure) and publishing against the real local HiveServer2 server."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.extract.arrow_types import arrow_schema
from airflow_provider_impala_transfer.core.errors import ConfigError, TargetTableError
from airflow_provider_impala_transfer.core.table.ddl import (
    DIALECTS,
    TableTarget,
    add_partition_sql,
    column_type_sql,
    count_sql,
    create_table_sql,
    refresh_sql,
    set_location_sql,
)
from airflow_provider_impala_transfer.core.table.describe import (
    parse_describe_formatted,
    partition_location_from_show,
    same_location,
)
from airflow_provider_impala_transfer.core.table.publish import publish_table

server = pytest.mark.server

# --------------------------------------------------------------------------------------------
# Pure SQL text

SMALL = pa.schema([pa.field("id", pa.int64()), pa.field("amount", pa.decimal128(18, 4))])


def target(**kwargs) -> TableTarget:
    args = {"table": "db.events", "location": "hdfs://nn:8020/warehouse/events"} | kwargs
    return TableTarget(**args)


def test_defaults():
    t = target()
    assert DIALECTS == ("impala", "hive")
    assert (t.dialect, t.file_format, t.partition) == ("impala", "parquet", None)
    assert t.data_location == "hdfs://nn:8020/warehouse/events"


def test_create_table_sql_plain():
    assert create_table_sql(target(), SMALL) == (
        "CREATE EXTERNAL TABLE IF NOT EXISTS `db`.`events` (\n"
        "  `id` BIGINT,\n"
        "  `amount` DECIMAL(18,4)\n"
        ")\n"
        "STORED AS PARQUET\n"
        "LOCATION 'hdfs://nn:8020/warehouse/events'"
    )


def test_create_table_sql_partitioned_uses_the_root_location():
    t = target(location="hdfs://nn:8020/warehouse/events/", partition={"ds": "2026-01-01", "region": "eu-1"})
    assert create_table_sql(t, SMALL) == (
        "CREATE EXTERNAL TABLE IF NOT EXISTS `db`.`events` (\n"
        "  `id` BIGINT,\n"
        "  `amount` DECIMAL(18,4)\n"
        ")\n"
        "PARTITIONED BY (`ds` STRING, `region` STRING)\n"
        "STORED AS PARQUET\n"
        "LOCATION 'hdfs://nn:8020/warehouse/events'"
    )
    assert t.data_location == "hdfs://nn:8020/warehouse/events/ds=2026-01-01/region=eu-1"
    assert add_partition_sql(t) == (
        "ALTER TABLE `db`.`events` ADD IF NOT EXISTS PARTITION (`ds`='2026-01-01', `region`='eu-1') "
        "LOCATION 'hdfs://nn:8020/warehouse/events/ds=2026-01-01/region=eu-1'"
    )
    assert set_location_sql(t) == (
        "ALTER TABLE `db`.`events` PARTITION (`ds`='2026-01-01', `region`='eu-1') "
        "SET LOCATION 'hdfs://nn:8020/warehouse/events/ds=2026-01-01/region=eu-1'"
    )
    assert count_sql(t) == "SELECT COUNT(*) FROM `db`.`events` WHERE `ds` = '2026-01-01' AND `region` = 'eu-1'"


def test_refresh_and_count_per_dialect():
    plain = target(table="events")
    assert refresh_sql(plain) == ["REFRESH `events`"]
    assert refresh_sql(target(partition={"ds": "d1"})) == ["REFRESH `db`.`events` PARTITION (`ds`='d1')"]
    assert refresh_sql(target(dialect="hive")) == ["REFRESH TABLE `db`.`events`"]
    assert refresh_sql(target(dialect="HIVE", partition={"ds": "d1"})) == ["REFRESH TABLE `db`.`events`"]
    assert count_sql(plain) == "SELECT COUNT(*) FROM `events`"
    assert set_location_sql(plain) == "ALTER TABLE `events` SET LOCATION 'hdfs://nn:8020/warehouse/events'"
    with pytest.raises(ConfigError, match="^partition: the target has no partition"):
        add_partition_sql(plain)


@pytest.mark.parametrize("name", ["a;drop", "a b", "a`b", "db.a.b", "", "  ", "1abc", "db.", "a'b", None])
def test_bad_table_names_are_refused(name):
    with pytest.raises(ConfigError) as info:
        target(table=name)
    assert info.value.field == "target_table"
    assert str(info.value).startswith("target_table: ")


@pytest.mark.parametrize("location", [
    "cluster/x",  # no scheme
    "/warehouse/x",
    "hdfs:/warehouse/x",
    "hdfs://nn:8020/warehouse/../x",
    "hdfs://nn:8020/warehouse/./x",
    "hdfs://nn:8020/warehouse//x",
    "file:///tmp/it's",
    'file:///tmp/a"b',
    "file:///tmp/a`b",
    "file:///tmp/a\\b",
    "file:///tmp/a\nb",
    "file:///tmp/a\x00b",
    "file:///tmp/a?b=1",
    "file:///tmp/a#b",
    "hdfs://nn:8020",
    "hdfs://nn:8020/",
    "",
    None,
])
def test_bad_locations_are_refused(location):
    with pytest.raises(ConfigError) as info:
        target(location=location)
    assert info.value.field == "target_path"


def test_locations_are_normalized():
    assert target(location=" file:///tmp/x/ ").location == "file:///tmp/x"
    assert target(location="s3a://bucket/a/b").location == "s3a://bucket/a/b"
    assert target(location="abfs://c@acct.dfs.core.windows.net/x").location == "abfs://c@acct.dfs.core.windows.net/x"


@pytest.mark.parametrize("partition", [
    {"ds": "it's"}, {"ds": "a\\b"}, {"ds": "a/b"}, {"ds": "a\nb"}, {"ds": "a\tb"}, {"ds": ""},
    {"ds": "10:00"}, {"ds": "a=b"}, {"ds": "50%"}, {"ds": None}, {"ds": True}, {"bad col": "x"},
    {"a;b": "x"}, {"ds": "x", "DS": "y"}, ["ds", "x"],
])
def test_bad_partitions_are_refused(partition):
    with pytest.raises(ConfigError) as info:
        target(partition=partition)
    assert info.value.field == "partition"


def test_partition_values_allowed_and_normalized():
    assert target(partition={}).partition is None
    assert target(partition={"year": 2026, "ds": "2026-01-01 x.y+z_w"}).partition == {
        "year": "2026", "ds": "2026-01-01 x.y+z_w"}


def test_partition_column_must_not_be_a_data_column():
    with pytest.raises(ConfigError, match="partition column 'ID' is also a column in the files") as info:
        create_table_sql(target(partition={"ID": "1"}), SMALL)
    assert info.value.field == "partition"


def test_csv_is_refused():
    with pytest.raises(ConfigError) as info:
        target(file_format="csv")
    assert str(info.value) == ("output_format: target_table needs parquet files "
                               "(set output_format=parquet or drop target_table)")


def test_unknown_dialect_is_refused():
    with pytest.raises(ConfigError, match="^target_dialect: 'spark' is not supported"):
        target(dialect="spark")


def _description(type_name: str, precision=None, scale=None):
    return (f"c_{type_name.lower()}", type_name, None, None, precision, scale, True)


# Every type the extractor produces, as arrow_types.arrow_schema builds it (metadata included).
EXTRACTOR_TYPES = {
    "BOOLEAN": "BOOLEAN", "TINYINT": "TINYINT", "SMALLINT": "SMALLINT", "INT": "INT", "INTEGER": "INT",
    "BIGINT": "BIGINT", "FLOAT": "FLOAT", "REAL": "DOUBLE", "DOUBLE": "DOUBLE", "DATE": "DATE",
    "BINARY": "BINARY", "TIMESTAMP": "TIMESTAMP", "STRING": "STRING", "VARCHAR": "STRING",
    "CHAR": "STRING", "NULL": "STRING", "ARRAY": "STRING", "MAP": "STRING", "STRUCT": "STRING",
    "INTERVAL": "STRING",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_type_mapping_for_every_extractor_type(dialect):
    descriptions = [_description(t) for t in EXTRACTOR_TYPES]
    descriptions += [("c_dec18", "DECIMAL", None, None, 18, 4, True),
                     ("c_dec38", "DECIMAL", None, None, 38, 10, True)]
    schema = arrow_schema(descriptions)
    assert schema.field("c_real").metadata[b"impala_type"] == b"REAL"  # what the extractor records
    got = {f.name: column_type_sql(f, dialect) for f in schema}
    expected = {f"c_{k.lower()}": v for k, v in EXTRACTOR_TYPES.items()}
    expected |= {"c_dec18": "DECIMAL(18,4)", "c_dec38": "DECIMAL(38,10)"}
    assert got == expected
    sql = create_table_sql(target(dialect=dialect), schema)
    assert "`c_array` STRING" in sql and "`c_dec38` DECIMAL(38,10)" in sql


def test_type_mapping_from_plain_arrow_and_timestamp_units():
    for arrow_type, sql in [(pa.int8(), "TINYINT"), (pa.int16(), "SMALLINT"), (pa.int32(), "INT"),
                            (pa.int64(), "BIGINT"), (pa.float32(), "FLOAT"), (pa.float64(), "DOUBLE"),
                            (pa.decimal128(9, 0), "DECIMAL(9,0)"), (pa.string(), "STRING"),
                            (pa.large_string(), "STRING"), (pa.binary(), "BINARY"), (pa.bool_(), "BOOLEAN"),
                            (pa.date32(), "DATE"), (pa.timestamp("us"), "TIMESTAMP"),
                            (pa.timestamp("ms"), "TIMESTAMP"), (pa.timestamp("s"), "TIMESTAMP")]:
        for dialect in DIALECTS:
            assert column_type_sql(pa.field("x", arrow_type), dialect) == sql
    assert column_type_sql(pa.field("x", pa.timestamp("ns")), "impala") == "TIMESTAMP"
    with pytest.raises(ConfigError, match="^timestamp_unit: column 'x' holds nanosecond") as info:
        column_type_sql(pa.field("x", pa.timestamp("ns")), "hive")
    assert "timestamp_unit='us'" in str(info.value)


def test_sized_source_types_are_kept():
    field = pa.field("name", pa.string(), metadata={"impala_type": "varchar( 10 )"})
    assert column_type_sql(field) == "VARCHAR(10)"
    assert column_type_sql(pa.field("c", pa.string(), metadata={"impala_type": "CHAR(3)"}), "hive") == "CHAR(3)"
    # A source type that does not describe the Arrow data is ignored, not trusted.
    assert column_type_sql(pa.field("n", pa.int64(), metadata={"impala_type": "VARCHAR(10)"})) == "BIGINT"
    assert column_type_sql(pa.field("n", pa.decimal128(10, 2), metadata={"impala_type": "DECIMAL"})) == "DECIMAL(10,2)"


@pytest.mark.parametrize("arrow_type", [pa.uint32(), pa.float16(), pa.time64("us"), pa.list_(pa.int32()),
                                        pa.timestamp("us", tz="UTC"), pa.struct([("a", pa.int8())]),
                                        pa.duration("s"), pa.decimal256(40, 2)])
def test_unsupported_arrow_types_name_the_column(arrow_type):
    with pytest.raises(ConfigError, match="^target_table: column 'weird' has Arrow type"):
        column_type_sql(pa.field("weird", arrow_type))


def test_column_names_must_be_identifiers_and_unique_ignoring_case():
    with pytest.raises(ConfigError, match="column 'count\\(\\*\\)' is not a valid table column name"):
        create_table_sql(target(), pa.schema([pa.field("count(*)", pa.int64())]))
    with pytest.raises(ConfigError, match="columns 'Id' and 'id' differ only in case"):
        create_table_sql(target(), pa.schema([pa.field("Id", pa.int64()), pa.field("id", pa.int64())]))


# Impala's DESCRIBE FORMATTED of a partitioned table (padded names, blank separator rows).
IMPALA_DESCRIBE = [
    ("# col_name            ", "data_type           ", "comment             "),
    ("", None, None),
    ("id", "bigint", None),
    ("amount", "decimal(18,4)", None),
    ("", None, None),
    ("# Partition Information", None, None),
    ("# col_name            ", "data_type           ", "comment             "),
    ("", None, None),
    ("ds", "string", None),
    ("", None, None),
    ("# Detailed Table Information", None, None),
    ("Database:           ", "db                  ", None),
    ("OwnerType:          ", "USER                ", None),
    ("Location:           ", "hdfs://nn:8020/warehouse/events", None),
    ("Table Type:         ", "EXTERNAL_TABLE      ", None),
    ("Table Parameters:", None, None),
    ("", "EXTERNAL            ", "TRUE                "),
    ("", None, None),
    ("# Storage Information", None, None),
    ("SerDe Library:      ", "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", None),
    ("InputFormat:        ", "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat", None),
]


def test_parse_impala_describe_formatted():
    desc = parse_describe_formatted(IMPALA_DESCRIBE)
    assert desc.columns == [("id", "bigint"), ("amount", "decimal(18,4)")]
    assert desc.partition_columns == [("ds", "string")]
    assert desc.location == "hdfs://nn:8020/warehouse/events"
    assert "MapredParquetInputFormat" in desc.input_format


# Spark's DESCRIBE FORMATTED t PARTITION (...): partition details first, the table's storage after.
SPARK_DESCRIBE_PARTITION = [
    ("id", "bigint", None), ("ds", "string", None),
    ("# Partition Information", "", ""), ("# col_name", "data_type", "comment"), ("ds", "string", None),
    ("", "", ""),
    ("# Detailed Partition Information", "", ""), ("Database", "default", ""), ("Table", "t", ""),
    ("Partition Values", "[ds=d1]", ""), ("Location", "file:/w/t/ds=d1", ""),
    ("InputFormat", "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat", ""),
    ("", "", ""),
    ("# Storage Information", "", ""), ("Location", "file:/w/t", ""),
]


def test_parse_spark_describe_formatted_partition():
    desc = parse_describe_formatted(SPARK_DESCRIBE_PARTITION)
    assert desc.columns == [("id", "bigint")]
    assert desc.partition_columns == [("ds", "string")]
    assert desc.location == "file:/w/t/ds=d1"


def test_parse_impala_show_partitions():
    description = [(n, "STRING") for n in
                   ("ds", "#Rows", "#Files", "Size", "Bytes Cached", "Cache Replication", "Format",
                    "Incremental stats", "Location", "EC Policy")]
    rows = [("2026-01-01", -1, 1, "1.2KB", "NOT CACHED", "NOT CACHED", "PARQUET", "false",
             "hdfs://nn:8020/w/ds=2026-01-01", "NONE"),
            ("2026-01-02", -1, 1, "1.2KB", "NOT CACHED", "NOT CACHED", "PARQUET", "false",
             "hdfs://nn:8020/elsewhere", "NONE"),
            ("Total", -1, 2, "2.4KB", "0B", "", "", "", "", "")]
    t = target(location="hdfs://nn:8020/w", partition={"ds": "2026-01-02"})
    assert partition_location_from_show(description, rows, t) == "hdfs://nn:8020/elsewhere"
    assert partition_location_from_show(description, rows, target(partition={"ds": "x"})) is None


def test_same_location():
    assert same_location("file:/tmp/x", "file:///tmp/x/")
    assert same_location("hdfs://nn:8020/w/x", "hdfs://nn/w/x")
    assert same_location("hdfs://NN:8020/w/a%20b", "hdfs://nn:8020/w/a b")
    assert not same_location("hdfs://nn:8020/w/x", "hdfs://nn:9000/w/x")
    assert not same_location("hdfs://nn/w/x", "hdfs://other/w/x")
    assert not same_location("hdfs://nn/w/x", "s3a://nn/w/x")
    assert not same_location("file:/tmp/x", "file:/tmp/x2")
    assert not same_location(None, "file:/tmp/x")


def test_the_module_imports_without_airflow():
    code = ("import sys; import airflow_provider_impala_transfer.core.table.ddl; "
            "assert not [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')], 'airflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------------------------
# Against the local HiveServer2 (Spark Thrift Server), dialect "hive"

FULL = pa.schema([
    pa.field("id", pa.int64(), metadata={"impala_type": "BIGINT"}),
    pa.field("amount", pa.decimal128(18, 4), metadata={"impala_type": "DECIMAL"}),
    pa.field("name", pa.string(), metadata={"impala_type": "STRING"}),
    pa.field("event_ts", pa.timestamp("us"), metadata={"impala_type": "TIMESTAMP"}),
    pa.field("event_date", pa.date32(), metadata={"impala_type": "DATE"}),
    pa.field("flag", pa.bool_(), metadata={"impala_type": "BOOLEAN"}),
    pa.field("ratio", pa.float64(), metadata={"impala_type": "DOUBLE"}),
    pa.field("maybe", pa.int32(), metadata={"impala_type": "INT"}),
])


def rows_for(start: int, n: int) -> list[tuple]:
    out = []
    for i in range(start, start + n):
        out.append((
            i,
            Decimal("-99999999999999.9999") if i % 5 == 1 else Decimal(i) / 10000 + Decimal("12345678901234"),
            "Grüße, 東京 🚀" if i % 3 == 0 else f"name-{i}",
            dt.datetime(1900, 1, 1, 0, 0, 0, 1) if i % 4 == 0 else dt.datetime(2026, 1, 2, 3, 4, 5, i % 1_000_000),
            dt.date(9999, 12, 31) if i % 6 == 0 else dt.date(2026, 1, 1) + dt.timedelta(days=i % 400),
            i % 2 == 0,
            i / 7,
            None if i % 7 == 0 else i * 3,
        ))
    return out


def write_files(directory: Path, rows: list[tuple], files: int = 2, schema: pa.Schema = FULL) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows)) if rows else [[] for _ in schema]
    table = pa.table({f.name: pa.array(col, type=f.type) for f, col in zip(schema, columns)}, schema=schema)
    step = max(1, -(-len(rows) // files))
    for part, offset in enumerate(range(0, max(len(rows), 1), step)):
        pq.write_table(table.slice(offset, step), directory / f"part-{part}.parquet")


def query(hiveserver, sql: str) -> list[tuple]:
    return hiveserver.query(sql)


@server
def test_publish_a_partition_reads_back_exactly(hiveserver, connector, tmp_path):
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_part")
    rows = rows_for(1, 50)
    write_files(tmp_path / "root" / "ds=2026-01-01", rows)
    t = TableTarget("default.tt_part", f"file://{tmp_path}/root", {"ds": "2026-01-01"}, dialect="hive")

    result = publish_table(connector, t, FULL, 50)

    assert result.rows == 50 and result.table == "default.tt_part"
    assert result.partition == {"ds": "2026-01-01"}
    assert result.location == f"file://{tmp_path}/root/ds=2026-01-01"
    kinds = [s.split("(")[0].split(" `")[0] for s in result.statements]
    assert kinds == ["CREATE EXTERNAL TABLE IF NOT EXISTS", "DESCRIBE FORMATTED", "ALTER TABLE",
                     "DESCRIBE FORMATTED", "REFRESH TABLE", "SELECT COUNT"]
    got = query(hiveserver, "SELECT * FROM default.tt_part ORDER BY id")
    assert got == [row + ("2026-01-01",) for row in rows]
    # Spells out what the equality above covers.
    by_id = {r[0]: r for r in got}
    assert by_id[1][1] == Decimal("-99999999999999.9999")
    assert by_id[2][1] == Decimal("12345678901234.0002")
    assert by_id[4][3] == dt.datetime(1900, 1, 1, 0, 0, 0, 1)
    assert by_id[5][3].microsecond == 5
    assert by_id[6][4] == dt.date(9999, 12, 31)
    assert by_id[7][7] is None and by_id[8][7] == 24
    assert by_id[3][2] == "Grüße, 東京 🚀"
    types = {r[0]: r[1] for r in query(hiveserver, "DESCRIBE default.tt_part")[:9]}
    assert types == {"id": "bigint", "amount": "decimal(18,4)", "name": "string", "event_ts": "timestamp",
                     "event_date": "date", "flag": "boolean", "ratio": "double", "maybe": "int", "ds": "string"}


@server
def test_publish_a_partition_on_the_target_hdfs_cluster(hiveserver, connector, local_hadoop, tmp_path):
    """Files on hdfs://cluster2 (a real HDFS nameservice the server resolves), as after a transfer."""
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_hdfs")
    write_files(tmp_path / "files", rows_for(1, 40))
    for part in sorted((tmp_path / "files").iterdir()):  # WebHDFS: no JVM start
        local_hadoop.target.put_bytes(f"/tt_hdfs/root/ds=d1/{part.name}", part.read_bytes())
    t = TableTarget("default.tt_hdfs", "hdfs://cluster2/tt_hdfs/root", {"ds": "d1"}, dialect="hive")

    result = publish_table(connector, t, FULL, 40)
    again = publish_table(connector, t, FULL, 40)

    assert result.rows == 40 and result.location == "hdfs://cluster2/tt_hdfs/root/ds=d1"
    assert not any("SET LOCATION" in s for s in again.statements)  # the server's answer matched
    assert query(hiveserver, "SELECT COUNT(*), MIN(id), MAX(id) FROM default.tt_hdfs") == [(40, 1, 40)]


@server
def test_republish_is_idempotent_and_a_second_partition_adds_rows(hiveserver, connector, tmp_path):
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_parts")
    root = f"file://{tmp_path}/root"
    write_files(tmp_path / "root" / "ds=d1", rows_for(1, 30))
    day1 = TableTarget("default.tt_parts", root, {"ds": "d1"}, dialect="hive")
    publish_table(connector, day1, FULL, 30)

    again = publish_table(connector, day1, FULL, 30)
    assert again.rows == 30
    assert not any("SET LOCATION" in s for s in again.statements)
    assert query(hiveserver, "SHOW PARTITIONS default.tt_parts") == [("ds=d1",)]

    write_files(tmp_path / "root" / "ds=d2", rows_for(31, 12), files=1)
    day2 = TableTarget("default.tt_parts", root, {"ds": "d2"}, dialect="hive")
    assert publish_table(connector, day2, FULL, 12).rows == 12
    assert query(hiveserver, "SHOW PARTITIONS default.tt_parts") == [("ds=d1",), ("ds=d2",)]
    assert query(hiveserver, "SELECT ds, COUNT(*) FROM default.tt_parts GROUP BY ds ORDER BY ds") == [
        ("d1", 30), ("d2", 12)]
    assert query(hiveserver, "SELECT COUNT(DISTINCT id) FROM default.tt_parts") == [(42,)]


@server
def test_a_partition_published_under_a_new_root_is_moved(hiveserver, connector, tmp_path):
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_moved")
    write_files(tmp_path / "old" / "ds=d1", rows_for(1, 5), files=1)
    publish_table(connector, TableTarget("default.tt_moved", f"file://{tmp_path}/old", {"ds": "d1"},
                                         dialect="hive"), FULL, 5)
    write_files(tmp_path / "new" / "ds=d1", rows_for(100, 8), files=1)
    moved = TableTarget("default.tt_moved", f"file://{tmp_path}/new", {"ds": "d1"}, dialect="hive")
    result = publish_table(connector, moved, FULL, 8)
    assert any(s.endswith(f"SET LOCATION 'file://{tmp_path}/new/ds=d1'") for s in result.statements)
    assert query(hiveserver, "SELECT MIN(id), COUNT(*) FROM default.tt_moved") == [(100, 8)]


@server
def test_a_count_mismatch_fails_naming_table_partition_and_counts(hiveserver, connector, tmp_path):
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_mismatch")
    write_files(tmp_path / "root" / "ds=d1", rows_for(1, 10))
    t = TableTarget("default.tt_mismatch", f"file://{tmp_path}/root", {"ds": "d1"}, dialect="hive")
    with pytest.raises(TargetTableError) as info:
        publish_table(connector, t, FULL, 11)
    message = str(info.value)
    assert "default.tt_mismatch" in message and "ds=d1" in message
    assert "shows 10 rows but 11 were published" in message


@server
def test_a_plain_table_is_switched_to_a_new_location(hiveserver, connector, tmp_path):
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_plain")
    write_files(tmp_path / "run1", rows_for(1, 20))
    first = publish_table(connector, TableTarget("default.tt_plain", f"file://{tmp_path}/run1/",
                                                 dialect="hive"), FULL, 20)
    assert not any("SET LOCATION" in s for s in first.statements)
    assert first.partition is None and first.location == f"file://{tmp_path}/run1"

    write_files(tmp_path / "run2", rows_for(1000, 7), files=1)
    second = publish_table(connector, TableTarget("default.tt_plain", f"file://{tmp_path}/run2",
                                                  dialect="hive"), FULL, 7)
    assert f"ALTER TABLE `default`.`tt_plain` SET LOCATION 'file://{tmp_path}/run2'" in second.statements
    assert second.rows == 7
    assert query(hiveserver, "SELECT id FROM default.tt_plain ORDER BY id") == [(i,) for i in range(1000, 1007)]
    # Same location again: nothing to switch.
    third = publish_table(connector, TableTarget("default.tt_plain", f"file://{tmp_path}/run2",
                                                 dialect="hive"), FULL, 7)
    assert not any("SET LOCATION" in s for s in third.statements)


@server
def test_an_existing_table_with_other_columns_is_refused(hiveserver, connector, tmp_path):
    hiveserver.execute(
        "DROP TABLE IF EXISTS default.tt_clash",
        f"CREATE EXTERNAL TABLE default.tt_clash (id BIGINT, amount DECIMAL(10,2), name STRING, "
        f"event_ts TIMESTAMP, event_date DATE, flag BOOLEAN, ratio DOUBLE, maybe INT) STORED AS PARQUET "
        f"LOCATION 'file://{tmp_path}/clash'",
    )
    write_files(tmp_path / "clash", rows_for(1, 3), files=1)
    t = TableTarget("default.tt_clash", f"file://{tmp_path}/clash", dialect="hive")
    with pytest.raises(TargetTableError, match="already exists with columns .*amount decimal\\(10,2\\).* but the "
                                               "files hold .*amount decimal\\(18,4\\)"):
        publish_table(connector, t, FULL, 3)
    # Same columns in another order are refused too (Impala maps Parquet columns by position).
    reordered = pa.schema([FULL.field("amount"), FULL.field("id"), *list(FULL)[2:]])
    with pytest.raises(TargetTableError, match="already exists with columns"):
        publish_table(connector, t, reordered, 3)
    # The table is untouched: its columns are still its own.
    columns = {r[0]: r[1] for r in query(hiveserver, "DESCRIBE default.tt_clash")[:2]}
    assert columns == {"id": "bigint", "amount": "decimal(10,2)"}


@server
def test_partitioning_must_match_an_existing_table(hiveserver, connector, tmp_path):
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_notparted")
    write_files(tmp_path / "np", rows_for(1, 3), files=1)
    publish_table(connector, TableTarget("default.tt_notparted", f"file://{tmp_path}/np", dialect="hive"), FULL, 3)
    parted = TableTarget("default.tt_notparted", f"file://{tmp_path}/np", {"ds": "d1"}, dialect="hive")
    with pytest.raises(TargetTableError, match="no partition columns but the target has \\(ds string\\)"):
        publish_table(connector, parted, FULL, 3)


@server
def test_spark_cannot_read_nanosecond_parquet_timestamps(hiveserver, tmp_path):
    """Why column_type_sql refuses timestamp[ns] for the hive dialect (Spark 4.x behaviour)."""
    schema = pa.schema([pa.field("ts", pa.timestamp("ns"))])
    write_files(tmp_path / "ns", [(dt.datetime(2024, 1, 2, 3, 4, 5, 123456),)], files=1, schema=schema)
    hiveserver.execute(
        "DROP TABLE IF EXISTS default.tt_nanos",
        f"CREATE EXTERNAL TABLE default.tt_nanos (ts TIMESTAMP) STORED AS PARQUET LOCATION 'file://{tmp_path}/ns'",
    )
    with pytest.raises(Exception, match="INT64"):
        query(hiveserver, "SELECT * FROM default.tt_nanos")
    with pytest.raises(ConfigError, match="^timestamp_unit"):
        publish_table(None, TableTarget("default.tt_nanos", f"file://{tmp_path}/ns", dialect="hive"), schema, 1)


@server
def test_narrow_types_binary_and_millisecond_timestamps(hiveserver, connector, tmp_path):
    schema = pa.schema([pa.field("b", pa.binary()), pa.field("t", pa.int8()), pa.field("s", pa.int16()),
                        pa.field("f", pa.float32()), pa.field("ms", pa.timestamp("ms"))])
    rows = [(b"\x00\xff", -128, -32768, 1.5, dt.datetime(2020, 1, 1, 0, 0, 0, 123000)), (None,) * 5]
    write_files(tmp_path / "narrow", rows, files=1, schema=schema)
    hiveserver.execute("DROP TABLE IF EXISTS default.tt_narrow")
    publish_table(connector, TableTarget("default.tt_narrow", f"file://{tmp_path}/narrow", dialect="hive"), schema, 2)
    assert query(hiveserver, "SELECT hex(b), t, s, f, ms FROM default.tt_narrow ORDER BY t") == [
        (None, None, None, None, None), ("00FF", -128, -32768, 1.5, dt.datetime(2020, 1, 1, 0, 0, 0, 123000))]


# --------------------------------------------------------------------------------------------
# The impala dialect's statement sequence, against a scripted cursor (no Impala on a laptop)


class ScriptedCursor:
    def __init__(self, answers):
        self.answers = answers  # statement prefix -> (description, rows)
        self.executed: list[str] = []
        self.description = None
        self.rows: list = []
        self.closed = False

    def execute(self, sql):
        self.executed.append(sql)
        self.description, self.rows = None, []
        for prefix, (description, rows) in self.answers.items():
            if sql.startswith(prefix):
                self.description, self.rows = description, rows

    def fetchall(self):
        return self.rows

    def close(self):
        self.closed = True


class ScriptedConnector(SourceConnector):
    """The real connector's session handling around a scripted cursor (no Impala runs here)."""

    def __init__(self, cursor):
        super().__init__(host="impala", port=21050)
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "closed", False)

    def connect(self):
        return self

    def cursor(self, connection, *, fetch_size=10240, columnar=True):
        assert columnar is False
        return self._cursor

    def close(self):
        object.__setattr__(self, "closed", True)


def test_impala_sequence_moves_a_misplaced_partition_and_refreshes_it():
    show = ([(n, "STRING") for n in ("ds", "#Rows", "Location")],
            [("d1", -1, "hdfs://nn:8020/old/ds=d1"), ("Total", -1, "")])
    cursor = ScriptedCursor({
        "DESCRIBE FORMATTED": ([("name",), ("type",), ("comment",)], IMPALA_DESCRIBE),
        "SHOW PARTITIONS": show,
        "SELECT COUNT(*)": ([("count(*)", "BIGINT")], [(7,)]),
    })
    connector = ScriptedConnector(cursor)
    t = TableTarget("db.events", "hdfs://nn:8020/warehouse/events", {"ds": "d1"})
    result = publish_table(connector, t, SMALL, 7)
    assert [s.split("\n")[0] for s in cursor.executed] == [
        "CREATE EXTERNAL TABLE IF NOT EXISTS `db`.`events` (",
        "DESCRIBE FORMATTED `db`.`events`",
        "ALTER TABLE `db`.`events` ADD IF NOT EXISTS PARTITION (`ds`='d1') "
        "LOCATION 'hdfs://nn:8020/warehouse/events/ds=d1'",
        "SHOW PARTITIONS `db`.`events`",
        "ALTER TABLE `db`.`events` PARTITION (`ds`='d1') SET LOCATION 'hdfs://nn:8020/warehouse/events/ds=d1'",
        "REFRESH `db`.`events` PARTITION (`ds`='d1')",
        "SELECT COUNT(*) FROM `db`.`events` WHERE `ds` = 'd1'",
    ]
    assert result.to_dict() == {"table": "db.events", "partition": {"ds": "d1"},
                      "location": "hdfs://nn:8020/warehouse/events/ds=d1", "rows": 7,
                      "statements": cursor.executed}
    assert cursor.closed and connector.closed

    # Already in place: no move. A wrong count fails and still closes everything.
    show[1][0] = ("d1", -1, "hdfs://nn:8020/warehouse/events/ds=d1")
    cursor.executed.clear()
    cursor.closed = False
    object.__setattr__(connector, "closed", False)
    with pytest.raises(TargetTableError, match="db.events partition ds=d1 shows 7 rows but 8 were published"):
        publish_table(connector, t, SMALL, 8)
    assert not any("SET LOCATION" in s for s in cursor.executed)
    assert cursor.closed and connector.closed


def test_impala_sequence_for_a_plain_table_switches_location():
    plain_describe = [r for r in IMPALA_DESCRIBE if r[0] not in ("# Partition Information", "ds")]
    cursor = ScriptedCursor({
        "DESCRIBE FORMATTED": ([("name",)], plain_describe),
        "SELECT COUNT(*)": ([("count(*)", "BIGINT")], [(3,)]),
    })
    t = TableTarget("db.events", "hdfs://nn:8020/warehouse/events_v2")
    result = publish_table(ScriptedConnector(cursor), t, SMALL, 3)
    assert result.statements[2:] == [
        "ALTER TABLE `db`.`events` SET LOCATION 'hdfs://nn:8020/warehouse/events_v2'",
        "REFRESH `db`.`events`",
        "SELECT COUNT(*) FROM `db`.`events`",
    ]


@pytest.mark.parametrize("rows", [-1, True, "3", None])
def test_expected_rows_must_be_a_count(rows):
    with pytest.raises(ConfigError, match="^expected_rows"):
        publish_table(None, target(), SMALL, rows)
