"""The target as an Airflow asset: its table root (``target_path``) is the ``Asset``, and every run
that keeps a new partition there records one asset event whose extras say what it published.

The task that records it is the one after which the files stay: :class:`FinalizePublishOperator`
in ``impala_transfer_group`` (a run whose table step or counts fail is rolled back, and a task that
fails records no event), or a :class:`PublishOperator` that confirms its publish itself.

An ``Asset`` needs its URI when the DAG is parsed. A literal ``target_path`` gives it; a templated
one (a Param, a macro) is only known in the run, so ``impala_transfer_group`` then declares no
asset unless given one (``outlets=[Asset("hdfs://nn:8020/data/x")]``, the target the DAG expects).
The event's extras always name the directory the run really published (``published``) and the
root it published under (``target_path``); a run whose target is not the asset's URI says so in its log.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Asset

from airflow_provider_impala_transfer.core.common.secrets import redact_uri, redact_uris
from airflow_provider_impala_transfer.core.common.uris import normalize_uri
from airflow_provider_impala_transfer.core.transfer.records import PublishResult

log = logging.getLogger(__name__)


def target_asset(target_path: str, target_cluster: str | None = None) -> Asset | None:
    """The Asset of a literal ``target_path`` (normalized as the transfer writes it), or None for a
    URI Airflow does not accept as an asset (e.g. ``hdfs:///x`` without a namenode)."""
    uri = normalize_uri(target_path, "target_path", cluster=target_cluster)  # a bad literal fails at parse time
    try:
        return Asset(uri)
    except ValueError as exc:  # the scheme's provider refuses the URI; the transfer itself may still work
        log.warning("target_path %s: declared as no asset (%s)", redact_uri(uri), redact_uri(str(exc)))
        return None


def record_published(task: Any, context: Any, result: PublishResult, *, table: str | None = None) -> dict[str, Any]:
    """Give each ``Asset`` among ``task``'s outlets (a publish or finalize task) the extras of this
    run's event, which Airflow records when the task succeeds; return the extras.

    They say what a downstream DAG needs to read the new data without this run's XCom: the
    directory published, the root it is under, the partition, rows, files, bytes, the table.
    """
    root = normalize_uri(task.target_path, "target_path", cluster=task.target_cluster)
    # shown in the UI and handed to other DAGs: URIs without passwords (a reader has its own connection)
    extra = redact_uris({"published": result.final_dir, "target_path": root, "partition": task.partition or None,
                         "rows": result.rows, "files": result.files, "bytes": result.bytes, "table": table,
                         "dag_id": context["ti"].dag_id, "run_id": context["run_id"]})
    root = extra["target_path"]
    for outlet in task.outlets or ():
        if not isinstance(outlet, Asset):
            continue
        context["outlet_events"][outlet].extra = extra
        if outlet.uri.rstrip("/") != root.rstrip("/"):
            task.log.warning("asset %s: this run published under %s instead; its event names %s (extra "
                             "'published')", outlet.uri, root, extra["published"])
    return extra
