"""Read what a local `airflow dags test` run did, from its SQLite metadata DB (demo and tests)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def latest_run(db_path: Path, dag_id: str) -> tuple[str, dict[tuple[str, int], str]]:
    """The newest run's state and its task instances' states by (task_id, map_index)."""
    with sqlite3.connect(db_path) as db:
        run_id, state = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
        rows = db.execute("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                          (dag_id, run_id))
        return state, {(task, index): task_state for task, index, task_state in rows}
