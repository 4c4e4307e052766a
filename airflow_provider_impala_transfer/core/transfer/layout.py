"""Where one run's files live on a target: a hidden, run-scoped staging directory while chunks
arrive, then one final directory that only this run (or its re-run) ever writes.

    <root>/_impala_transfer_staging/<owner>[+<col>=<value>]/chunk-...   while transferring (readers skip '_')
    <root>/<col>=<value>/chunk-...                        published partition, or
    <root>/<run_key>/chunk-...                            published run (no partition)
    <root>/_impala_transfer_locks/<final>                 who is publishing that final directory
    <root>/_impala_transfer_txn/<final>                   what that publish moves, and how far it got
    <root>/_impala_transfer_previous/<final>              what it held, until the new run is confirmed

Publishing renames the staging directory to the final one, so readers see all of a run's files
or none of them, and a re-run replaces exactly its own directory; the replaced files wait under
``_impala_transfer_previous`` until every later check passed, and come back if one fails. A
:class:`Run` says which run it is on every target; :meth:`Run.at` places it under one root.

Every name the provider creates under these directories matches one of the patterns below
exactly; a sweep of leftovers removes nothing else (a name planted there, ``*`` or
``x\n../..``, is left alone), and :func:`inside` refuses any path it would remove that is not
strictly inside the directory it sweeps.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from airflow_provider_impala_transfer.core.common.partitions import clean_partition, partition_path
from airflow_provider_impala_transfer.core.common.uris import RUN_KEY, check_component, join, run_key
from airflow_provider_impala_transfer.core.errors import TransferError

STAGING_DIR = "_impala_transfer_staging"
LOCK_DIR = "_impala_transfer_locks"
TXN_DIR = "_impala_transfer_txn"
PREVIOUS_DIR = "_impala_transfer_previous"

# The names the provider gives, as patterns a listed name must match whole (``fullmatch``).
# A partition key is ``quote(col=value[/col=value])``: a column starts with a letter or '_'.
PARTITION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.~=%-]*")
STAGING_NAME = re.compile(rf"{RUN_KEY.pattern}(?:\+{PARTITION_KEY.pattern})?")  # Run.staging_name
FINAL_KEY = re.compile(rf"{RUN_KEY.pattern}|{PARTITION_KEY.pattern}")  # lock and txn names
# Leftovers of runs that died: a lock or staged copies older than STALE_AFTER belong to a run that
# is gone (no step of ours waits that long); an unpublished run's staging waits LEFTOVER_AFTER for
# its retry. The next run of the same target removes them.
STALE_AFTER = 24 * 3600
LEFTOVER_AFTER = 7 * 24 * 3600


@dataclass(frozen=True)
class Run:
    """A run's id and partition: the same on every target it writes to. ``dag_id`` (Airflow) keeps
    two DAGs' runs of the same id apart (scheduled run ids repeat across DAGs); ``group_id`` (the
    task group, e.g. ``impala_transfer``) keeps two groups of one DAG run apart: each has its own
    staging and holds locks in its own name."""

    run_id: str
    partition: dict[str, str] | None = field(default=None)
    dag_id: str | None = None
    group_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "partition", clean_partition(self.partition))
        check_component(self.key, "run_id")

    @property
    def key(self) -> str:
        """The run's path component: injective over (dag_id, run_id); a DAG id has no '/'. The
        final directory of a run without partition: every group of the run publishes there."""
        return run_key(self.run_id if self.dag_id is None else f"{self.dag_id}/{self.run_id}")

    @property
    def owner(self) -> str:
        """Who writes: the run, and its task group if it has one (injective: neither a DAG id
        nor a run id holds '/'). Names the run's staging and every lock it holds."""
        return self.key if self.group_id is None else run_key(f"{self.dag_id}/{self.run_id}/{self.group_id}")

    @property
    def staging_name(self) -> str:
        """The run's staging directory name: one per (run, group, partition), since one run may
        publish several partitions of one root (two task groups; two CLI dates under one run
        id). '+' occurs in neither a run key nor a quoted partition path, so it stays injective."""
        return self.owner if not self.partition else f"{self.owner}+{partition_key(self.partition)}"

    def at(self, root: str) -> RunLayout:
        return RunLayout(root=root, run=self)


def partition_key(partition: dict[str, str]) -> str:
    """A partition's directory path as one name ('/' of multi-column partitions escaped)."""
    return quote(partition_path(partition), safe="=-._")


@dataclass(frozen=True)
class RunLayout:
    """A run's directories under one target's root."""

    root: str
    run: Run

    @property
    def staging_dir(self) -> str:
        return join(self.root, STAGING_DIR, self.run.staging_name)

    @property
    def final_name(self) -> str:
        """The final directory relative to the root: ``ds=2024-01-01`` or the run key."""
        return partition_path(self.run.partition) if self.run.partition else self.run.key

    @property
    def final_dir(self) -> str:
        return join(self.root, self.final_name)

    @property
    def _final_key(self) -> str:
        # One name per final directory ('/' of multi-column partitions escaped, injectively).
        return partition_key(self.run.partition) if self.run.partition else self.run.key

    @property
    def lock_path(self) -> str:
        return join(self.root, LOCK_DIR, self._final_key)

    @property
    def txn_path(self) -> str:
        return join(self.root, TXN_DIR, self._final_key)

    @property
    def previous_dir(self) -> str:
        return join(self.root, PREVIOUS_DIR, self._final_key)


def inside(path: str, directory: str) -> str:
    """``path`` if, once normalised, it lies strictly below ``directory`` (same scheme and
    authority); a TransferError otherwise. Every removal of something found by a listing, and of
    a run's own directories, goes through this first."""
    (where, base), (where_too, target) = _split(directory), _split(path)
    normal = posixpath.normpath(target) if target else target
    below = normal.startswith(posixpath.normpath(base).rstrip("/") + "/")
    if not below or where != where_too or normal != target.rstrip("/"):
        raise TransferError(f"refusing to remove {path}: it is not strictly inside {directory}")
    return path


def _split(location: str) -> tuple[tuple[str, str], str]:
    """(scheme, authority) and path of a URI; a plain path (fsspec, ssh) is all path."""
    if "://" not in location:
        return ("", ""), location
    parts = urlsplit(location)
    return (parts.scheme.lower(), parts.netloc), parts.path
