"""Make a run's verified files visible: its staging directory becomes its final directory, by
one rename per destination, so readers see all of a run's files or none of them.

Publishing is a small transaction per final directory: :func:`publish` takes its lock and swaps
the directories, keeping what it replaced; after the later checks (the target table) the caller
either :func:`commit`\ s (drop the replaced files) or :func:`roll_back`\ s (put them back). A
crash in between is repaired by the run's next attempt, which finds its own lock."""

from __future__ import annotations

import posixpath
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from airflow_provider_impala_transfer.core.common.uris import join
from airflow_provider_impala_transfer.core.errors import PublishError, TransferError
from airflow_provider_impala_transfer.core.transfer.destinations import Destination
from airflow_provider_impala_transfer.core.transfer.layout import (
    LEFTOVER_AFTER,
    STAGING_DIR,
    STALE_AFTER,
    Run,
    RunLayout,
    partition_key,
)
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord, PublishResult


def publish(destination: Destination, run: Run, expected: Sequence[str], allowed: Sequence[str],
            *, log: Callable[[str], None] = lambda message: None) -> str | None:
    """Rename the run's staging directory to its final directory, under the final directory's lock.

    What the final directory held is moved aside (:attr:`RunLayout.previous_dir`), not deleted:
    :func:`commit` drops it once every later check passed, :func:`roll_back` puts it back. The
    lock stays held until then. ``expected``: names this destination delivered; ``allowed``: every
    name of the run (another destination may be the same physical place). Unknown files in staging
    (from an earlier, longer attempt of this run) are removed first; other runs' directories are
    never touched. Idempotent: a retry after the rename finds the files in place. Returns where
    the replaced files wait, or None.
    """
    layout = run.at(destination.root)
    staging, final, previous = layout.staging_dir, layout.final_dir, layout.previous_dir
    acquire(destination, layout, log=log)
    try:
        if destination.is_dir(previous):
            if not destination.is_dir(staging) and _holds(destination, final, expected):
                log(f"{destination.describe(final)} already published; the replaced files wait at "
                    f"{destination.describe(previous)}")
                return destination.describe(previous)
            log(f"an earlier attempt of this run did not finish: restoring {destination.describe(final)}")
            _restore(destination, layout, log=log)
        if not destination.is_dir(staging):
            if not _holds(destination, final, expected):
                raise PublishError(f"nothing to publish: {destination.describe(staging)} is missing and "
                                   f"{destination.describe(final)} lacks some of {', '.join(sorted(expected)[:5])}")
            log(f"{destination.describe(final)} already published")
            release(destination, layout)  # nothing was replaced: nothing to confirm or restore
            return None
        present = set(destination.list_names(staging))
        missing = sorted(set(expected) - present)
        if missing:
            raise PublishError(f"{destination.describe(staging)} lacks {', '.join(missing[:5])}: "
                               "deliver every chunk before publishing")
        stale = sorted(present - set(allowed))
        if stale:
            log(f"removing files of an earlier attempt: {', '.join(stale)}")
            destination.remove([join(staging, name) for name in stale])
        replaced = destination.is_dir(final)
        if replaced:
            destination.makedirs(posixpath.dirname(previous))
            log(f"replacing {destination.describe(final)}; its files wait at {destination.describe(previous)} "
                "until the run's checks pass")
            destination.move(final, previous)
        destination.makedirs(posixpath.dirname(final))
        try:
            destination.move(staging, final)
        except BaseException:
            if replaced and not destination.is_dir(final):
                destination.move(previous, final)
            raise
        log(f"published {destination.describe(final)}")
        return destination.describe(previous) if replaced else None
    except BaseException:
        release(destination, layout)
        raise


def commit(destination: Destination, run: Run, *, log: Callable[[str], None] = lambda message: None) -> None:
    """The run passed every check: drop the files it replaced and release the lock."""
    layout = run.at(destination.root)
    if not _owns(destination, layout):
        return
    if destination.is_dir(layout.previous_dir):
        log(f"removing the replaced files at {destination.describe(layout.previous_dir)}")
        destination.remove([layout.previous_dir], recursive=True)
    release(destination, layout)
    try:
        sweep_stale_staging(destination, run, log=log)
    except TransferError as exc:  # housekeeping: the run itself is done and confirmed
        log(f"could not sweep old staging directories: {exc}")


