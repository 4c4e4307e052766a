"""Make a run's verified files visible: its staging directory becomes its final directory, so
readers see all of a run's files or none of them.

Publishing is a small transaction per final directory, under the directory's lock
(:mod:`~airflow_provider_impala_transfer.core.transfer.lock`): :func:`publish` moves what the
final directory held aside and the staging directory into its place; after the later checks
(the target table) the caller either :func:`commit`\ s (drop the replaced files) or
:func:`roll_back`\ s (put them back).

Before anything moves, a record names every move (``_impala_transfer_txn/<final>``, a
:class:`Txn`) and says how far it got. On HDFS, the local disk and over ssh each move is one
rename; on an object store (S3, GCS, ABFS) a directory moves one object at a time, and a failure
half way (a 503 on the 2nd object, a killed worker) leaves part moved. Every move is idempotent
(:meth:`Destination.move_object` finishes a move begun earlier), so the record lets any later
attempt complete or undo it exactly: the run's retry, its finalize, or the run that breaks its lock
after the lease. A failure undoes what the attempt moved; if even that fails, the lock stays and
the record says what is left. Nothing is removed that the record does not prove is a copy or
superseded. After :func:`commit` the record stays, saying who published the directory last.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from airflow_provider_impala_transfer.core.common.uris import join
from airflow_provider_impala_transfer.core.errors import GroupConflict, PublishError, TransferError
from airflow_provider_impala_transfer.core.transfer.destinations import Destination
from airflow_provider_impala_transfer.core.transfer.layout import STAGING_DIR, Run, RunLayout, inside
from airflow_provider_impala_transfer.core.transfer.lock import Holder, PublishLock, acquire, check_held, release
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord, PublishResult
from airflow_provider_impala_transfer.core.transfer.sweep import sweep_stale_staging

Log = Callable[[str], None]

OPEN_PHASES = ("aside", "swap")  # "aside": the old files move to previous; "swap": the new ones into place


@dataclass
class Txn:
    """What one publish of a final directory moves, and how far it got: written before anything
    moves, then at each phase. On an object store it lists every object (relative to its
    directory); elsewhere each directory moves by one rename and the lists stay empty."""

    owner: str  # Run.owner
    run: str  # Run.key
    staging: str  # the owner's staging directory name (under _impala_transfer_staging)
    phase: str  # aside -> swap -> committed
    replaced: bool  # the final directory existed and its files are (being) moved aside
    replaced_objects: list[str] = field(default_factory=list)
    incoming_objects: list[str] = field(default_factory=list)
    before: dict | None = None  # the record this one replaced (who published the directory before)

    @property
    def open(self) -> bool:
        return self.phase in OPEN_PHASES

    def text(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> Txn:
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as exc:
            raise PublishError(f"unreadable publish record ({exc}): {text[:200]!r}") from None


def read_txn(destination: Destination, layout: RunLayout) -> Txn | None:
    text = destination.read_text(layout.txn_path)
    return None if text is None else Txn.parse(text)


def _write_txn(destination: Destination, layout: RunLayout, txn: Txn) -> None:
    destination.write_text(layout.txn_path, txn.text())


def publish(destination: Destination, run: Run, expected: Sequence[str], allowed: Sequence[str], *,
            lock: PublishLock = PublishLock(), log: Log = lambda message: None) -> str | None:
    """Move the run's staging directory into its final directory, under the final directory's lock.

    What the final directory held is moved aside (:attr:`RunLayout.previous_dir`), not deleted:
    :func:`commit` drops it once every later check passed, :func:`roll_back` puts it back. The
    lock stays held until then. ``expected``: names this destination delivered; ``allowed``: every
    name of the run (another destination may be the same physical place). Unknown files in staging
    (from an earlier, longer attempt of this run) are removed first; other runs' directories are
    never touched. Idempotent: a retry after the moves finds the files in place. Returns where
    the replaced files wait, or None.
    """
    layout = run.at(destination.root)
    staging, final, previous = layout.staging_dir, layout.final_dir, layout.previous_dir
    records = [layout.txn_path, *([layout.lock_path] if lock.enabled else [])]
    destination.makedirs(*(posixpath.dirname(path) for path in records))  # one command
    acquire(destination, layout, lock, restore=lambda holder: _restore_for(destination, layout, holder, log=log),
            log=log)
    txn = read_txn(destination, layout)
    try:
        dirs = destination.directories([staging, final, previous])  # one look; under the lock only we change them
        if txn is not None and txn.open:
            if txn.owner == run.owner and _swapped(destination, layout, txn, dirs) and staging not in dirs \
                    and _holds(destination, final, expected, dirs):
                log(f"{destination.describe(final)} already published" + (
                    f"; the replaced files wait at {destination.describe(previous)}" if txn.replaced else ""))
                return destination.describe(previous) if txn.replaced else None
            if txn.owner != run.owner:  # only without a lock (publish_lock='none'): someone is at it
                raise PublishError(f"{destination.describe(final)} is being published by run {txn.owner}; nothing "
                                   "was changed (wait for that run and retry)")
            log(f"an earlier attempt of this run did not finish: restoring {destination.describe(final)}")
            txn = _undo(destination, layout, txn, log=log)
            dirs = destination.directories([staging, final, previous])
        if txn is not None and txn.run == run.key and txn.owner != run.owner:
            raise GroupConflict(f"{destination.describe(final)} was published by another task group of this run "
                                f"({txn.owner}); nothing was changed (give each group its own target_path or "
                                "partition)")
        if _finish_commit(destination, layout, txn, dirs, log=log):
            dirs.discard(previous)
        if staging not in dirs:
            if txn is None or txn.owner != run.owner or not _holds(destination, final, expected, dirs):
                raise PublishError(f"nothing to publish: {destination.describe(staging)} is missing and "
                                   f"{destination.describe(final)} does not hold this run's files")
            log(f"{destination.describe(final)} already published by this run, and kept")
            if lock.enabled:
                release(destination, layout, lock)  # nothing was replaced: nothing to confirm or restore
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
        if previous in dirs:
            raise PublishError(f"{destination.describe(previous)} holds files that no publish record explains; nothing "
                               f"was changed (they may be the only copy of {destination.describe(final)}'s earlier "
                               "files: move them back or remove them by hand, then retry)")
        replaced = final in dirs
        objects = destination.moves_objects
        txn = Txn(run.owner, run.key, run.staging_name, "aside", replaced,
                  replaced_objects=destination.objects(final) if replaced and objects else [],
                  incoming_objects=destination.objects(staging) if objects else [], before=_before(txn))
        _write_txn(destination, layout, txn)  # before anything moves
    except BaseException:
        _release_after_failure(destination, layout, lock, log=log)
        raise
    try:
        if replaced:
            log(f"replacing {destination.describe(final)}; its files wait at {destination.describe(previous)} "
                "until the run's checks pass")
            _move_tree(destination, final, previous, txn.replaced_objects, seen=True)
        txn = replace(txn, phase="swap")
        if destination.moves_objects:  # elsewhere the directories themselves say it (_swapped)
            _write_txn(destination, layout, txn)
        _move_tree(destination, staging, final, txn.incoming_objects, seen=True)
    except BaseException as exc:
        log(f"publishing {destination.describe(final)} failed ({exc}); putting back what it held")
        try:
            _undo(destination, layout, txn, log=log)
        except BaseException as again:  # noqa: BLE001 - the record stays: the next attempt finishes the undo
            log(f"putting back {destination.describe(final)} failed too ({again}); the lock stays held and "
                f"{destination.describe(layout.txn_path)} says what is left: the run's retry, its finalize or "
                "the next run of this directory puts it back")
            raise exc from again
        _release_after_failure(destination, layout, lock, log=log)
        raise
    log(f"published {destination.describe(final)}")
    return destination.describe(previous) if replaced else None


def commit(destination: Destination, run: Run, *, lock: PublishLock = PublishLock(),
           log: Log = lambda message: None) -> None:
    """The run passed every check: drop the files it replaced and release the lock. Fails
    loudly (PublishError) when the lock or the record is not this run's: another run took the
    directory over, and nothing this run decided may be kept."""
    layout = run.at(destination.root)
    txn = read_txn(destination, layout)
    if txn is not None and txn.owner == run.owner and txn.phase == "committed":
        _finish_commit(destination, layout, txn, log=log)  # a retried finalize, or nothing was replaced
        if _holds_lock(destination, layout, lock):
            release(destination, layout, lock)
        return
    check_held(destination, layout, lock)
    if txn is None or txn.owner != run.owner or not txn.open:
        raise PublishError(f"{destination.describe(layout.final_dir)}: this run has nothing published to keep (the "
                           f"publish record names {txn.owner if txn else 'no run'}); nothing was kept (re-run it)")
    dirs = destination.directories([layout.final_dir, layout.previous_dir])
    if not _swapped(destination, layout, txn, dirs):
        raise PublishError(f"{destination.describe(layout.final_dir)}: this run's publish did not finish; nothing "
                           "was kept (retry the publish)")
    txn = replace(txn, phase="committed")
    _write_txn(destination, layout, txn)  # from here on the replaced files are superseded
    _finish_commit(destination, layout, txn, dirs, log=log)
    if lock.enabled:
        destination.remove([layout.lock_path])  # checked above; this run's last step
    try:
        sweep_stale_staging(destination, run, log=log)
    except TransferError as exc:  # housekeeping: the run itself is done and confirmed
        log(f"could not sweep old staging directories: {exc}")


def roll_back(destination: Destination, run: Run, *, lock: PublishLock = PublishLock(),
              log: Log = lambda message: None) -> bool:
    """A check after publishing failed: the final directory gets back what it held before this run
    (or disappears if it held nothing), the run's files go back to staging for a retry, and the
    lock is released. Does nothing (False) unless the record says this run's publish is open."""
    layout = run.at(destination.root)
    txn = read_txn(destination, layout)
    undo = txn is not None and txn.owner == run.owner and txn.open
    if undo:
        check_held(destination, layout, lock)
        _undo(destination, layout, txn, log=log)
    if _holds_lock(destination, layout, lock):  # also when an earlier attempt undid all but the release
        release(destination, layout, lock)
    return undo


