"""The server-side export against the real parts: the Spark Thrift Server writes Parquet with
CREATE TABLE AS SELECT into hdfs://cluster1, the manifest comes from WebHDFS listings, Parquet
footers (range reads) and the cluster's COMPOSITE_CRC, and the CLI moves it to cluster2 by real
DistCp. (The local server speaks the ``hive`` dialect; Impala's statements are checked as text.)"""

from __future__ import annotations

import io
import re
import uuid

import google_crc32c
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hdfs import InsecureClient

from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError
from airflow_provider_impala_transfer.core.export import (
    check_exported_schema,
    drop_export,
    export_manifests,
    group_files,
    plan_export,
    run_export,
)
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, extract_chunk, plan_chunks
from airflow_provider_impala_transfer.core.staging import fetch_local
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata
from tests.conftest import EVENTS_ROWS, read_files
from tests.support.hdfs_files import hdfs_bytes, hdfs_names, parquet_rows
from tests.test_cli import PASSWORD, assert_ok, run_cli, summary_methods

pytestmark = pytest.mark.server


def cluster1(hadoop) -> WebHdfsMetadata:
    return WebHdfsMetadata(InsecureClient(f"http://{hadoop.source.webhdfs_address}", user=hadoop.user))


def export(connector, hadoop, spec: ExtractSpec, run: Run) -> tuple[list[Manifest], object]:
    plan = plan_export(spec, run, source_hdfs_path=f"hdfs://cluster1/exports-{uuid.uuid4().hex[:8]}", dialect="hive")
    metadata = cluster1(hadoop)
    run_export(connector, plan, metadata)
    return export_manifests(connector, spec, plan, metadata, HdfsShell(runner=CommandRunner(timeout=120))), plan


def naive(table: pa.Table) -> pa.Table:
    """Timestamps the engine wrote as UTC instants, as the wall-clock values the client path keeps."""
    return pa.table({name: (col.cast(pa.timestamp(col.type.unit)) if pa.types.is_timestamp(col.type) else col)
                     for name, col in zip(table.column_names, table.columns)})


def test_impala_exports_with_an_external_ctas_micro_timestamps_and_the_codec():
    spec = ExtractSpec.build(table="sales.orders", chunk_size=2_000_000, compression="zstd")
    plan = plan_export(spec, Run("scheduled__2026-01-01T00:00:00+00:00", dag_id="orders"),
                       source_hdfs_path="hdfs://nn1:8020/staging", staging_db="etl_tmp")
    assert plan.location.startswith("hdfs://nn1:8020/staging/_impala_transfer_export/orders_scheduled__2026-01-01T00_00_00_00_00-")
    assert plan.statements[:3] == ("SET COMPRESSION_CODEC=zstd", "SET PARQUET_FILE_SIZE=268435456",
                                   "SET PARQUET_TIMESTAMP_TYPE=INT64_MICROS")
    assert plan.statements[3] == plan.drop_sql == f"DROP TABLE IF EXISTS {plan.table}"
    assert plan.table.startswith("`etl_tmp`.`impala_transfer_export_")
    assert plan.statements[4] == (f"CREATE EXTERNAL TABLE {plan.table} STORED AS PARQUET LOCATION '{plan.location}' AS\n"
                                  "SELECT * FROM (\nSELECT * FROM `sales`.`orders`\n) impala_transfer_q")
    with pytest.raises(ConfigError, match="source_hdfs_path: the server-side export writes its files on the source cluster"):
        plan_export(spec, Run("r"), source_hdfs_path=None)
    with pytest.raises(ConfigError, match="staging_db: "):
        plan_export(spec, Run("r"), source_hdfs_path="hdfs://nn1/s", staging_db="tmp; DROP")
    with pytest.raises(ConfigError, match="output_format: the server-side export writes parquet, not csv"):
        plan_export(ExtractSpec.build(table="t", output_format="csv"), Run("r"), source_hdfs_path="hdfs://nn1/s")


def test_the_export_is_described_from_footers_and_checksums_without_reading_the_data(
        hiveserver, connector, hadoop_env):
    spec = ExtractSpec.build(table="default.events", chunk_size=7000)
    manifests, plan = export(connector, hadoop_env, spec, Run("manual__export"))
    assert sum(m.rows for m in manifests) == EVENTS_ROWS
    assert all(m.rows <= 7000 or len(m.files) == 1 for m in manifests)
    names = sorted(f.name for m in manifests for f in m.files)
    assert names == sorted(hdfs_names(hadoop_env, plan.location))  # renamed in place, nothing else visible
    assert all(n.startswith("chunk-") and n.endswith(".parquet") for n in names)
    for entry in (f for m in manifests for f in m.files):
        data = hdfs_bytes(hadoop_env, entry.path)
        assert entry.bytes == len(data) and entry.crc32c == f"{google_crc32c.value(data):08x}"
        assert entry.rows == pq.read_metadata(io.BytesIO(data)).num_rows
    assert manifests[0].schema.field("id").type == pa.int64()  # the query's types, as the client path
    drop_export(connector, plan, cluster1(hadoop_env))
    assert hdfs_names(hadoop_env, plan.location) is None