def roll_back(destination: Destination, run: Run, *, log: Callable[[str], None] = lambda message: None) -> bool:
    """A check after publishing failed: the final directory gets back what it held before this run
    (or disappears if it held nothing), the run's files go back to staging for a retry, and the
    lock is released. Does nothing (False) unless this run holds the lock."""
    layout = run.at(destination.root)
    if not _owns(destination, layout):
        return False
    _restore(destination, layout, log=log)
    release(destination, layout)
    return True


def _restore(destination: Destination, layout: RunLayout, *, log: Callable[[str], None],
             staging: str | None = None) -> None:
    """Put ``previous`` back as the final directory; the unconfirmed files there go back to
    ``staging`` (the run's own, unless the lock's owner was another run)."""
    staging, final, previous = staging or layout.staging_dir, layout.final_dir, layout.previous_dir
    had_previous = destination.is_dir(previous)
    if destination.is_dir(final) and (had_previous or not destination.is_dir(staging)):
        if destination.is_dir(staging):  # a newer delivery of this run waits there: keep that one
            destination.remove([final], recursive=True)
        else:
            destination.makedirs(posixpath.dirname(staging))
            destination.move(final, staging)
            log(f"unpublished {destination.describe(final)}: the run's files wait in {destination.describe(staging)}")
    if had_previous:
        destination.move(previous, final)
        log(f"restored {destination.describe(final)} as it was before this run")


def _holds(destination: Destination, final: str, expected: Sequence[str]) -> bool:
    return destination.is_dir(final) and not set(expected) - set(destination.list_names(final))


# The lock -------------------------------------------------------------------------------------
# One small file per final directory names the run publishing it. Two runs of the same partition
# (another DAG, a manual run next to the scheduled one) cannot both rename into it: the second
# fails and changes nothing. The same run (a retry after a crash) takes its own lock back.

def _owner_text(run: Run) -> str:
    return f"{run.key} {socket.gethostname()} {datetime.now(timezone.utc).isoformat(timespec='seconds')}"


def acquire(destination: Destination, layout: RunLayout, *, log: Callable[[str], None] = lambda message: None) -> None:
    destination.makedirs(posixpath.dirname(layout.lock_path))
    if destination.create_exclusive(layout.lock_path, _owner_text(layout.run)):
        return
    held = destination.read_text(layout.lock_path)
    if held is not None and held.split(" ", 1)[0] == layout.run.key:
        log(f"taking back the lock an earlier attempt of this run left ({held.strip()})")
        return
    owner, _, rest = (held or "?").strip().partition(" ")
    since = _since(rest)
    if since is not None and time.time() - since > STALE_AFTER:
        # Its run died between publish and finalize long ago (every step of ours is bounded far
        # below this): do what that run's retry would have done, then take the directory over.
        log(f"the lock of run {owner} is from {rest.split()[-1]}: that run is long gone; restoring what it replaced")
        owner_run = owner + (f"+{partition_key(layout.run.partition)}" if layout.run.partition else "")
        _restore(destination, layout, log=log, staging=join(destination.root, STAGING_DIR, owner_run))
        destination.remove([layout.lock_path])
        if destination.create_exclusive(layout.lock_path, _owner_text(layout.run)):
            return
        held = destination.read_text(layout.lock_path) or "?"
        owner, _, rest = held.strip().partition(" ")
    raise PublishError(
        f"{destination.describe(layout.final_dir)} is being published by run {owner} ({rest or 'just now'}); "
        f"nothing was changed (wait for that run and retry; if it is no longer running, remove "
        f"{destination.describe(layout.lock_path)} and retry: a retry restores what it replaced)")


def _since(rest: str) -> float | None:
    """The time in a lock's text (``<run key> <host> <ISO time>``), or None if unreadable."""
    try:
        return datetime.fromisoformat(rest.split()[-1]).timestamp()
    except (IndexError, ValueError):
        return None


