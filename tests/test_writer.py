"""The rolling writer: bounded files, no empty trailing file, atomic publish, deterministic retries."""

import gzip
import hashlib
import os
from pathlib import Path

import fsspec
import google_crc32c
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError
from airflow_provider_impala_transfer.core.extract.writer import FileFormat, RollingFileWriter

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(38, 10))])


def batches(total, size):
    from decimal import Decimal

    for start in range(0, total, size):
        ids = list(range(start, min(start + size, total)))
        yield pa.record_batch([pa.array(ids, pa.int64()), pa.array([f"n{i}" for i in ids]),
                               pa.array([(Decimal(i) / 7).quantize(Decimal("1e-10")) for i in ids], pa.decimal128(38, 10))], schema=SCHEMA)


def write(directory, total, *, max_rows, batch=7, fmt=FileFormat(), chunk=0, **kwargs):
    fs = fsspec.filesystem("file")
    with RollingFileWriter(fs, str(directory), chunk, SCHEMA, fmt, max_rows, **kwargs) as writer:
        for b in batches(total, batch):
            writer.write(b)
    return writer.files


@pytest.mark.parametrize("total,max_rows,expected_files", [(100, 10, 10), (101, 10, 11), (9, 10, 1), (10, 10, 1)])
def test_files_are_bounded_and_an_even_total_leaves_no_empty_file(tmp_path, total, max_rows, expected_files):
    files = write(tmp_path, total, max_rows=max_rows)
    assert len(files) == expected_files
    assert all(0 < f.rows <= max_rows for f in files)
    assert sum(f.rows for f in files) == total
    ids = pa.concat_tables([pq.read_table(f.path.removeprefix("file://")) for f in files])["id"].to_pylist()
    assert ids == list(range(total))
    assert sorted(os.listdir(tmp_path)) == [f"chunk-00000-part-{i:05d}.parquet" for i in range(expected_files)]


def test_manifest_entries_match_the_bytes_on_disk_with_both_checksums(tmp_path):
    for f in write(tmp_path, 50, max_rows=20):
        data = Path(f.path.removeprefix("file://")).read_bytes()
        assert f.bytes == len(data)
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        assert f.crc32c == f"{google_crc32c.value(data):08x}"  # as `hdfs dfs -checksum` prints it
        assert f.path.startswith("file:///")


def test_empty_result_writes_one_valid_schema_file_or_nothing(tmp_path):
    files = write(tmp_path / "a", 0, max_rows=10, write_empty_file=True)
    assert [f.rows for f in files] == [0]
    table = pq.read_table(files[0].path.removeprefix("file://"))
    assert table.num_rows == 0 and table.schema.equals(SCHEMA)
    assert write(tmp_path / "b", 0, max_rows=10, write_empty_file=False) == []


def test_retry_overwrites_its_own_files_byte_for_byte_and_removes_stale_parts(tmp_path):
    first = write(tmp_path, 95, max_rows=10)
    first_bytes = {f.path: Path(f.path.removeprefix("file://")).read_bytes() for f in first}
    second = write(tmp_path, 95, max_rows=10)
    assert [f.sha256 for f in first] == [f.sha256 for f in second]
    assert all(Path(p.removeprefix("file://")).read_bytes() == b for p, b in first_bytes.items())
    # The source shrank between attempts: parts the new attempt did not write must go.
    (tmp_path / ".chunk-00000-part-00003.parquet.dead.inprogress").write_bytes(b"crashed attempt")
    third = write(tmp_path, 35, max_rows=10)
    assert sorted(os.listdir(tmp_path)) == sorted(Path(f.path).name for f in third)
    assert len(third) == 4


def test_other_chunks_files_are_never_touched(tmp_path):
    write(tmp_path, 30, max_rows=10, chunk=1)
    write(tmp_path, 5, max_rows=10, chunk=2)
    write(tmp_path, 10, max_rows=10, chunk=1)
    assert sorted(os.listdir(tmp_path)) == ["chunk-00001-part-00000.parquet", "chunk-00002-part-00000.parquet"]


