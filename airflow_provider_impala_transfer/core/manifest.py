"""What an extract produced: one entry per file, with the checks a receiver needs.

Manifests travel through XCom, so everything here is plain JSON. The Arrow schema is kept both
readable (name/type per column, for people and for CREATE TABLE) and exact (serialized IPC bytes,
base64) so a downstream step can rebuild the very same schema.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

import pyarrow as pa

_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    path: str  # full URL (file:///..., s3://...) so any fsspec client can open it
    rows: int
    bytes: int
    sha256: str
    chunk: int
    part: int
    format: str
    compression: str | None

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


def build_manifest(files: Iterable[FileEntry], schema: pa.Schema, **extra: Any) -> dict[str, Any]:
    files = sorted(files, key=lambda f: (f.chunk, f.part))
    return {
        "files": [f.to_dict() for f in files],
        "rows": sum(f.rows for f in files),
        "bytes": sum(f.bytes for f in files),
        "schema": schema_to_dict(schema),
        **extra,
    }


def merge_manifests(manifests: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combine per-chunk manifests (the outputs of mapped extract tasks) into one."""
    manifests = [m for m in manifests if m]
    if not manifests:
        raise ValueError("no manifests to merge: did every extract task run?")
    schema = schema_from_dict(manifests[0]["schema"])
    for other in manifests[1:]:
        other_schema = schema_from_dict(other["schema"])
        if not other_schema.equals(schema):
            raise ValueError(f"chunks disagree on the result schema: {schema} vs {other_schema}")
    files = [FileEntry.from_dict(f) for m in manifests for f in m["files"]]
    return build_manifest(files, schema)


def sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(_HASH_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()
