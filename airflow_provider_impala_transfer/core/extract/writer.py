"""Size-bounded, atomically published Parquet/CSV files from a stream of Arrow record batches.

* At most ``max_rows_per_file`` rows per file; a new part starts only when there is a row to put in
  it, so a total that divides evenly never leaves an empty trailing file.
* Each part is written under a hidden temporary name (``.`` prefix: Hive and Impala skip such
  files), fsync'ed, then renamed, so a reader never sees a half-written file.
* Names are deterministic per (chunk, part): a retried task overwrites its own files, and parts
  left from an earlier, longer attempt are removed, so a retry never duplicates rows.
* A chunk that fails part-way (the source dies mid-fetch) leaves none of its files, not even the
  parts it had finished: a finished-looking file must mean a finished chunk.
* The sha256 and byte count are computed while writing; nothing is read back.
* Memory is bounded by one row group (``row_group_rows``), never by the result size.

CSV holds each value's exact text, so that any reader parses back the same value:

* DECIMAL(p,s): plain notation at the column's scale, as Impala prints it (``0.0000000001``,
  ``-12.3400000000``; Arrow alone writes ``1E-10``).
* DOUBLE and FLOAT: the shortest text that parses back to the same double (``0.1``, ``1e+300``,
  ``-0``); a FLOAT is written as the double it widens to exactly (FLOAT 0.1 as
  ``0.10000000149011612``), so ``float(text)``, Impala and any 32-bit parser read back the same
  value. The shortest 32-bit text is not safe: ``7.038531e-26`` read through a double, as numpy
  and many parsers do, rounds to the neighbouring float. NaN and the infinities are ``NaN``,
  ``Infinity``, ``-Infinity``, the spellings Java's ``parseDouble`` (Hive, Spark), Impala and
  Python all read.
* Integers as integers, booleans ``true``/``false``, dates ``YYYY-MM-DD`` (``0001-01-01`` to
  ``9999-12-31``), timestamps ``YYYY-MM-DD HH:MM:SS.ffffff`` with every sub-second digit the unit
  keeps (9 for ``ns``).
* Every value is quoted (RFC 4180, ``"`` doubled); NULL is the only unquoted field, and it is
  empty. So ``""`` is an empty string and no text (``"NULL"``, ``"NaN"``) can read as NULL; with
  pyarrow: ``ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)``. In a
  one-column file a NULL row is an empty line, which readers skip unless told not to (pyarrow:
  ``ParseOptions(ignore_empty_lines=False)``).
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import posixpath
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.common.checksums import Digests
from airflow_provider_impala_transfer.core.common.records import FileEntry

OUTPUT_FORMATS = ("parquet", "csv")
COMPRESSIONS = {
    "parquet": ("snappy", "zstd", "gzip", "none"),
    "csv": ("none", "gzip"),
}
DEFAULT_COMPRESSION = {"parquet": "snappy", "csv": "none"}
DEFAULT_ROW_GROUP_ROWS = 128 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileFormat:
    """How chunk files are encoded."""

    output_format: str = "parquet"
    compression: str | None = None  # None = the format's default

    def __post_init__(self) -> None:
        fmt = str(self.output_format).lower()
        if fmt not in OUTPUT_FORMATS:
            raise ConfigError("output_format", f"{self.output_format!r} is not supported",
                              f"use one of {', '.join(OUTPUT_FORMATS)}")
        compression = DEFAULT_COMPRESSION[fmt] if self.compression in (None, "") else str(self.compression).lower()
        if compression not in COMPRESSIONS[fmt]:
            raise ConfigError("compression", f"{self.compression!r} is not supported for {fmt}",
                              f"use one of {', '.join(COMPRESSIONS[fmt])}")
        object.__setattr__(self, "output_format", fmt)
        object.__setattr__(self, "compression", compression)

    @property
    def extension(self) -> str:
        if self.output_format == "csv":
            return ".csv.gz" if self.compression == "gzip" else ".csv"
        return ".parquet"


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth Parquet dictionary encoding: text, flags, dates and narrow integers.

    Dictionary encoding is tried per column and abandoned only after its dictionary page fills;
    on high-cardinality 64-bit and floating columns (ids, amounts, timestamps) that attempt cost
    about two thirds of the write time and made files larger (measured: 437 ms / 38.9 MB with it
    on every column, 143 ms / 30.0 MB with it off, 1M rows x 9 columns).
    """
    def worth_it(t: pa.DataType) -> bool:
        return (pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_boolean(t)
                or pa.types.is_date(t) or (pa.types.is_integer(t) and t.bit_width <= 32))

    return [f.name for f in schema if worth_it(f.type)]


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    """The schema CSV is written with: decimal and floating columns become their text."""
    def text_type(t: pa.DataType) -> pa.DataType:
        return pa.string() if pa.types.is_decimal(t) or pa.types.is_floating(t) else t

    return pa.schema([f.with_type(text_type(f.type)) for f in schema])