def sweep_stale_staging(destination: Destination, run: Run, *,
                        log: Callable[[str], None] = lambda message: None) -> list[str]:
    """Remove the staging directories of runs that never published and were last touched more
    than :data:`LEFTOVER_AFTER` ago (a failed run's delivered chunks wait there for its retry,
    but not forever). Called after a successful publish; this run's own directory is never touched."""
    staging_root = join(destination.root, STAGING_DIR)
    now = time.time()
    stale = sorted(name for name, when in destination.modified(staging_root).items()
                   if name != run.staging_name and now - when > LEFTOVER_AFTER)
    if stale:
        log(f"removing staging directories of runs that never published, untouched for "
            f"{LEFTOVER_AFTER // 86400:.0f} days: {', '.join(stale)}")
        destination.remove([join(staging_root, name) for name in stale], recursive=True)
    return stale


def release(destination: Destination, layout: RunLayout) -> None:
    if _owns(destination, layout):
        destination.remove([layout.lock_path])


def _owns(destination: Destination, layout: RunLayout) -> bool:
    held = destination.read_text(layout.lock_path)
    return held is not None and held.split(" ", 1)[0] == layout.run.key


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


def publish_deliveries(records: Sequence[DeliveryRecord], run: Run,
                       destination_of: Callable[[str], Destination], *, allow_split: bool = False,
                       log: Callable[[str], None] = lambda message: None) -> PublishResult:
    """Publish a run whose chunks may have arrived by different methods: one rename per kind of
    destination (hdfs, ssh, fsspec), each told every name of the run (they may be one place).

    Chunks that reached different kinds of destination (some by scp to another host) would leave
    each reader with part of the run: refused before anything is renamed, unless ``allow_split``
    (the user knows the places are one, e.g. an scp host that is an HDFS NFS gateway)."""
    records = [r for r in records if r]
    all_names = [f.name for r in records for f in r.files]
    by_kind: dict[str, list[str]] = {}
    for record in records:
        by_kind.setdefault(record.destination, []).extend(f.name for f in record.files)
    if len(by_kind) > 1 and not allow_split:
        where = "; ".join(f"{kind}: {', '.join(r.chunk for r in records if r.destination == kind)} at "
                          f"{next(r.root for r in records if r.destination == kind)}" for kind in sorted(by_kind))
        raise PublishError(f"the run's chunks arrived at different places ({where}); each reader would see only "
                           "part of the run, so nothing was published (deliver every chunk to one place, e.g. "
                           "re-run with the failing method fixed, or set allow_split_publish / "
                           "--allow-split-publish if the places are one)")
    published, replaced = {}, {}
    try:
        for kind, names in sorted(by_kind.items()):
            destination = destination_of(kind)
            previous = publish(destination, run, names, all_names, log=log)
            published[kind] = destination.describe(run.at(destination.root).final_dir)
            if previous:
                replaced[kind] = previous
    except BaseException:
        roll_back_kinds(list(published), run, destination_of, log=log)
        raise
    return PublishResult(published=published, rows=sum(r.rows for r in records),
                         bytes=sum(r.bytes for r in records), files=len(all_names),
                         methods={r.chunk: r.method for r in records}, replaced=replaced)


def commit_kinds(kinds: Sequence[str], run: Run, destination_of: Callable[[str], Destination], *,
                 log: Callable[[str], None] = lambda message: None) -> None:
    """:func:`commit` on every kind of destination the run published to."""
    for kind in kinds:
        commit(destination_of(kind), run, log=log)


def roll_back_kinds(kinds: Sequence[str], run: Run, destination_of: Callable[[str], Destination], *,
                    log: Callable[[str], None] = lambda message: None) -> list[str]:
    """:func:`roll_back` on every kind; returns the kinds restored. Tries every kind even if one
    fails, then raises the first failure."""
    restored, failure = [], None
    for kind in kinds:
        try:
            if roll_back(destination_of(kind), run, log=log):
                restored.append(kind)
        except Exception as exc:  # noqa: BLE001 - the others must still be restored
            log(f"restoring the {kind} target failed: {exc}")
            failure = failure or exc
    if failure is not None:
        raise failure
    return restored
