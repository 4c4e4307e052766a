"""The lock of a final directory: one small file naming who publishes it.

    <root>/_impala_transfer_locks/<final>      <owner> <run key> <host> <ISO time>

Two runs of one partition (another DAG, a manual run beside the scheduled one, two task groups
of one run) cannot both publish it: :func:`acquire` creates the file only if it is absent, in one
step on every store (:meth:`Destination.create_exclusive`; a store that cannot is refused unless
``publish_lock="none"`` is asked for), then reads it back and compares the owner. Each attempt
of the run's publish writes its time anew, and :func:`check_held` makes every step after
publishing (finalize's commit or roll back) fail loudly when the lock is no longer its own.

A lock older than the lease (:attr:`PublishLock.lease`, 24 h by default) belongs to a run that is
gone (every step of ours is bounded far below it): the next run restores what that run replaced
and takes the directory over. Breaking is an atomic compare as well: the breaker first creates a
claim named after the exact text of the stale lock, only if absent, so of two breakers exactly one
acts, and a lock refreshed in the meantime is never broken.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from airflow_provider_impala_transfer.core.common.values import check_choice, positive_seconds
from airflow_provider_impala_transfer.core.errors import GroupConflict, PublishError
from airflow_provider_impala_transfer.core.transfer.destinations import Destination
from airflow_provider_impala_transfer.core.transfer.layout import RunLayout

LOCK_MODES = ("atomic", "none")
DEFAULT_LEASE = 24 * 3600.0


@dataclass(frozen=True)
class PublishLock:
    """How publishing is guarded. ``mode``: ``atomic`` (default: a lock file created only if
    absent) or ``none`` (no lock: only for a target one run at a time ever publishes to, on a
    store that cannot create a file only if absent). ``lease``: seconds after which a lock whose
    owner never refreshed it is broken (``publish_lock_lease``)."""

    mode: str = "atomic"
    lease: float | timedelta = DEFAULT_LEASE

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", check_choice(self.mode, "publish_lock", LOCK_MODES, "a lock mode"))
        lease = self.lease.total_seconds() if isinstance(self.lease, timedelta) else self.lease
        object.__setattr__(self, "lease", positive_seconds(lease, "publish_lock_lease"))

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


@dataclass(frozen=True)
class Holder:
    """Who a lock's text names."""

    owner: str
    run: str
    rest: str  # host and time, as written
    text: str

    @classmethod
    def parse(cls, text: str | None) -> Holder:
        owner, run, rest = ((text or "").strip().split(" ", 2) + ["?", "?", ""])[:3]
        return cls(owner=owner or "?", run=run, rest=rest, text=text or "")

    @property
    def since(self) -> float | None:
        """When the owner last wrote it, or None if unreadable."""
        try:
            return datetime.fromisoformat(self.rest.split()[-1]).timestamp()
        except (IndexError, ValueError):
            return None

    def stale(self, lease: float) -> bool:
        since = self.since
        return since is not None and time.time() - since > lease


def lock_text(layout: RunLayout) -> str:
    run = layout.run
    return f"{run.owner} {run.key} {socket.gethostname()} {datetime.now(timezone.utc).isoformat(timespec='seconds')}"


def acquire(destination: Destination, layout: RunLayout, lock: PublishLock, *,
            restore: Callable[[Holder], None], log: Callable[[str], None] = lambda message: None) -> None:
    """Take the final directory's lock, or take back the one an earlier attempt of this run left.
    A lock past its lease is broken after ``restore(holder)`` put back what its run replaced.
    The lock's directory exists (:func:`~.publish.publish` makes it)."""
    if not lock.enabled:
        return
    path = layout.lock_path
    if _create(destination, layout):
        return
    holder = Holder.parse(destination.read_text(path))
    if holder.owner == layout.run.owner:
        log(f"taking back the lock an earlier attempt of this run left ({holder.rest})")
        destination.write_text(path, lock_text(layout))
        return
    if holder.stale(lock.lease):
        _break(destination, layout, holder, restore=restore, log=log)
        if _create(destination, layout):
            return
        holder = Holder.parse(destination.read_text(path))
    raise _held_by(destination, layout, holder)


def _create(destination: Destination, layout: RunLayout) -> bool:
    """Create the lock only if absent. On an object store, read it back too: a store that
    overwrote silently (an S3-compatible store ignoring If-None-Match, missed by the probe)
    shows another owner's text, and this run is not it. Elsewhere the primitive itself is
    exclusive (a rename, O_EXCL, a symlink), and a read would only cost time."""
    text = lock_text(layout)
    if not destination.create_exclusive(layout.lock_path, text):
        return False
    return not destination.moves_objects or destination.read_text(layout.lock_path) == text


def _break(destination: Destination, layout: RunLayout, holder: Holder, *,
           restore: Callable[[Holder], None], log: Callable[[str], None]) -> None:
    claim = f"{layout.lock_path}.broken-{hashlib.sha256(holder.text.encode()).hexdigest()[:16]}"
    if not destination.create_exclusive(claim, lock_text(layout)):
        raise PublishError(f"{destination.describe(layout.final_dir)}: the lock of run {holder.owner} ({holder.rest}) "
                           f"is past its lease and another run is restoring what that run replaced; nothing was "
                           f"changed (retry later; if no run is doing so, remove {destination.describe(claim)})")
    try:
        if destination.read_text(layout.lock_path) != holder.text:  # refreshed or broken meanwhile
            raise _held_by(destination, layout, Holder.parse(destination.read_text(layout.lock_path)))
        log(f"the lock of run {holder.owner} is from {holder.rest.split()[-1]}, past its lease: that run is gone; "
            "restoring what it replaced")
        restore(holder)
        destination.remove([layout.lock_path])
    finally:
        destination.remove([claim])


def _held_by(destination: Destination, layout: RunLayout, holder: Holder) -> PublishError:
    final = destination.describe(layout.final_dir)
    if holder.run == layout.run.key and holder.owner != layout.run.owner:
        return GroupConflict(f"{final} is being published by another task group of this run ({holder.owner}); "
                             "nothing was changed (give each group its own target_path or partition)")
    return PublishError(
        f"{final} is being published by run {holder.owner} ({holder.rest or 'just now'}); nothing was changed (wait "
        f"for that run and retry; if it is no longer running, remove {destination.describe(layout.lock_path)} and "
        "retry: a retry restores what it replaced)")


def check_held(destination: Destination, layout: RunLayout, lock: PublishLock) -> None:
    """Fail loudly unless this run holds the lock: another run may have broken it after the lease
    and restored or replaced the directory, so nothing this run decides may act on it."""
    if not lock.enabled:
        return
    text = destination.read_text(layout.lock_path)
    holder = Holder.parse(text)
    if text is not None and holder.owner == layout.run.owner:
        return
    now = f"held by run {holder.owner} ({holder.rest})" if text is not None else "gone"
    raise PublishError(
        f"{destination.describe(layout.final_dir)}: the lock this run took when publishing is {now}; another run "
        f"may have broken it after its lease ({lock.lease / 3600:g} h, publish_lock_lease) and restored or replaced "
        "the directory, so this run keeps nothing there (re-run it to publish again; its staged files are kept)")


def release(destination: Destination, layout: RunLayout, lock: PublishLock) -> None:
    """Remove the lock after checking it is this run's (:func:`check_held`)."""
    if lock.enabled:
        check_held(destination, layout, lock)
        destination.remove([layout.lock_path])
