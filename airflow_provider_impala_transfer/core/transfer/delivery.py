"""Deliver one chunk with one method and verify it; walk the fallback chain until a method does.

A method has delivered only when every file at the target has the manifest's size and checksum;
anything else is a failure of that method for that chunk, so the fallback chain moves on. Which
checksum (``verify``):

* ``checksum`` (default): the target's own when it has one comparable with the manifest (HDFS:
  the whole file's CRC32C, computed by the DataNodes; nothing is read back), else sha256 read back;
* ``sha256``: always read every file back and hash it;
* ``size``: sizes only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from airflow_provider_impala_transfer.core.common.records import FileEntry, Manifest
from airflow_provider_impala_transfer.core.common.uris import join
from airflow_provider_impala_transfer.core.common.values import check_choice
from airflow_provider_impala_transfer.core.errors import ImpalaTransferError, TransferError, VerificationError
from airflow_provider_impala_transfer.core.transfer.destinations import Destination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.methods import TransferMethod
from airflow_provider_impala_transfer.core.transfer.records import DeliveredFile, DeliveryRecord

VERIFY_MODES = ("checksum", "sha256", "size")
DEFAULT_VERIFY = "checksum"


def check_verify_mode(mode: object, field: str = "verify") -> str:
    return check_choice(mode, field, VERIFY_MODES, "a verification mode")


def check_for(mode: str, destination: Destination, files: Sequence[FileEntry]) -> str:
    """What ``verify`` compares besides sizes: ``crc32c``, ``sha256`` or ``size`` (nothing)."""
    mode = check_verify_mode(mode)
    if mode != "checksum":
        return mode
    native = destination.native_checksum
    if native and all(getattr(f, native) for f in files):
        return native
    return "sha256"


def verify(destination: Destination, target_dir: str, files: Sequence[FileEntry], *,
           mode: str = DEFAULT_VERIFY) -> list[DeliveredFile]:
    """Compare every delivered file with the manifest; raise on the first difference."""
    paths = [join(target_dir, f.name) for f in files]
    check = check_for(mode, destination, files)
    try:
        found = destination.file_info(paths, checksum=None if check == "size" else check)
    except TransferError as exc:
        raise VerificationError(f"cannot read back delivered files under {destination.describe(target_dir)}: {exc}") from exc
    delivered = []
    for f, path in zip(files, paths):
        size, digest = found[path]
        expected = None if check == "size" else getattr(f, check)
        if size != f.bytes or digest != expected:
            what = f", {check} {digest}" if check != "size" else ""
            want = f", {check} {expected}" if check != "size" else ""
            raise VerificationError(f"{destination.describe(path)} differs from the extracted file: {size:,} bytes"
                                    f"{what}; expected {f.bytes:,} bytes{want}")
        delivered.append(DeliveredFile(name=f.name, path=destination.describe(path), bytes=size, sha256=f.sha256,
                                       crc32c=f.crc32c, check=check))
    return delivered


def deliver_chunk(method: TransferMethod, manifest: Manifest, run: Run, *, overwrite: bool,
                  verify_mode: str = DEFAULT_VERIFY, log: Callable[[str], None] = lambda message: None) -> DeliveryRecord:
    """Copy one chunk's files into the run's staging directory with ``method``, then verify."""
    record = deliver_files(method, manifest.files, run, label=manifest.label, overwrite=overwrite,
                           verify_mode=verify_mode, log=log)
    record.rows = manifest.rows
    return record


def deliver_files(method: TransferMethod, files: Sequence[FileEntry], run: Run, *, label: str,
                  overwrite: bool, verify_mode: str = DEFAULT_VERIFY,
                  log: Callable[[str], None] = lambda message: None) -> DeliveryRecord:
    """Copy ``files`` into the run's staging directory with ``method``, then verify every one."""
    counters = None
    if files:
        log(f"{label}: {method.name} -> {method.destination.describe(method.target_dir(run))}")
        counters = method.deliver(files, run, overwrite=overwrite)
    return verified(method, files, run, label=label, verify_mode=verify_mode, log=log, counters=counters)


def verify_delivery(method: TransferMethod, manifest: Manifest, run: Run, *, verify_mode: str = DEFAULT_VERIFY,
                    log: Callable[[str], None] = lambda message: None) -> DeliveryRecord:
    """The record of a chunk ``method`` has copied by other means (a deferred distcp job), once
    every file is verified."""
    record = verified(method, manifest.files, run, label=manifest.label, verify_mode=verify_mode, log=log)
    record.rows = manifest.rows
    return record


def verified(method: TransferMethod, files: Sequence[FileEntry], run: Run, *, label: str, verify_mode: str,
             log: Callable[[str], None], counters: dict[str, int] | None = None) -> DeliveryRecord:
    target_dir = method.target_dir(run)
    delivered = verify(method.destination, target_dir, files, mode=verify_mode) if files else []
    for entry in delivered:
        value = f" {getattr(entry, entry.check)}" if entry.check != "size" else ""
        log(f"verified {entry.path}: {entry.bytes:,} bytes, {entry.check}{value}")
    return DeliveryRecord(method=method.name, destination=method.destination.kind, root=method.destination.root,
                          staging_dir=method.destination.describe(target_dir), chunk=label, files=delivered,
                          counters=counters or {})


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
                          deliver: Callable[[TransferMethod, bool], DeliveryRecord], *,
                          label: str, log: Callable[[str], None] = lambda message: None,
                          on_attempt: Callable[[Attempt], None] = lambda attempt: None,
                          ) -> tuple[DeliveryRecord | None, list[Attempt]]:
    """Try each method in turn until one delivers (and verifies): the seed's fallback chain, in
    one process. ``candidates`` are (name, build) pairs, so a method that cannot even be set up
    (a missing setting) is a failed attempt like any other. ``deliver(method, overwrite)`` runs
    one attempt; after the first attempt, ``overwrite`` lets a method replace what an earlier
    one left in this run's staging directory. Any exception of an attempt (an ``OSError`` writing
    a listing, a parse error) fails that method, not the chain; ``KeyboardInterrupt`` and other
    ``BaseException``s end it. The DAG expresses the same chain as tasks."""
    attempts: list[Attempt] = []
    for name, build in candidates:
        started = time.monotonic()
        try:
            record = deliver(build(), bool(attempts))
        except Exception as exc:  # noqa: BLE001 - whatever stops a method (a full disk, a bad answer) fails that method
            text = str(exc).strip() or type(exc).__name__
            if not isinstance(exc, ImpalaTransferError):
                text = f"{type(exc).__name__}: {text}"
            attempts.append(Attempt(name, text.splitlines()[0], time.monotonic() - started, text))
            log(f"{label}: {name} failed: {text}")
            on_attempt(attempts[-1])
            continue
        attempts.append(Attempt(name, None, time.monotonic() - started))
        log(f"{label}: delivered by {name}")
        on_attempt(attempts[-1])
        return record, attempts
    return None, attempts
