"""Deliver one chunk with one method, verify it, and publish a run once every chunk arrived.

A method has delivered only when every file at the target has the manifest's size and sha256;
anything else is a failure of that method for that chunk, so the fallback chain moves on.
"""

from __future__ import annotations

import posixpath
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_impala_transfer.core.commands import TransferError
from airflow_provider_impala_transfer.core.destinations import Destination
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.layout import RunLayout
from airflow_provider_impala_transfer.core.methods import SourceFile, TransferMethod
from airflow_provider_impala_transfer.core.uris import join

VERIFY_MODES = ("sha256", "size")


class VerificationError(TransferError):
    """Bytes at the target differ from what was extracted."""


class PublishError(RuntimeError):
    """A run's files could not be made visible at their final location."""


def chunk_files(manifest: dict[str, Any]) -> list[SourceFile]:
    return [SourceFile.from_entry(entry) for entry in manifest["files"]]


def chunk_label(manifest: dict[str, Any]) -> str:
    indexes = sorted({entry["chunk"] for entry in manifest["files"]} |
                     {c["index"] for c in manifest.get("chunks", [])})
    return "chunk " + ",".join(str(i) for i in indexes) if indexes else "empty chunk"


def verify(destination: Destination, target_dir: str, files: Sequence[SourceFile], *,
           mode: str = "sha256") -> list[dict[str, Any]]:
    """Compare every delivered file with the manifest; raise on the first difference."""
    paths = [join(target_dir, f.name) for f in files]
    try:
        found = destination.file_info(paths, checksum=mode == "sha256")
    except TransferError as exc:
        raise VerificationError(f"cannot read back delivered files under {destination.describe(target_dir)}: {exc}") from exc
    delivered = []
    for f, path in zip(files, paths):
        size, digest = found[path]
        if size != f.bytes or (digest is not None and digest != f.sha256):
            raise VerificationError(
                f"{destination.describe(path)} differs from the extracted file: {size:,} bytes, "
                f"sha256 {digest or '(not checked)'}; expected {f.bytes:,} bytes, sha256 {f.sha256}")
        delivered.append({"name": f.name, "path": destination.describe(path), "bytes": size,
                          "sha256": digest or f.sha256, "checksum_verified": digest is not None})
    return delivered


