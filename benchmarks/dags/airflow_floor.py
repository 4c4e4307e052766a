"""The floor of the transfer DAG's cost in Airflow: the same shape of tasks doing nothing.

A plan, ``chunks`` mapped tasks (the extracts), a mapped group per chunk of two tasks (a method
and the join): the three task instances per chunk that a chunk delivered by its first method
starts; then four tasks (reconcile, publish, table, finalize). Triggered by ``benchmarks/airflow_overhead.py`` with
``{"chunks": C}``: what starting that many tasks costs on its scheduler and executor.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task, task_group

with DAG("airflow_floor", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         params={"chunks": Param(4, type="integer", minimum=1)}) as dag:

    @task
    def plan(params=None) -> list[int]:
        return list(range(int(params["chunks"])))

    @task
    def extract(chunk: int) -> int:
        return chunk

    @task_group(group_id="deliver")
    def deliver(chunk: int):
        @task
        def method(chunk: int) -> int:
            return chunk

        @task(trigger_rule="all_done")
        def delivered(chunk: int) -> int:
            return chunk

        sent = method(chunk)
        sent >> delivered(chunk)

    @task
    def step(name: str) -> str:
        return name

    chunks = extract.expand(chunk=plan())
    group = deliver.expand(chunk=chunks)
    after = [step.override(task_id=name)(name) for name in ("reconcile", "publish", "target_table", "finalize")]
    group >> after[0]
    for first, second in zip(after, after[1:]):
        first >> second