def test_a_failed_write_leaves_no_file_behind(tmp_path):
    fs = fsspec.filesystem("file")
    writer = RollingFileWriter(fs, str(tmp_path), 0, SCHEMA, FileFormat(), 100)
    with pytest.raises(RuntimeError), writer:
        writer.write(next(batches(10, 10)))
        raise RuntimeError("connection lost mid-chunk")
    assert os.listdir(tmp_path) == []


def test_in_progress_files_are_hidden_until_complete(tmp_path):
    fs = fsspec.filesystem("file")
    writer = RollingFileWriter(fs, str(tmp_path), 0, SCHEMA, FileFormat(), 100)
    writer.write(next(batches(10, 10)))
    visible = [n for n in os.listdir(tmp_path) if not n.startswith((".", "_"))]
    assert visible == []  # Hive/Impala skip names starting with '.' or '_'
    writer.close()
    assert os.listdir(tmp_path) == ["chunk-00000-part-00000.parquet"]


@pytest.mark.parametrize("compression", ["snappy", "zstd", "gzip", "none"])
def test_parquet_compressions(tmp_path, compression):
    files = write(tmp_path, 30, max_rows=100, fmt=FileFormat("parquet", compression))
    meta = pq.ParquetFile(files[0].path.removeprefix("file://")).metadata
    assert meta.row_group(0).column(0).compression == ("UNCOMPRESSED" if compression == "none" else compression.upper())


def test_csv_gzip_is_deterministic_and_readable(tmp_path):
    fmt = FileFormat("csv", "gzip")
    a = write(tmp_path / "a", 25, max_rows=10, fmt=fmt)
    b = write(tmp_path / "b", 25, max_rows=10, fmt=fmt)
    assert [f.sha256 for f in a] == [f.sha256 for f in b]
    assert a[0].path.endswith("chunk-00000-part-00000.csv.gz")
    text = gzip.decompress(Path(a[0].path.removeprefix("file://")).read_bytes()).decode()
    assert text.splitlines()[0] == '"id","name","amount"'
    table = pacsv.read_csv(a[2].path.removeprefix("file://"))
    assert table.num_rows == 5


def test_memory_filesystem_works_too():
    fs = fsspec.filesystem("memory")
    with RollingFileWriter(fs, "/out/run", 3, SCHEMA, FileFormat(), 10) as writer:
        for b in batches(15, 4):
            writer.write(b)
    assert [f.path for f in writer.files] == ["memory:///out/run/chunk-00003-part-00000.parquet",
                                             "memory:///out/run/chunk-00003-part-00001.parquet"]
    with fs.open(writer.files[1].path, "rb") as f:
        assert pq.read_table(f).num_rows == 5


@pytest.mark.parametrize("fmt,comp,field", [("orc", None, "output_format"), ("csv", "snappy", "compression"),
                                            ("parquet", "lzma", "compression")])
def test_unknown_format_or_compression_names_the_field(fmt, comp, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        FileFormat(fmt, comp)


def test_manifests_merge_in_chunk_order_and_keep_the_exact_schema_through_xcom(tmp_path):
    m2 = Manifest(write(tmp_path, 5, max_rows=10, chunk=2), SCHEMA)
    m1 = Manifest(write(tmp_path, 25, max_rows=10, chunk=1), SCHEMA)
    merged = Manifest.merge([m2.to_dict(), m1])  # XCom hands plain dicts
    assert [(f.chunk, f.part) for f in merged.files] == [(1, 0), (1, 1), (1, 2), (2, 0)]
    assert merged.rows == 30 and merged.to_dict()["rows"] == 30
    assert Manifest.from_dict(merged.to_dict()).schema.equals(SCHEMA)
    assert Manifest.from_dict(merged.to_dict()) == merged
    other = Manifest([], pa.schema([("x", pa.int8())]))
    with pytest.raises(ExtractError, match="disagree"):
        Manifest.merge([m1, other])