def _undo(destination: Destination, layout: RunLayout, txn: Txn, *, log: Log) -> Txn | None:
    """Put the final directory back as it was before ``txn``: its new files back into the owner's
    staging directory (where a newer delivery of the run, if any, wins), then the replaced ones
    back into place. Each step can be run again; the record says which are left. Returns the
    record that is current afterwards (the one ``txn`` replaced)."""
    final, previous = layout.final_dir, layout.previous_dir
    staging = join(destination.root, STAGING_DIR, txn.staging)
    dirs = destination.directories([final, previous])
    if _swapped(destination, layout, txn, dirs):
        if final in dirs:
            destination.makedirs(posixpath.dirname(staging))
            _move_tree(destination, final, staging, txn.incoming_objects, keep_target=True)
            destination.touch(staging)  # waits a full week again for the run's retry
            log(f"unpublished {destination.describe(final)}: the run's files wait in {destination.describe(staging)}")
        if destination.moves_objects:  # the old files may share the new ones' names: never undo this again
            txn = replace(txn, phase="aside")
            _write_txn(destination, layout, txn)
    if txn.replaced:
        _move_tree(destination, previous, final, txn.replaced_objects)
        log(f"restored {destination.describe(final)} as it was before run {txn.owner}")
    before = Txn(**txn.before) if txn.before else None
    if before is not None:
        _write_txn(destination, layout, before)
    else:
        destination.remove([layout.txn_path])
    return before


