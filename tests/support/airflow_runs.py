"""Read what a local `airflow dags test` run did, from its SQLite metadata DB (demo and tests)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path


def latest_run(db_path: Path, dag_id: str) -> tuple[str, dict[tuple[str, int], str]]:
    """The newest run's state and its task instances' states by (task_id, map_index)."""
    with sqlite3.connect(db_path) as db:
        run_id, state = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
        rows = db.execute("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                          (dag_id, run_id))
        return state, {(task, index): task_state for task, index, task_state in rows}


def run_airflow(env: dict[str, str], *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """The `airflow` CLI of this interpreter's environment; raises with its output tail on failure."""
    cli = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result
