"""The records that cross stage boundaries: a planned :class:`Chunk`, a written :class:`FileEntry`,
and the :class:`Manifest` of an extract (what the transfer must reproduce, byte for byte).

They travel through XCom as plain JSON (``to_dict``/``from_dict``). The Arrow schema is kept both
readable (name/type per column, for people and for CREATE TABLE) and exact (serialized IPC bytes,
base64) so a downstream step can rebuild the very same schema.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from airflow_provider_impala_transfer.core.common.secrets import redact_uris
from airflow_provider_impala_transfer.core.common.uris import local_path
from airflow_provider_impala_transfer.core.errors import ExtractError


@dataclass(frozen=True)
class Chunk:
    """One unit of extract work: the rows of the query for which ``predicate`` holds."""

    index: int
    predicate: str | None = None  # SQL over the wrapped query; None = every row
    write_empty_file: bool = False  # write a schema-only file if the chunk has no rows
    description: str = "all rows"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class FileEntry:
    """One file to move: where it is, its size and checksums, and (for extracted files) what it holds.

    ``crc32c`` is the whole file's CRC32C as Hadoop prints it (see :mod:`.checksums`); it and
    ``rows``/``chunk``/``part``/``format``/``compression`` are None where unknown (the Python API
    moves any file)."""

    path: str  # full URL (file:///..., hdfs://..., s3://...) so any client can open it
    bytes: int
    sha256: str
    crc32c: str | None = None
    rows: int | None = None
    chunk: int | None = None
    part: int | None = None
    format: str | None = None
    compression: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def local(self) -> str | None:
        """The path on this machine, for a ``file://`` URL or a plain absolute path."""
        return local_path(self.path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileEntry:
        return cls(**data)


def schema_to_dict(schema: pa.Schema) -> dict[str, Any]:
    return {
        "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
        "arrow_ipc_base64": base64.b64encode(schema.serialize().to_pybytes()).decode("ascii"),
    }


def schema_from_dict(data: dict[str, Any]) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["arrow_ipc_base64"])))


@dataclass
class Manifest:
    """What one or more chunks of an extract wrote, ordered by (chunk, part)."""

    files: list[FileEntry]
    schema: pa.Schema
    chunks: list[Chunk] = field(default_factory=list)
    output_path: str | None = None

    def __post_init__(self) -> None:
        self.files = sorted(self.files, key=lambda f: (f.chunk or 0, f.part or 0))

    @property
    def rows(self) -> int:
        return sum(f.rows or 0 for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def label(self) -> str:
        """``chunk 3`` (or ``chunk 1,2`` for a merged manifest): how logs and summaries name it."""
        indexes = sorted({f.chunk for f in self.files if f.chunk is not None} | {c.index for c in self.chunks})
        return "chunk " + ",".join(str(i) for i in indexes) if indexes else "empty chunk"

    def to_dict(self) -> dict[str, Any]:
        data = {
            "files": [f.to_dict() for f in self.files],
            "rows": self.rows,
            "bytes": self.bytes,
            "schema": schema_to_dict(self.schema),
            "chunks": [c.to_dict() for c in self.chunks],
        }
        if self.output_path is not None:
            data["output_path"] = self.output_path
        return redact_uris(data)  # XCom, shown in the UI: a task reads a store's credentials from its connection

    @classmethod
    def from_dict(cls, data: Manifest | dict[str, Any]) -> Manifest:
        """From XCom; a Manifest is returned as it is."""
        if isinstance(data, Manifest):
            return data
        return cls(files=[FileEntry.from_dict(f) for f in data["files"]], schema=schema_from_dict(data["schema"]),
                   chunks=[Chunk.from_dict(c) for c in data.get("chunks") or ()],
                   output_path=data.get("output_path"))

    @classmethod
    def merge(cls, manifests: Iterable[Manifest | dict[str, Any] | None]) -> Manifest:
        """Combine per-chunk manifests (the outputs of mapped extract tasks) into one."""
        parts = [cls.from_dict(m) for m in manifests if m]
        if not parts:
            raise ExtractError("no manifests to merge: did every extract task run?")
        schema = parts[0].schema
        for other in parts[1:]:
            if not other.schema.equals(schema):
                raise ExtractError(f"chunks disagree on the result schema: {schema} vs {other.schema}")
        chunks = sorted({c.index: c for m in parts for c in m.chunks}.values(), key=lambda c: c.index)
        return cls(files=[f for m in parts for f in m.files], schema=schema, chunks=chunks)
