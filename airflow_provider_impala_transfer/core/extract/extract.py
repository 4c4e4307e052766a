"""Plan and run an extract: query -> exact-typed chunk files + a manifest. No Airflow here."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec

from airflow_provider_impala_transfer.core.common import sql as sqlmod
from airflow_provider_impala_transfer.core.common.connection import SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.common.records import Chunk, Manifest
from airflow_provider_impala_transfer.core.common.values import positive_int
from airflow_provider_impala_transfer.core.extract.arrow_types import (
    BatchConverter,
    ColumnType,
    arrow_schema,
    validate_timestamp_unit,
)
from airflow_provider_impala_transfer.core.errors import ConfigError, ExtractError, SourceError
from airflow_provider_impala_transfer.core.extract.planning import (
    DEFAULT_MAX_CHUNKS,
    SplitStats,
    split_plan,
    stats_query,
    unsplit_plan,
    validate_chunking,
)
from airflow_provider_impala_transfer.core.extract.prefetch import Prefetcher
from airflow_provider_impala_transfer.core.extract.writer import DEFAULT_ROW_GROUP_ROWS, FileFormat, RollingFileWriter

log = logging.getLogger(__name__)

DEFAULT_FETCH_SIZE = 10240
DEFAULT_CHUNK_SIZE = 1_000_000


@dataclass(frozen=True)
class ExtractSpec:
    """A validated extract request: what to read and how to write it."""

    query: str
    file_format: FileFormat = field(default_factory=FileFormat)
    chunk_size: int = DEFAULT_CHUNK_SIZE  # rows per file, and the target rows per chunk
    num_chunks: int | None = None
    split_by: str | None = None
    order_by: tuple[str, ...] = ()
    fetch_size: int = DEFAULT_FETCH_SIZE
    timestamp_unit: str = "us"
    empty_result_file: bool = True
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    max_chunks: int = DEFAULT_MAX_CHUNKS
    allow_non_select: bool = False  # see core.common.sql: then the query may run unwrapped

    @classmethod
    def build(
        cls,
        *,
        sql: str | None = None,
        table: str | None = None,
        output_format: str = "parquet",
        compression: str | None = None,
        chunk_size: Any = DEFAULT_CHUNK_SIZE,
        num_chunks: Any = None,
        split_by: str | None = None,
        order_by: str | list[str] | tuple[str, ...] | None = None,
        fetch_size: Any = DEFAULT_FETCH_SIZE,
        timestamp_unit: str = "us",
        empty_result: str = "file",
        allow_non_select: bool = False,
        max_chunks: Any = DEFAULT_MAX_CHUNKS,
    ) -> ExtractSpec:
        """Validate every user-facing field, naming the field in each error."""
        query = sqlmod.resolve_query(sql, table, allow_non_select=allow_non_select)
        chunk_size, num_chunks = validate_chunking(chunk_size, num_chunks)
        fetch_size = positive_int(fetch_size, "fetch_size")
        if split_by is not None and str(split_by).strip() == "":
            split_by = None
        if split_by is not None:
            sqlmod.quote_identifier(split_by, field="split_by")
        if isinstance(order_by, str):
            order_by = [c.strip() for c in order_by.split(",") if c.strip()]
        for column in order_by or ():
            sqlmod.quote_identifier(column, field="order_by")
        if empty_result not in ("file", "none"):
            raise ConfigError("empty_result", f"{empty_result!r} is not 'file' or 'none'",
                              "'file' writes one schema-only file for an empty result, 'none' writes nothing")
        return cls(
            query=query,
            file_format=FileFormat(output_format, compression),
            chunk_size=chunk_size,
            num_chunks=num_chunks,
            split_by=split_by,
            order_by=tuple(order_by or ()),
            fetch_size=fetch_size,
            timestamp_unit=validate_timestamp_unit(timestamp_unit),
            empty_result_file=empty_result == "file",
            allow_non_select=allow_non_select,
            max_chunks=positive_int(max_chunks, "max_chunks"),
        )

    @property
    def order_by_sql(self) -> str | None:
        if not self.order_by:
            return None
        return ", ".join(sqlmod.quote_identifier(c, field="order_by") for c in self.order_by)


def describe_query(connector: SourceConnector, query: str) -> list[tuple]:
    """The result columns of ``query`` without reading any row."""
    probe = f"{sqlmod.wrap(query)}\nLIMIT 0"
    with connector.session() as cursor:
        run_server_call(connector, "reading the query's columns", lambda: cursor.execute(probe))
        return list(cursor.description or [])


def plan_chunks(connector: SourceConnector, spec: ExtractSpec) -> list[Chunk]:
    """Decide the chunks. With ``split_by``: one MIN/MAX/COUNT query, then key ranges."""
    if spec.split_by is None:
        return unsplit_plan(empty_result_file=spec.empty_result_file)
    description = describe_query(connector, spec.query)
    columns = {d[0]: ColumnType.from_description(d) for d in description}
    if spec.split_by not in columns:
        raise ConfigError(
            "split_by",
            f"{spec.split_by!r} is not a column of the query result (columns: {', '.join(columns)})",
            "name a column the query returns, or leave split_by empty for a single stream",
        )
    column_sql = sqlmod.quote_identifier(spec.split_by, field="split_by")
    stats_sql = stats_query(sqlmod.wrap(spec.query), column_sql)
    with connector.session() as cursor:
        run_server_call(connector, "planning chunks", lambda: cursor.execute(stats_sql))
        minimum, maximum, rows, non_null = cursor.fetchone()
    stats = SplitStats(minimum=minimum, maximum=maximum, rows=int(rows), non_null_rows=int(non_null))
    log.info("split_by %s: min=%s max=%s rows=%s non-null=%s", spec.split_by, minimum, maximum, rows, non_null)
    chunks = split_plan(
        column_sql, columns[spec.split_by].type_name, stats, chunk_size=spec.chunk_size,
        num_chunks=spec.num_chunks, max_chunks=spec.max_chunks, empty_result_file=spec.empty_result_file,
    )
    wanted = (spec.num_chunks or math.ceil(stats.non_null_rows / spec.chunk_size)) + (stats.rows > stats.non_null_rows)
    if wanted > spec.max_chunks:
        log.warning("%d chunks of %s rows would be more than the %d mapped tasks allowed ([core] max_map_length): "
                    "merged into %d larger chunks", wanted, f"{spec.chunk_size:,}", spec.max_chunks, len(chunks))
    return chunks


def iter_raw_batches(cursor: Any) -> Iterator[Any]:
    """Stream impyla column batches until the server says there are no more rows.

    ``cursor.fetchcbatch()`` returns None on any empty fetch, even when the server still expects
    rows (Impala answers empty when its fetch timeout passes), so we loop on ``expect_more_rows``
    the way impyla's own cursor iteration does, one batch at a time instead of all at once.
    Only an *empty* fetch without ``expect_more_rows`` ends the stream: some servers (Spark's
    Thrift Server) report ``hasMoreRows=false`` on every full batch.
    """
    operation = cursor._last_operation  # noqa: SLF001 - see docstring; impyla is pinned
    while True:
        batch = operation.fetch(cursor.description, cursor.buffersize,
                                convert_types=False, convert_strings_to_unicode=False)
        if len(batch):
            yield batch
        elif not batch.expect_more_rows:
            return


@dataclass
class Progress:
    """Periodic progress lines: rows, rows/s and bytes, at most one per ``every`` seconds."""

    label: str
    every: float = 10.0
    sink: Callable[[str], None] = log.info
    started: float = field(default_factory=time.monotonic)
    _last: float = 0.0

    def update(self, rows: int, written: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.every:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        self.sink(f"{self.label}: {rows:,} rows, {rows / elapsed:,.0f} rows/s, "
                  f"{written / 1e6:,.1f} MB written, {elapsed:,.1f}s" + (" (done)" if final else ""))


def extract_chunk(
    connector: SourceConnector,
    spec: ExtractSpec,
    chunk: Chunk,
    output_url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Run one chunk's query and write its files; return the chunk's manifest."""
    fs, directory = fsspec.core.url_to_fs(output_url, **(storage_options or {}))
    _check_writable(fs, directory, output_url)
    query = sqlmod.with_predicate(spec.query, chunk.predicate, spec.order_by_sql,
                                  allow_non_select=spec.allow_non_select)
    progress = progress or Progress(label=f"chunk {chunk.index}")
    with connector.session(columnar=True, fetch_size=spec.fetch_size) as cursor:
        run_server_call(connector, f"chunk {chunk.index} query", lambda: cursor.execute(query))
        if not cursor.description:
            raise ExtractError("the statement returned no result set; an extract needs a query that returns rows")
        schema = arrow_schema(cursor.description, spec.timestamp_unit)
        converter = BatchConverter(schema)
        writer = RollingFileWriter(
            fs, directory, chunk.index, schema, spec.file_format, spec.chunk_size,
            write_empty_file=chunk.write_empty_file, row_group_rows=spec.row_group_rows,
        )
        batches = iter_raw_batches(cursor)
        fetch = lambda: run_server_call(connector, f"chunk {chunk.index} fetch", lambda: next(batches, None))  # noqa: E731
        try:
            with writer, Prefetcher(fetch) as prefetched:
                for raw in prefetched:
                    writer.write(converter.convert(raw))
                    progress.update(writer.rows, writer.bytes_written)
        except SourceError as exc:  # the writer has removed the chunk's files (RollingFileWriter.abort)
            raise _lost_mid_result(exc, connector, chunk, writer.rows) from exc
    progress.update(writer.rows, writer.bytes_written, final=True)
    return Manifest(files=writer.files, schema=schema, chunks=[chunk])