def deliver_chunk(method: TransferMethod, manifest: dict[str, Any], layout: RunLayout, *,
                  overwrite: bool, verify_mode: str = "sha256",
                  log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Copy one chunk's files into the run's staging directory with ``method``, then verify."""
    record = deliver_files(method, chunk_files(manifest), layout, label=chunk_label(manifest),
                           overwrite=overwrite, verify_mode=verify_mode, log=log)
    record["rows"] = sum(int(e["rows"]) for e in manifest["files"])
    return record


def deliver_files(method: TransferMethod, files: Sequence[SourceFile], layout: RunLayout, *, label: str,
                  overwrite: bool, verify_mode: str = "sha256",
                  log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Copy ``files`` into the run's staging directory with ``method``, then verify every one."""
    target_dir = method.target_dir(layout)
    if files:
        log(f"{label}: {method.name} -> {method.destination.describe(target_dir)}")
        method.deliver(files, layout, overwrite=overwrite)
    delivered = verify(method.destination, target_dir, files, mode=verify_mode) if files else []
    for entry in delivered:
        log(f"verified {entry['path']}: {entry['bytes']:,} bytes, sha256 {entry['sha256']}")
    return {
        "method": method.name,
        "destination": method.destination.kind,
        "root": method.destination.root,
        "staging_dir": method.destination.describe(target_dir),
        "chunk": label,
        "files": delivered,
        "bytes": sum(e["bytes"] for e in delivered),
    }


@dataclass
class Attempt:
    """One method's try at one chunk, for the summary a person reads afterwards."""

    method: str
    error: str | None = None  # first line of the failure; None: delivered
    seconds: float = 0.0
    detail: str | None = None  # the whole failure (a tool's stderr tail follows its first line)

    @property
    def delivered(self) -> bool:
        return self.error is None


def deliver_with_fallback(candidates: Sequence[tuple[str, Callable[[], TransferMethod]]],
                          deliver: Callable[[TransferMethod, bool], dict[str, Any]], *,
                          label: str, log: Callable[[str], None] = lambda message: None,
                          on_attempt: Callable[[Attempt], None] = lambda attempt: None,
                          ) -> tuple[dict[str, Any] | None, list[Attempt]]:
    """Try each method in turn until one delivers (and verifies): the seed's fallback chain, in
    one process. ``candidates`` are (name, build) pairs, so a method that cannot even be set up
    (a missing setting) is a failed attempt like any other. ``deliver(method, overwrite)`` runs
    one attempt; after the first attempt, ``overwrite`` lets a method replace what an earlier
    one left in this run's staging directory. The DAG expresses the same chain as tasks."""
    attempts: list[Attempt] = []
    for name, build in candidates:
        started = time.monotonic()
        try:
            record = deliver(build(), bool(attempts))
        except (TransferError, ConfigError) as exc:
            text = str(exc).strip() or type(exc).__name__
            attempts.append(Attempt(name, text.splitlines()[0], time.monotonic() - started, text))
            log(f"{label}: {name} failed: {text}")
            on_attempt(attempts[-1])
            continue
        attempts.append(Attempt(name, None, time.monotonic() - started))
        log(f"{label}: delivered by {name}")
        on_attempt(attempts[-1])
        return record, attempts
    return None, attempts


def publish(destination: Destination, layout: RunLayout, expected: Sequence[str], allowed: Sequence[str],
            *, log: Callable[[str], None] = lambda message: None) -> str:
    """Rename the run's staging directory to its final directory, replacing the previous attempt.

    ``expected``: names this destination delivered; ``allowed``: every name of the run (another
    destination may be the same physical place). Unknown files in staging (from an earlier, longer
    attempt of this run) are removed first; other runs' directories are never touched.
    Idempotent: if staging is already gone and the final directory holds the files, it is done.
    """
    layout = layout.with_root(destination.root)
    staging, final = layout.staging_dir, layout.final_dir
    if not destination.is_dir(staging):
        present = set(destination.list_names(final)) if destination.is_dir(final) else set()
        missing = sorted(set(expected) - present)
        if missing:
            raise PublishError(f"nothing to publish: {destination.describe(staging)} is missing and "
                               f"{destination.describe(final)} lacks {', '.join(missing[:5])}")
        log(f"{destination.describe(final)} already published")
        return destination.describe(final)
    present = set(destination.list_names(staging))
    missing = sorted(set(expected) - present)
    if missing:
        raise PublishError(f"{destination.describe(staging)} lacks {', '.join(missing[:5])}: "
                           "deliver every chunk before publishing")
    stale = sorted(present - set(allowed))
    if stale:
        log(f"removing files of an earlier attempt: {', '.join(stale)}")
        destination.remove([join(staging, name) for name in stale])
    trash = None
    if destination.is_dir(final):
        trash = layout.trash_dir(uuid.uuid4().hex[:12])
        destination.makedirs(posixpath.dirname(trash))
        log(f"replacing this run's earlier data at {destination.describe(final)}")
        destination.move(final, trash)
    destination.makedirs(posixpath.dirname(final))
    destination.move(staging, final)
    log(f"published {destination.describe(final)}")
    if trash:
        destination.remove([trash], recursive=True)
    return destination.describe(final)


def publish_files(destination: Destination, staging_dir: str, final_dir: str, names: Sequence[str], *,
                  log: Callable[[str], None] = lambda message: None) -> list[str]:
    """Move verified files one by one from a staging directory into a directory other writers
    share (the seed's ``<target_path>/<table>/``): each name appears whole or not at all, and a
    file of the same name is replaced (the old one is moved aside first, then removed)."""
    destination.makedirs(final_dir)
    published, existing = [], set(destination.list_names(final_dir))
    for name in names:
        target = join(final_dir, name)
        aside = None
        if name in existing:
            aside = join(final_dir, f"_{name}.replaced-{uuid.uuid4().hex[:8]}")
            destination.move(target, aside)
        destination.move(join(staging_dir, name), target)
        if aside:
            destination.remove([aside])
        log(f"published {destination.describe(target)}")
        published.append(destination.describe(target))
    if destination.is_dir(staging_dir):
        destination.remove([staging_dir], recursive=True)
    return published


def publish_deliveries(records: Sequence[dict[str, Any]], layout: RunLayout,
                       destination_of: Callable[[str], Destination], *,
                       log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Publish a run whose chunks may have arrived by different methods: one rename per kind of
    destination (hdfs, ssh, fsspec), each told every name of the run (they may be one place)."""
    records = [r for r in records if r]
    all_names = [f["name"] for r in records for f in r["files"]]
    by_kind: dict[str, list[str]] = {}
    for record in records:
        by_kind.setdefault(record["destination"], []).extend(f["name"] for f in record["files"])
    published = {kind: publish(destination_of(kind), layout, names, all_names, log=log)
                 for kind, names in sorted(by_kind.items())}
    return {
        "published": published,
        "rows": sum(r["rows"] for r in records),
        "bytes": sum(r["bytes"] for r in records),
        "files": len(all_names),
        "methods": {r["chunk"]: r["method"] for r in records},
        "final_dir": published.get("hdfs") or published.get("fsspec") or next(iter(published.values()), None),
    }


def count_mismatch(counts: dict[str, int]) -> str | None:
    """Source COUNT(*) == rows in the files == rows published (== target COUNT(*)), or why not."""
    if len(set(counts.values())) == 1:
        return None
    return "row counts differ: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