def _swapped(destination: Destination, layout: RunLayout, txn: Txn, dirs: set[str]) -> bool:
    """Whether ``txn``'s new files were (being) moved into place. An object store's record says
    so (phase ``swap``); elsewhere each directory moves by one rename, so the directories say it
    (``dirs``: which of the layout's directories exist): the final directory is there again after
    the old one went aside (or there was none)."""
    if txn.phase != "aside" or destination.moves_objects:
        return txn.phase == "swap"
    return layout.final_dir in dirs and (not txn.replaced or layout.previous_dir in dirs)


def _finish_commit(destination: Destination, layout: RunLayout, txn: Txn | None, dirs: set[str] | None = None, *,
                   log: Log) -> bool:
    """A committed publish's replaced files are superseded: remove what is left of them (True if
    there was something). ``dirs``: which of the layout's directories exist, if just seen."""
    if txn is None or txn.phase != "committed" or not txn.replaced:
        return False
    if layout.previous_dir not in (dirs if dirs is not None else destination.directories([layout.previous_dir])):
        return False
    log(f"removing the replaced files at {destination.describe(layout.previous_dir)}")
    previous = inside(layout.previous_dir, destination.root)
    if destination.moves_objects:
        destination.remove([join(previous, name) for name in txn.replaced_objects])
    destination.remove([previous], recursive=True)
    return True


def _restore_for(destination: Destination, layout: RunLayout, holder: Holder, *, log: Log) -> None:
    """Breaking the lock of a run that is gone: undo the publish it left open, if any."""
    txn = read_txn(destination, layout)
    if txn is not None and txn.open:
        if txn.owner != holder.owner:
            raise PublishError(f"{destination.describe(layout.txn_path)} names run {txn.owner}, the lock run "
                               f"{holder.owner}; nothing was changed (inspect both by hand)")
        _undo(destination, layout, txn, log=log)


