"""Server-side export: the source engine writes the query's Parquet files on its own cluster, in
parallel on every node, and no row passes through this process.

    CREATE EXTERNAL TABLE <staging_db>.<run-scoped name> STORED AS PARQUET
        LOCATION '<source_hdfs_path>/_impala_transfer_export/<run key>' AS <query>

The manifest is then built from what the engine wrote, without reading the data: names and sizes
from one WebHDFS listing, each file's rows and schema from its Parquet footer (two range reads),
its CRC32C from the cluster's COMPOSITE_CRC checksum (one ``hdfs dfs -checksum`` for all files).
The files are renamed ``chunk-CCCCC-part-PPPPP.parquet`` and grouped into chunks of about
``chunk_size`` rows, so the per-chunk transfer, verification, publish and table steps are the
client path's: distcp copies cluster1 -> cluster2 directly.

The staging table is EXTERNAL (its DROP leaves the files) and is dropped, and the export directory
removed, after the run is published (:func:`drop_export`); a retry replaces its own directory.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_impala_transfer.core.common import sql as sqlmod
from airflow_provider_impala_transfer.core.common.connection import SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
from airflow_provider_impala_transfer.core.common.uris import check_hadoop_path, join
from airflow_provider_impala_transfer.core.common.values import check_choice
from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError, SourceError, TransferError
from airflow_provider_impala_transfer.core.extract.arrow_types import arrow_schema
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, describe_query
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata

EXPORT_DIR = "_impala_transfer_export"
EXTRACT_MODES = ("client", "server")
EXPORT_DIALECTS = ("impala", "hive")  # hive: HiveServer2 as Spark's Thrift Server speaks it
DEFAULT_STAGING_DB = "default"
IMPALA_PARQUET_FILE_SIZE = 256 << 20  # Impala's own default; one file per node and 256 MiB
_CODECS = {"snappy": "snappy", "zstd": "zstd", "gzip": "gzip", "none": "none"}


def check_extract_mode(mode: str, field: str = "extract_mode") -> str:
    return check_choice(mode, field, EXTRACT_MODES, "an extract mode")


@dataclass(frozen=True)
class ExportPlan:
    """Where and how one run's export is written: the staging table, its directory, the SQL."""

    table: str  # staging_db.name, as given to the server (validated)
    location: str  # hdfs://.../_impala_transfer_export/<run key>
    statements: tuple[str, ...]
    compression: str

    @property
    def drop_sql(self) -> str:
        return f"DROP TABLE IF EXISTS {self.table}"

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "location": self.location, "statements": list(self.statements),
                "compression": self.compression}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportPlan:
        return cls(table=data["table"], location=data["location"], statements=tuple(data["statements"]),
                   compression=data["compression"])


def plan_export(spec: ExtractSpec, run: Run, *, source_hdfs_path: str | None,
                staging_db: str = DEFAULT_STAGING_DB, dialect: str = "impala") -> ExportPlan:
    """The statements that export ``spec.query`` for ``run``; nothing is executed."""
    if not source_hdfs_path:
        raise ConfigError("source_hdfs_path", "the server-side export writes its files on the source cluster",
                          "set source_hdfs_path=hdfs://<source-namenode>/<directory the source engine may write>")
    if spec.file_format.output_format != "parquet":
        raise ConfigError("output_format", f"the server-side export writes parquet, not {spec.file_format.output_format}",
                          "set output_format=parquet or extract_mode=client")
    dialect = check_choice(dialect, "table_dialect", EXPORT_DIALECTS, "a dialect")
    location = join(check_hadoop_path(source_hdfs_path, "source_hdfs_path"), EXPORT_DIR, run.owner)
    name = "impala_transfer_export_" + hashlib.sha256(run.owner.encode()).hexdigest()[:16]
    sqlmod.quote_identifier(staging_db, field="staging_db")
    table = f"{staging_db}.{name}"
    quoted = sqlmod.quote_table_name(table, field="staging_db")
    codec = _CODECS.get(spec.file_format.compression or "snappy")
    if codec is None:
        raise ConfigError("compression", f"{spec.file_format.compression!r} cannot be written by the server",
                          f"use one of {', '.join(_CODECS)}")
    query = sqlmod.wrap(spec.query)
    if "'" in location or "\\" in location:
        raise ConfigError("source_hdfs_path", f"{location!r} holds a quote or backslash", "name it without them")
    if dialect == "impala":
        settings = [f"SET COMPRESSION_CODEC={codec}", f"SET PARQUET_FILE_SIZE={IMPALA_PARQUET_FILE_SIZE}",
                    "SET PARQUET_TIMESTAMP_TYPE=INT64_MICROS"]  # else INT96 (Impala < 3.4 has no option)
        create = f"CREATE EXTERNAL TABLE {quoted} STORED AS PARQUET LOCATION '{location}' AS\n{query}"
    else:
        settings = ["SET spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS",  # Spark writes INT96 otherwise
                    f"SET spark.sql.parquet.compression.codec={'uncompressed' if codec == 'none' else codec}",
                    f"SET spark.sql.files.maxRecordsPerFile={spec.chunk_size}"]
        create = f"CREATE TABLE {quoted} USING PARQUET LOCATION '{location}' AS\n{query}"  # LOCATION: external
    return ExportPlan(table=quoted, location=location, statements=(*settings, f"DROP TABLE IF EXISTS {quoted}", create),
                      compression=codec)


