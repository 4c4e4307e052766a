"""Where one run's files live on a target: a hidden, run-scoped staging directory while chunks
arrive, then one final directory that only this run (or its re-run) ever writes.

    <root>/_impala_transfer_staging/<run_key>/chunk-...   while transferring (readers skip '_')
    <root>/<col>=<value>/chunk-...                        published partition, or
    <root>/<run_key>/chunk-...                            published run (no partition)

Publishing renames the staging directory to the final one, so readers see all of a run's files
or none of them, and a re-run replaces exactly its own directory. A :class:`Run` says which run
it is on every target; :meth:`Run.at` places it under one target's root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_impala_transfer.core.common.partitions import clean_partition, partition_path
from airflow_provider_impala_transfer.core.common.uris import check_component, join, run_key

STAGING_DIR = "_impala_transfer_staging"
TRASH_DIR = "_impala_transfer_trash"


@dataclass(frozen=True)
class Run:
    """A run's id and partition: the same on every target it writes to."""

    run_id: str
    partition: dict[str, str] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "partition", clean_partition(self.partition))
        check_component(run_key(self.run_id), "run_id")

    @property
    def key(self) -> str:
        return run_key(self.run_id)

    def at(self, root: str) -> RunLayout:
        return RunLayout(root=root, run=self)


@dataclass(frozen=True)
class RunLayout:
    """A run's directories under one target's root."""

    root: str
    run: Run

    @property
    def staging_dir(self) -> str:
        return join(self.root, STAGING_DIR, self.run.key)

    @property
    def final_dir(self) -> str:
        return join(self.root, partition_path(self.run.partition) if self.run.partition else self.run.key)

    def trash_dir(self, token: str) -> str:
        return join(self.root, TRASH_DIR, f"{self.run.key}-{token}")