def _csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with decimal and floating columns as their exact text (see the module doc)."""
    def text(column: pa.Array) -> pa.Array:
        if pa.types.is_decimal(column.type):
            return _decimal_text(column)
        if pa.types.is_floating(column.type):
            return _float_text(column)
        return column

    return pa.RecordBatch.from_arrays([text(c) for c in batch.columns], schema=schema)


def _decimal_text(column: pa.Array) -> pa.Array:
    """Plain notation at the column's scale. Arrow's text is plain only while the digits reach six
    places past the point, so each value moves 10**(p-s+1) away from zero (a fixed-width ``10…0``
    integer part, one digit wider than any value's) and a regex drops that prefix again."""
    precision, scale = column.type.precision, column.type.scale
    wide = pa.decimal256(precision + 2, scale)
    step = Decimal(10) ** (precision - scale + 1)
    negative = pc.less(column, pa.scalar(Decimal(0), column.type))
    away = pc.add(column.cast(wide), pc.if_else(negative, pa.scalar(-step, wide), pa.scalar(step, wide)))
    return pc.replace_substring_regex(away.cast(pa.string()), r"^(-?)10*(\d)", r"\1\2")


def _float_text(column: pa.Array) -> pa.Array:
    """Arrow's shortest round-trip text of the value as a double, with Java's spellings of NaN and
    the infinities (Arrow writes ``nan``, ``inf``, which Java's parseDouble refuses)."""
    text = pc.replace_substring(column.cast(pa.float64()).cast(pa.string()), "nan", "NaN")
    return pc.replace_substring(text, "inf", "Infinity")


def part_name(chunk: int, part: int, file_format: FileFormat) -> str:
    return f"chunk-{chunk:05d}-part-{part:05d}{file_format.extension}"


class _HashingSink(io.RawIOBase):
    """Counts and hashes (sha256 and CRC32C) every byte on its way to the real file."""

    def __init__(self, raw: Any):
        self._raw = raw
        self.digests = Digests()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        block = bytes(memoryview(data).cast("B"))
        self._raw.write(block)
        self.digests.update(block)
        return len(block)

    def tell(self) -> int:
        return self.digests.size

    def flush(self) -> None:
        self._raw.flush()


class _Part:
    """One output file being written: temporary name until ``commit``."""

    def __init__(self, fs: fsspec.AbstractFileSystem, directory: str, name: str,
                 schema: pa.Schema, file_format: FileFormat, row_group_rows: int):
        self.fs = fs
        self.final_path = posixpath.join(directory, name)
        self.tmp_path = posixpath.join(directory, f".{name}.{uuid.uuid4().hex}.inprogress")
        self.schema = schema
        self.file_format = file_format
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._raw = open(self.tmp_path, "wb") if _is_local(fs) else fs.open(self.tmp_path, "wb")
        self._sink = _HashingSink(self._raw)
        if file_format.output_format == "parquet":
            compression = None if file_format.compression == "none" else file_format.compression
            self._stream: Any = None
            self._writer: Any = pq.ParquetWriter(self._sink, schema, compression=compression,
                                                 use_dictionary=dictionary_columns(schema))
        else:
            self._stream = (gzip.GzipFile(fileobj=self._sink, mode="wb", mtime=0, filename="")
                            if file_format.compression == "gzip" else None)
            self._text_schema = _csv_schema(schema)
            self._writer = pacsv.CSVWriter(self._stream or self._sink, self._text_schema,
                                           write_options=pacsv.WriteOptions(quoting_style="all_valid"))

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self.file_format.output_format == "csv":
            self._writer.write_batch(_csv_batch(batch, self._text_schema))
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush_row_group()

    def _flush_row_group(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._pending, self._pending_rows = [], 0

    def commit(self, chunk: int, part: int) -> FileEntry:
        self._flush_row_group()
        self._writer.close()
        if self._stream is not None:
            self._stream.close()
        self._raw.flush()
        if _is_local(self.fs):
            os.fsync(self._raw.fileno())
        self._raw.close()
        _publish(self.fs, self.tmp_path, self.final_path)
        return FileEntry(
            path=_url(self.fs, self.final_path), rows=self.rows, bytes=self._sink.digests.size,
            sha256=self._sink.digests.sha256, crc32c=self._sink.digests.crc32c, chunk=chunk, part=part,
            format=self.file_format.output_format, compression=self.file_format.compression,
        )

    def abort(self) -> None:
        """Drop the temporary file. The format writer is closed first (into the doomed temporary)
        so it cannot write its footer into a closed file later, at garbage collection."""
        try:
            for closable in (self._writer, self._stream):
                if closable is not None:
                    try:
                        closable.close()
                    except Exception:  # noqa: BLE001 - the file is being discarded anyway
                        continue
            self._raw.close()
        finally:
            if self.fs.exists(self.tmp_path):
                self.fs.rm(self.tmp_path)


class RollingFileWriter:
    """Writes one chunk's rows as ``chunk-CCCCC-part-PPPPP`` files of at most N rows each."""

    def __init__(self, fs: fsspec.AbstractFileSystem, directory: str, chunk: int, schema: pa.Schema,
                 file_format: FileFormat, max_rows_per_file: int, *, write_empty_file: bool = False,
                 row_group_rows: int = DEFAULT_ROW_GROUP_ROWS):
        if max_rows_per_file <= 0:
            raise ConfigError("chunk_size", f"{max_rows_per_file} is not > 0", "give a whole number > 0")
        self.fs = fs
        self.directory = directory.rstrip("/") or "/"
        self.chunk = chunk
        self.schema = schema
        self.file_format = file_format
        self.max_rows_per_file = max_rows_per_file
        self.write_empty_file = write_empty_file
        self.row_group_rows = min(row_group_rows, max_rows_per_file)
        self.files: list[FileEntry] = []
        self._part: _Part | None = None
        self.rows = 0
        fs.makedirs(self.directory, exist_ok=True)

    @property
    def bytes_written(self) -> int:
        done = sum(f.bytes for f in self.files)
        return done + (self._part._sink.tell() if self._part else 0)

    def _open_part(self) -> _Part:
        name = part_name(self.chunk, len(self.files), self.file_format)
        return _Part(self.fs, self.directory, name, self.schema, self.file_format, self.row_group_rows)

    def write(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self._part is None:
                self._part = self._open_part()
            room = self.max_rows_per_file - self._part.rows
            piece = batch.slice(offset, room)
            self._part.write(piece)
            offset += piece.num_rows
            self.rows += piece.num_rows
            if self._part.rows >= self.max_rows_per_file:
                self._commit_part()

    def _commit_part(self) -> None:
        assert self._part is not None
        self.files.append(self._part.commit(self.chunk, len(self.files)))
        self._part = None

    def close(self) -> list[FileEntry]:
        if self._part is not None:
            self._commit_part()
        elif not self.files and self.write_empty_file:
            self._part = self._open_part()
            self._commit_part()
        self._remove_stale_parts()
        return self.files

    def abort(self) -> None:
        """The chunk failed (the server went away, a value did not convert, Ctrl-C): drop the part
        being written *and* every part of this chunk already renamed to its final name, by this
        attempt or an earlier one. A finished-looking ``chunk-…-part-…`` file of a chunk that did
        not finish would read as a complete, short chunk. Removal is best effort: the failure that
        got us here is the error to raise, not a cleanup problem (logged)."""
        try:
            if self._part is not None:
                self._part.abort()
        except Exception as exc:  # noqa: BLE001 - see docstring
            log.warning("chunk %s: could not remove its unfinished file: %s", self.chunk, exc)
        finally:
            self._part = None
            self.files = []
            try:
                self._remove_stale_parts()
            except Exception as exc:  # noqa: BLE001 - see docstring
                log.warning("chunk %s: could not remove its files under %s after the failure: %s",
                            self.chunk, self.directory, exc)

    def _remove_stale_parts(self) -> None:
        """Parts (and crashed temporaries) of this chunk that are not this attempt's files: after
        success those an earlier, longer attempt left; after a failure all of them. Safe because
        one chunk is written by one task instance at a time."""
        keep = {posixpath.basename(f.path) for f in self.files}
        pattern = re.compile(rf"^\.?chunk-{self.chunk:05d}-part-\d{{5}}\.")
        for path in self.fs.ls(self.directory, detail=False):
            name = posixpath.basename(path.rstrip("/"))
            if pattern.match(name) and name not in keep:
                self.fs.rm(path)

    def __enter__(self) -> RollingFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _publish(fs: fsspec.AbstractFileSystem, tmp_path: str, final_path: str) -> None:
    if _is_local(fs):
        os.replace(tmp_path, final_path)  # atomic on POSIX, replaces an earlier attempt's file
        dir_fd = os.open(os.path.dirname(final_path) or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    else:
        fs.mv(tmp_path, final_path)


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs.unstrip_protocol(path)