def run_export(connector: SourceConnector, plan: ExportPlan, metadata: WebHdfsMetadata, *,
               log: Callable[[str], None] = lambda message: None) -> None:
    """Run the export; what an earlier attempt of this run left is replaced."""
    if metadata.exists(plan.location):
        log(f"removing an earlier attempt's export at {plan.location}")
        metadata.remove([plan.location], recursive=True)
    with connector.session() as cursor:
        for sql in plan.statements:
            log(f"running on {connector.address}: {' '.join(sql.split())[:300]}")
            try:
                run_server_call(connector, "the server-side export", lambda sql=sql: cursor.execute(sql))
            except SourceError as exc:
                # The engine's words come with its stack trace: the hint is read from, and put
                # on, the first lines, where the summary and the task grid show them.
                head, sep, trace = str(exc).partition("\n\tat ")
                raise ExtractError(f"{head}{_export_hint(head, plan)}{sep}{trace}") from exc


def _export_hint(message: str, plan: ExportPlan) -> str:
    """What the engine's refusal usually means, and the fix."""
    text = message.lower()

    def says(*words: str) -> bool:
        return any(w in text for w in words)

    if says("duplicate column", "column_already_exists", "duplicated"):
        return " (the query has two columns of one name, which a table cannot: give every column a distinct alias)"
    if says("schema_not_found", "database", "namespace") and says("not found", "cannot be found", "does not exist"):
        database = plan.table.split(".", 1)[0].strip("`")
        return f" (the staging database {database!r} does not exist: create it or set staging_db)"
    if says("permission denied", "accesscontrolexception", "authorizationexception", "not authorized", "privilege"):
        return " (the source user needs CREATE on the staging database and write access to source_hdfs_path)"
    return ""


def export_manifests(connector: SourceConnector, spec: ExtractSpec, plan: ExportPlan, metadata: WebHdfsMetadata,
                     shell: HdfsShell, *, log: Callable[[str], None] = lambda message: None) -> list[Manifest]:
    """The exported files as per-chunk manifests, as the client extract would have described them."""
    expected = arrow_schema(describe_query(connector, spec.query), spec.timestamp_unit)
    written = sorted((name, size) for name, size in metadata.file_sizes(plan.location).items()
                     if name.endswith(".parquet") and not name.startswith(("_", ".")))
    if not written:
        raise ExtractError(f"the export wrote no Parquet file at {plan.location} (see the server's log)")
    footers = {name: pq.read_metadata(_RangeFile(metadata, join(plan.location, name), size))
               for name, size in written}
    for name, footer in footers.items():
        check_exported_schema(expected, footer.schema.to_arrow_schema(), join(plan.location, name))
    groups, chunk_rows = group_files(written, {n: f.num_rows for n, f in footers.items()}, spec.chunk_size,
                                     spec.max_chunks)
    if chunk_rows != spec.chunk_size:
        log(f"export: chunks of {spec.chunk_size:,} rows would be more than the {spec.max_chunks} mapped tasks "
            f"allowed ([core] max_map_length): grouped into {len(groups)} chunks of up to {chunk_rows:,} rows")
    renamed: list[tuple[str, str, int, int, int, int]] = []  # (old, new, size, rows, chunk, part)
    for index, group in enumerate(groups):
        for part, (name, size) in enumerate(group):
            new = f"chunk-{index:05d}-part-{part:05d}.parquet"
            renamed.append((name, new, size, footers[name].num_rows, index, part))
    try:
        for old, new, *_ in renamed:
            if old != new:
                metadata.move(join(plan.location, old), join(plan.location, new))
    except TransferError as exc:
        raise _not_ours(exc, plan) or exc
    paths = [join(plan.location, new) for _, new, *_ in renamed]
    checksums = shell.crc32c(paths)
    manifests = []
    for index, group in enumerate(groups):
        files = [FileEntry(path=join(plan.location, new), bytes=size, sha256="", crc32c=checksums[join(plan.location, new)],
                           rows=rows, chunk=chunk, part=part, format="parquet", compression=plan.compression)
                 for _, new, size, rows, chunk, part in renamed if chunk == index]
        missing = [f.path for f in files if not f.crc32c]
        if missing:
            raise TransferError(f"{missing[0]}: the source cluster gave no COMPOSITE-CRC32C checksum "
                                "(a cluster before Hadoop 3.1?); use extract_mode=client")
        rows = sum(f.rows or 0 for f in files)
        manifests.append(Manifest(files=files, schema=expected, chunks=[Chunk(
            index=index, description=f"export: {len(files)} file{'s' if len(files) > 1 else ''}, {rows:,} rows")]))
    log(f"export: {len(renamed)} files, {sum(m.rows for m in manifests):,} rows, "
        f"{sum(m.bytes for m in manifests):,} bytes in {len(manifests)} chunk(s) at {plan.location}")
    return manifests