def test_every_type_exported_by_the_server_equals_the_client_extract_cell_by_cell(
        hiveserver, connector, hadoop_env, tmp_path):
    spec = ExtractSpec.build(table="default.sample_types")
    manifests, plan = export(connector, hadoop_env, spec, Run("manual__fidelity"))
    server = pa.concat_tables(pq.read_table(io.BytesIO(hdfs_bytes(hadoop_env, f.path)))
                              for m in manifests for f in m.files)
    client = read_files([f.path for c in plan_chunks(connector, spec)
                         for f in extract_chunk(connector, spec, c, str(tmp_path)).files])
    assert naive(server).sort_by("id").to_pylist() == client.sort_by("id").to_pylist()
    # a copy fetched for a method that needs local files is checked against the cluster's CRC
    local = fetch_local(manifests[0], HdfsShell(runner=CommandRunner(timeout=120)), str(tmp_path / "fetched"))
    assert all(f.local and len(f.sha256) == 64 for f in local.files)
    drop_export(connector, plan, cluster1(hadoop_env))


def test_exported_files_are_grouped_into_no_more_chunks_than_airflow_maps():
    files = [(f"part-{i}", 10) for i in range(10)]
    rows = {name: 100 for name, _ in files}
    groups, chunk_rows = group_files(files, rows, 100, max_groups=1024)
    assert [len(g) for g in groups] == [1] * 10 and chunk_rows == 100
    groups, chunk_rows = group_files(files, rows, 100, max_groups=3)  # 200, 400 rows a chunk: still 5, then 3
    assert [len(g) for g in groups] == [4, 4, 2] and chunk_rows == 400
    assert [name for g in groups for name, _ in g] == [name for name, _ in files]  # in order, each once


def test_a_type_the_engine_changed_fails_naming_the_column():
    expected = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(38, 10))])
    with pytest.raises(ExtractError, match=r"column 'amount' was written as double, but the query's type is "
                                           r"decimal128\(38, 10\); use extract_mode=client"):
        check_exported_schema(expected, pa.schema([("id", pa.int64()), ("amount", pa.float64())]), "f.parquet")
    with pytest.raises(ExtractError, match="give every column a distinct alias"):
        check_exported_schema(expected, pa.schema([("id", pa.int64()), ("id_1", pa.int64())]), "f.parquet")


def test_cli_server_mode_exports_on_cluster1_distcps_to_cluster2_and_drops_the_export(hiveserver, hadoop_env):
    key = uuid.uuid4().hex[:8]
    target, staging = f"hdfs://cluster2/cli-export/{key}", f"hdfs://cluster1/cli-export-staging/{key}"
    result = run_cli("--source-host", "127.0.0.1", "--source-port", str(hiveserver.port), "--auth-mechanism", "PLAIN",
                     "--user", "airflow", "--table", "default.events", "--chunk-size", "7000",
                     "--extract-mode", "server", "--export-dialect", "hive",
                     "--source-webhdfs-url", f"http://{hadoop_env.source.webhdfs_address}",
                     "--source-hdfs-path", staging, "--target-hdfs-path", target, "--target-table", "events_exported",
                     "--table-dialect", "hive", "--run-id", "x1", "--temp-dir", "/tmp/impala-transfer-tests")
    assert_ok(result)
    assert f"counts: source {EVENTS_ROWS:,}, files {EVENTS_ROWS:,}, delivered {EVENTS_ROWS:,}, " \
           f"published {EVENTS_ROWS:,}, target_table {EVENTS_ROWS:,}" in result.stdout
    assert parquet_rows(hadoop_env, f"{target}/events_exported/x1") == EVENTS_ROWS
    methods = summary_methods(result.stdout)
    assert len(methods) >= 3 and set(methods.values()) == {"distcp"}, result.stdout  # cluster1 -> cluster2 directly
    assert hdfs_names(hadoop_env, f"{staging}/_impala_transfer_export") == []  # dropped after publishing
    assert not [r for r in hiveserver.query("SHOW TABLES IN default") if "impala_transfer_export" in str(r)]
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(("query", "staging_db", "hint"), [
    ("SELECT id, id FROM default.events", "default", "give every column a distinct alias"),
    ("SELECT * FROM default.events", "no_such_db", "the staging database 'no_such_db' does not exist: create it "
                                                   "or set staging_db"),
])
def test_a_query_the_engine_cannot_export_fails_with_the_fix(hiveserver, connector, hadoop_env, query, staging_db, hint):
    spec = ExtractSpec.build(sql=query)
    plan = plan_export(spec, Run(f"manual__{staging_db}"), source_hdfs_path="hdfs://cluster1/bad-exports",
                       staging_db=staging_db, dialect="hive")
    with pytest.raises(ExtractError, match=re.escape(hint)):
        run_export(connector, plan, cluster1(hadoop_env))
