"""A run's row counts must all be the same number: the source query's ``COUNT(*)``, the rows in
the extracted files and the rows delivered, checked before anything at the target changes (the
reconcile task, the CLI); then the rows published and the target table's ``COUNT(*)`` (finalize).
``count_rows`` runs its ``COUNT(*)`` through the connector's session, so a connector given a
``RunningQueries`` has it cancelled by the task's ``on_kill``."""

from __future__ import annotations

from airflow_provider_impala_transfer.core.common.connection import SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.errors import ReconcileError


def count_rows(connector: SourceConnector, query: str) -> int:
    """``SELECT COUNT(*)`` over the query: what a complete extract must add up to."""
    sql = f"SELECT COUNT(*) FROM ({query}\n) impala_transfer_count"
    with connector.session() as cursor:
        run_server_call(connector, "counting rows", lambda: cursor.execute(sql))
        return int(cursor.fetchone()[0])


def count_mismatch(counts: dict[str, int]) -> str | None:
    """Why the counts (e.g. source, files, published, target_table) differ, or None if they agree."""
    if len(set(counts.values())) <= 1:
        return None
    return "row counts differ: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())


def check_counts(counts: dict[str, int]) -> None:
    problem = count_mismatch(counts)
    if problem:
        raise ReconcileError(problem)
