"""Leftover sweeps: what runs that died or never published left behind, removed by a later run.

A sweep reads names from a listing, and a listing is written by whoever can write the directory:
a name may hold a newline, ``..``, ``*`` or a leading ``-``. So a sweep removes only entries
whose whole name is one the provider gives (:mod:`~airflow_provider_impala_transfer.core.transfer.layout`
patterns), builds each path from such a name, checks it lies strictly inside the swept directory,
and removes it by that exact path (the stores' removals never expand a glob for these names:
none holds a glob character). Everything else is left alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping

from airflow_provider_impala_transfer.core.common.uris import join
from airflow_provider_impala_transfer.core.transfer.destinations import Destination
from airflow_provider_impala_transfer.core.transfer.layout import LEFTOVER_AFTER, STAGING_DIR, STAGING_NAME, Run, inside


_now = time.time  # the clock the sweeps read (a test moves it, as objects keep their write time)


def stale_entries(ages: Mapping[str, float], directory: str, pattern: re.Pattern[str], *, older_than: float,
                  keep: Collection[str] = ()) -> list[str]:
    """Paths under ``directory`` of the entries in ``ages`` (name -> last modified) whose names
    ``pattern`` matches whole, not in ``keep``, untouched for more than ``older_than`` seconds."""
    now = _now()
    names = sorted(name for name, when in ages.items()
                   if pattern.fullmatch(name) and name not in keep and now - when > older_than)
    return [inside(join(directory, name), directory) for name in names]


def sweep_stale_staging(destination: Destination, run: Run, *,
                        log: Callable[[str], None] = lambda message: None) -> list[str]:
    """Remove the staging directories of runs that never published and were last touched more
    than :data:`LEFTOVER_AFTER` ago (a failed run's delivered chunks wait there for its retry,
    but not forever). Called after a successful publish; this run's own directory is never touched."""
    staging_root = join(destination.root, STAGING_DIR)
    stale = stale_entries(destination.modified(staging_root), staging_root, STAGING_NAME,
                          older_than=LEFTOVER_AFTER, keep={run.staging_name})
    if stale:
        log(f"removing staging directories of runs that never published, untouched for "
            f"{LEFTOVER_AFTER // 86400:.0f} days: {', '.join(p.rsplit('/', 1)[1] for p in stale)}")
        destination.remove(stale, recursive=True)
    return stale