def _lost_mid_result(exc: SourceError, connector: SourceConnector, chunk: Chunk, rows: int) -> SourceError:
    """The fetch failure with what it means for the chunk: how far it got, that nothing is kept."""
    lost = _connection_lost(exc)
    why = (f"the connection to the server was lost in the middle of the result ({lost}: was the server "
           "stopped or restarted?)" if lost else "the fetch failed in the middle of the result")
    return SourceError(f"{exc}: {why} after {rows:,} rows; none of chunk {chunk.index}'s files were kept "
                       f"(re-run chunk {chunk.index} once {connector.address} answers again)")


_THRIFT_END_OF_FILE = 4  # thrift.transport.TTransport.TTransportException.END_OF_FILE


def _connection_lost(exc: BaseException) -> str | None:
    """Why the connection ended, if the server closed or reset it: impyla raises thrift's
    ``TTransportException`` ("TSocket read 0 bytes", or "unexpected exception" wrapping the
    ``ConnectionResetError`` in ``.inner``); None for any other failure (a timeout, a server error)."""
    pending, seen = [exc], set()
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, (ConnectionError, EOFError)):
            return getattr(error, "strerror", None) or str(error) or type(error).__name__
        if type(error).__name__ == "TTransportException" and getattr(error, "type", None) == _THRIFT_END_OF_FILE:
            return "closed by the server"
        pending += [error.__cause__, error.__context__, getattr(error, "inner", None)]
    return None


def _check_writable(fs: fsspec.AbstractFileSystem, directory: str, output_url: str) -> None:
    try:
        fs.makedirs(directory, exist_ok=True)
    except Exception as exc:
        raise ConfigError("output_path", f"cannot create {output_url!r}: {exc}",
                          "give a location this worker can write to") from exc


