"""What a transfer hands on: the :class:`DeliveryRecord` of one chunk (which method delivered
which verified files where) and the :class:`PublishResult` of a run. Both travel through XCom
as plain JSON (``to_dict``/``from_dict``), shown in the UI, so their URIs are without passwords
(:func:`~airflow_provider_impala_transfer.core.common.secrets.redact_uri`). They name places for
people and logs; a task that acts on a place builds it from its own arguments and connection (the
publish reads only kinds and file names from them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_impala_transfer.core.common.secrets import redact_uris


@dataclass(frozen=True)
class DeliveredFile:
    """A file in a run's staging directory, checked against the manifest."""

    name: str
    path: str  # as the destination describes it (a URI, or host:path for ssh)
    bytes: int
    sha256: str  # the manifest's
    crc32c: str | None  # the manifest's
    check: str  # what was compared besides the size: crc32c (read by HDFS itself), sha256 (read back), size

    @property
    def checksum_verified(self) -> bool:
        return self.check != "size"


@dataclass
class DeliveryRecord:
    """One chunk delivered by one method into the run's staging directory, verified."""

    method: str
    destination: str  # the destination kind: hdfs, ssh or fsspec
    root: str
    staging_dir: str
    chunk: str  # the chunk's label, e.g. "chunk 3"
    files: list[DeliveredFile] = field(default_factory=list)
    rows: int = 0
    counters: dict[str, int] = field(default_factory=dict)  # the tool's own, e.g. DistCp's Bytes Copied

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def checksum_verified(self) -> bool:
        return all(f.checksum_verified for f in self.files)

    @property
    def checks(self) -> str:
        """How the files were verified, e.g. ``crc32c`` or ``sha256``."""
        return ", ".join(sorted({f.check for f in self.files})) or "none"

    def to_dict(self) -> dict[str, Any]:
        return redact_uris({**asdict(self), "bytes": self.bytes})

    @classmethod
    def from_dict(cls, data: DeliveryRecord | dict[str, Any]) -> DeliveryRecord:
        if isinstance(data, DeliveryRecord):
            return data
        values = {k: v for k, v in data.items() if k != "bytes"}
        values["files"] = [DeliveredFile(**f) for f in values.get("files", [])]
        return cls(**values)


@dataclass
class PublishResult:
    """A published run: per destination kind its final directory, and what it holds."""

    published: dict[str, str]  # destination kind -> final directory
    rows: int
    bytes: int
    files: int
    methods: dict[str, str]  # chunk label -> the method that delivered it
    replaced: dict[str, str] = field(default_factory=dict)  # kind -> where the replaced files wait

    @property
    def final_dir(self) -> str | None:
        """Where readers look: the HDFS or fsspec directory when there is one."""
        p = self.published
        return p.get("hdfs") or p.get("fsspec") or next(iter(p.values()), None)

    def to_dict(self) -> dict[str, Any]:
        return redact_uris({**asdict(self), "final_dir": self.final_dir})

    @classmethod
    def from_dict(cls, data: PublishResult | dict[str, Any]) -> PublishResult:
        if isinstance(data, PublishResult):
            return data
        return cls(**{k: v for k, v in data.items() if k != "final_dir"})
