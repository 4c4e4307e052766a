"""Make a run's verified files visible: its staging directory becomes its final directory, by
one rename per destination, so readers see all of a run's files or none of them."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable, Sequence

from airflow_provider_impala_transfer.core.common.uris import join
from airflow_provider_impala_transfer.core.errors import PublishError
from airflow_provider_impala_transfer.core.transfer.destinations import Destination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord, PublishResult


def publish(destination: Destination, run: Run, expected: Sequence[str], allowed: Sequence[str],
            *, log: Callable[[str], None] = lambda message: None) -> str:
    """Rename the run's staging directory to its final directory, replacing the previous attempt.

    ``expected``: names this destination delivered; ``allowed``: every name of the run (another
    destination may be the same physical place). Unknown files in staging (from an earlier, longer
    attempt of this run) are removed first; other runs' directories are never touched.
    Idempotent: if staging is already gone and the final directory holds the files, it is done.
    """
    layout = run.at(destination.root)
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
    published = {kind: publish(destination_of(kind), run, names, all_names, log=log)
                 for kind, names in sorted(by_kind.items())}
    return PublishResult(published=published, rows=sum(r.rows for r in records),
                         bytes=sum(r.bytes for r in records), files=len(all_names),
                         methods={r.chunk: r.method for r in records})