def _release_after_failure(destination: Destination, layout: RunLayout, lock: PublishLock, *, log: Log) -> None:
    """The attempt failed: another run may publish now, unless a publish of this run is still
    open (the record says what is left to put back): then the lock stays for the run's retry."""
    if not lock.enabled:
        return
    try:
        txn = read_txn(destination, layout)
        if txn is not None and txn.open and txn.owner == layout.run.owner:
            log(f"keeping {destination.describe(layout.lock_path)}: {destination.describe(layout.txn_path)} "
                "says what is left to put back")
            return
        release(destination, layout, lock)
    except (TransferError, PublishError) as exc:  # the publish's own error is the one to report
        log(f"could not release {destination.describe(layout.lock_path)}: {exc}")


def _holds_lock(destination: Destination, layout: RunLayout, lock: PublishLock) -> bool:
    return lock.enabled and Holder.parse(destination.read_text(layout.lock_path)).owner == layout.run.owner


def _before(txn: Txn | None) -> dict | None:
    """The last closed record, kept inside the next one (one level: who published before)."""
    return None if txn is None or txn.open else {**asdict(txn), "before": None}


def _move_tree(destination: Destination, source: str, target: str, objects: Sequence[str], *,
               keep_target: bool = False, seen: bool = False) -> None:
    """Move directory ``source`` to ``target``, resuming a move begun earlier. One rename where
    the store has directories; object by object (``objects``, as recorded) on an object store.
    ``keep_target``: where both exist, ``target`` holds the newer files (a newer delivery of the run).
    ``seen``: the caller has just seen ``source`` there and ``target`` absent, under the lock
    (each check is a JVM start on the ``hdfs dfs`` path)."""
    if destination.moves_objects:
        for name in objects:
            destination.move_object(join(source, name), join(target, name), keep_target=keep_target)
        return
    if seen:
        parent = posixpath.dirname(target)
        if posixpath.normpath(parent) != posixpath.normpath(destination.root):  # the root holds staging: it exists
            destination.makedirs(parent)
        destination.move(source, target)
        return
    if not destination.is_dir(source):
        if not destination.is_dir(target):
            raise TransferError(f"neither {destination.describe(source)} nor {destination.describe(target)} exists")
        return  # moved by an earlier attempt
    if destination.is_dir(target):
        if not keep_target:
            raise TransferError(f"cannot move {destination.describe(source)}: {destination.describe(target)} exists")
        destination.remove([inside(source, destination.root)], recursive=True)
        return
    destination.makedirs(posixpath.dirname(target))
    destination.move(source, target)


def _holds(destination: Destination, final: str, expected: Sequence[str], dirs: set[str]) -> bool:
    return final in dirs and not set(expected) - set(destination.list_names(final))


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
                       lock: PublishLock = PublishLock(), log: Log = lambda message: None) -> PublishResult:
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
            previous = publish(destination, run, names, all_names, lock=lock, log=log)
            published[kind] = destination.describe(run.at(destination.root).final_dir)
            if previous:
                replaced[kind] = previous
    except BaseException:
        roll_back_kinds(list(published), run, destination_of, lock=lock, log=log)
        raise
    return PublishResult(published=published, rows=sum(r.rows for r in records),
                         bytes=sum(r.bytes for r in records), files=len(all_names),
                         methods={r.chunk: r.method for r in records}, replaced=replaced)


def commit_kinds(kinds: Sequence[str], run: Run, destination_of: Callable[[str], Destination], *,
                 lock: PublishLock = PublishLock(), log: Log = lambda message: None) -> None:
    """:func:`commit` on every kind of destination the run published to."""
    for kind in kinds:
        commit(destination_of(kind), run, lock=lock, log=log)


def roll_back_kinds(kinds: Sequence[str], run: Run, destination_of: Callable[[str], Destination], *,
                    lock: PublishLock = PublishLock(), log: Log = lambda message: None) -> list[str]:
    """:func:`roll_back` on every kind; returns the kinds restored. Tries every kind even if one
    fails, then raises the first failure."""
    restored, failure = [], None
    for kind in kinds:
        try:
            if roll_back(destination_of(kind), run, lock=lock, log=log):
                restored.append(kind)
        except Exception as exc:  # noqa: BLE001 - the others must still be restored
            log(f"restoring the {kind} target failed: {exc}")
            failure = failure or exc
    if failure is not None:
        raise failure
    return restored
