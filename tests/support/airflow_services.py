"""Airflow as it runs for real, on one machine: api-server (127.0.0.1), scheduler, dag-processor and,
when asked, a triggerer, each its own process group, stopped by PID; LocalExecutor on the test's
SQLite metadata DB. Tests trigger runs and read what happened from that DB."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.airflow_runs import run_airflow
from tests.support.processes import answers, free_port, stop_process_group, wait_for

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


class AirflowServices:
    """``with AirflowServices(env, logs, parallelism=2, triggerer=True) as airflow: airflow.trigger(...)``.

    ``env`` is the tests' Airflow environment (``AIRFLOW_HOME`` with a migrated SQLite DB, the DAGs
    folder, connections); ``logs`` the directory each service's output goes to (``<name>.log``)."""

    def __init__(self, env: dict[str, str], logs: Path, *, parallelism: int = 2, triggerer: bool = False):
        self.port = free_port()
        self.env = dict(env, AIRFLOW__API__PORT=str(self.port), AIRFLOW__API__HOST="127.0.0.1",
                        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
                        AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__CORE__PARALLELISM=str(parallelism),
                        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
                        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5")
        self.logs = logs
        self.services = ["scheduler", "dag-processor", *(["triggerer"] if triggerer else [])]
        self.procs: list[subprocess.Popen] = []
        self.db = Path(env["AIRFLOW_HOME"]) / "airflow.db"

    def __enter__(self) -> AirflowServices:
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            # The api-server first: a task's supervisor fails if the Execution API does not answer yet.
            self._spawn("api-server", ["api-server", "-H", "127.0.0.1", "-p", str(self.port)])
            wait_for(lambda: answers(f"http://127.0.0.1:{self.port}/api/v2/monitor/health"), 120, "the api-server")
            for name in self.services:
                self._spawn(name, [name])
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as out:
            self.procs.append(subprocess.Popen([AIRFLOW, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def stop(self) -> None:
        for proc in self.procs:
            stop_process_group(proc.pid, 30)
        self.procs = []

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def _paused(self, dag_id: str) -> bool | None:
        """None while the dag-processor has not stored the DAG yet."""
        with sqlite3.connect(self.db) as conn:
            row = conn.execute("SELECT is_paused FROM dag WHERE dag_id = ?", (dag_id,)).fetchone()
        return None if row is None else bool(row[0])

    def trigger(self, dag_id: str, conf: dict, run_id: str, logical_date: str | None = None,
                timeout: float = 600) -> tuple[str, list[tuple[str, int, str, str | None]]]:
        """Unpause (once parsed), trigger, and wait until the run ends: its state and its task
        instances as (task_id, map_index, state, hostname) — a started task has a hostname."""
        wait_for(lambda: self._paused(dag_id) is not None, 120, f"{dag_id} parsed")
        run_airflow(self.env, "dags", "unpause", dag_id)
        assert self._paused(dag_id) is False, f"{dag_id} is still paused"
        run_airflow(self.env, "dags", "trigger", dag_id, "-c", json.dumps(conf), "-r", run_id,
                    *(["-l", logical_date] if logical_date else []))
        deadline = time.monotonic() + timeout
        while True:
            with sqlite3.connect(self.db) as conn:
                row = conn.execute("SELECT state FROM dag_run WHERE run_id = ?", (run_id,)).fetchone()
                if row and row[0] in ("success", "failed"):
                    rows = conn.execute("SELECT task_id, map_index, state, hostname FROM task_instance "
                                        "WHERE run_id = ?", (run_id,)).fetchall()
                    return row[0], rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} {run_id} did not end within {timeout:.0f}s:\n"
                                     f"{self.log('scheduler')[-3000:]}")
            time.sleep(1)