def _not_ours(exc: TransferError, plan: ExportPlan) -> ExtractError | None:
    """A refused rename of what the engine wrote as its own user (Impala writes as ``impala``, a
    HiveServer2 as ``hive``): the fix is a default ACL on the export root that gives the run's user
    what the engine creates beneath it; ``-R`` covers what it wrote already."""
    found = _DENIED.search(str(exc))
    if found is None:
        return None
    user, owner = found.group("user"), found.group("owner")
    root = plan.location.rsplit(f"/{EXPORT_DIR}/", 1)[0]
    return ExtractError(
        f"source_hdfs_path: the source engine wrote the export at {plan.location} as {owner}, and this run's "
        f"user {user} may not rename or remove what it wrote (as the HDFS superuser, "
        f"run: hdfs dfs -setfacl -R -m user:{user}:rwx,default:user:{user}:rwx {root} ; then retry: the "
        f"retry replaces this export)")


# HDFS's AccessControlException: ``Permission denied: user=etl, access=WRITE, inode="/p":hive:supergroup:drwxr-xr-x``
_DENIED = re.compile(r'Permission denied: user=(?P<user>[^,\s]+), access=\w+, inode="[^"]*":(?P<owner>[^:\s]+):')


def drop_export(connector: SourceConnector, plan: ExportPlan, metadata: WebHdfsMetadata, *,
                log: Callable[[str], None] = lambda message: None) -> None:
    """After the run is published: the staging table's definition, then its directory."""
    with connector.session() as cursor:
        run_server_call(connector, "dropping the export's staging table", lambda: cursor.execute(plan.drop_sql))
    metadata.remove([plan.location], recursive=True)
    log(f"dropped {plan.table} and removed {plan.location}")


def check_exported_schema(expected: pa.Schema, found: pa.Schema, where: str) -> None:
    """The engine must have written the query's types: a changed type fails loudly, naming it."""
    if found.names != expected.names:
        raise ExtractError(f"{where}: the export's columns {found.names} are not the query's {expected.names} "
                           "(duplicate or unnamed columns? give every column a distinct alias)")
    for want, got in zip(expected, found):
        if not _same_type(want.type, got.type):
            raise ExtractError(f"{where}: column {want.name!r} was written as {got.type}, but the query's type is "
                               f"{want.type}; use extract_mode=client for this query")


def _same_type(want: pa.DataType, got: pa.DataType) -> bool:
    if want.equals(got):
        return True
    if pa.types.is_timestamp(want) and pa.types.is_timestamp(got):
        return want.unit == got.unit and got.tz in (None, "UTC", "+00:00")  # instants written as UTC
    if pa.types.is_string(want) or pa.types.is_large_string(want):
        return pa.types.is_string(got) or pa.types.is_large_string(got)
    if pa.types.is_binary(want) or pa.types.is_large_binary(want):
        return pa.types.is_binary(got) or pa.types.is_large_binary(got)
    return False


def group_files(files: Sequence[tuple[str, int]], rows: dict[str, int], chunk_rows: int,
                max_groups: int) -> tuple[list[list[tuple[str, int]]], int]:
    """Consecutive files into chunks of about ``chunk_rows`` rows (at least one file each), and
    no more than ``max_groups`` chunks (one mapped task each): ``chunk_rows`` is doubled until
    they fit. Returns the chunks and the ``chunk_rows`` used."""
    while True:
        groups: list[list[tuple[str, int]]] = [[]]
        total = 0
        for name, size in files:
            if groups[-1] and total + rows[name] > chunk_rows:
                groups.append([])
                total = 0
            groups[-1].append((name, size))
            total += rows[name]
        if len(groups) <= max_groups:
            return groups, chunk_rows
        chunk_rows *= 2


class _RangeFile(io.RawIOBase):
    """A remote file pyarrow can seek in: each read is one WebHDFS range read. Reading a footer
    costs two (its length, then the footer), whatever the file's size."""

    def __init__(self, metadata: WebHdfsMetadata, uri: str, size: int):
        super().__init__()
        self.metadata, self.uri, self.size, self.position = metadata, uri, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        length = min(len(buffer), self.size - self.position)
        if length <= 0:
            return 0
        data = self.metadata.read_range(self.uri, self.position, length)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)
