"""Where one run's files live on a target: a hidden, run-scoped staging directory while chunks
arrive, then one final directory that only this run (or its re-run) ever writes.

    <root>/_impala_transfer_staging/<run_key>/chunk-...   while transferring (readers skip '_')
    <root>/<col>=<value>/chunk-...                        published partition, or
    <root>/<run_key>/chunk-...                            published run (no partition)

Publishing renames the staging directory to the final one, so readers see all of a run's files
or none of them, and a re-run replaces exactly its own directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.target_table import clean_partition
from airflow_provider_impala_transfer.core.uris import check_component, join

STAGING_DIR = "_impala_transfer_staging"
TRASH_DIR = "_impala_transfer_trash"


def run_key(run_id: str) -> str:
    """A run id as a path component every store accepts (Hadoop rejects ':' in names)."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", run_id)


def partition_path(partition: dict[str, str]) -> str:
    """``col=value[/col=value]``: the Hive layout the target table's partitions point at."""
    parts = []
    for column, value in (clean_partition(partition) or {}).items():
        if value.startswith("."):
            raise ConfigError("partition", f"value {value!r} of {column} would be a hidden directory",
                              "start it with a letter or digit")
        parts.append(f"{column}={value}")
    return "/".join(parts)


@dataclass(frozen=True)
class RunLayout:
    root: str
    run_id: str
    partition: dict[str, str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.partition is not None and not self.partition:
            object.__setattr__(self, "partition", None)
        if self.partition:
            partition_path(self.partition)

    @property
    def key(self) -> str:
        return check_component(run_key(self.run_id), "run_id")

    @property
    def staging_dir(self) -> str:
        return join(self.root, STAGING_DIR, self.key)

    @property
    def final_dir(self) -> str:
        return join(self.root, partition_path(self.partition) if self.partition else self.key)

    def trash_dir(self, token: str) -> str:
        return join(self.root, TRASH_DIR, f"{self.key}-{token}")

    def with_root(self, root: str) -> RunLayout:
        return RunLayout(root=root, run_id=self.run_id, partition=self.partition)
