"""The per-chunk fallback chain in Airflow, and the one place its rules are written down.

    route (once per run, first: the methods each chunk may try; a bad method fails before any extract)
    per chunk, in the mapped group ``deliver``:
        distcp ─► hdfs_put ─► hdfs_cp ─► scp      (each only if the one before did not deliver)
        fsspec                                     (a chain of its own)
        ─► delivered                               (fails unless one method delivered the chunk)

The chain itself (distcp -> hdfs put -> hdfs cp -> scp, entered at ``method``) is
``core.transfer.methods.chain_from``, shared with the CLI. In Airflow:

1. **Not chosen: skipped by the scheduler.** :class:`TransferRouteOperator` leaves the XCom a branch
   leaves for what it skips; the scheduler's ``NotPreviouslySkippedDep`` marks those methods skipped
   for every chunk at once (one row, never expanded). It does not mark them itself as ``BranchMixIn``
   does, which would hit the mapped tasks before their expansion.
2. **Not needed: skipped by the API server.** A method that delivered ends by raising
   ``DownstreamTasksSkipped`` with its chunk's later methods as ``(task_id, map_index)``, its record
   pushed first (that exception pushes no return value). ``SkipMixin.skip()`` cannot do this inside
   a mapped group: its skip is read at map index -1 (apache/airflow#67265).
3. **Failed: the next method runs.** Each later method waits until the one before is done
   (ALL_DONE). ONE_FAILED cannot express a first method chosen at run time: with
   ``method="hdfs_put"`` distcp is skipped and hdfs_put must run though nothing failed, and no
   trigger rule tells "skipped: not chosen" from "skipped: not needed".
4. **Started anyway: skips itself.** The scheduler expands a chunk's later methods one scheduler
   loop after the other; a method that delivers before they are expanded cannot mark them (and
   ``airflow dags test`` runs a batch of tasks between loops). Every method therefore still checks
   the route's choice and its chunk's earlier deliveries when it starts (``TransferOperator``).
5. **The join.** ALL_DONE plus XCom for its own map index: a ONE_SUCCESS join inside a mapped
   group fires early on Airflow 3.3 (apache/airflow#50210). The run's verdict is the group's leaf,
   ``finalize``, so a failed method whose chunk a later one delivered does not fail the run.

Under a running scheduler a chunk so starts on a worker only its extract, the methods it needed
and the join (tests/test_transfer_dags.py, tests/test_celery_deployment.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseOperator, TaskGroup, task_group
from airflow.sdk.bases.skipmixin import XCOM_SKIPMIXIN_KEY, XCOM_SKIPMIXIN_SKIPPED

from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.values import parse_bool
from airflow_provider_impala_transfer.core.errors import TransferError
from airflow_provider_impala_transfer.core.transfer.methods import CHAIN, METHODS, chain_from
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord
from airflow_provider_impala_transfer.operators.transfer import MANIFEST_LABEL_TEMPLATE, TransferOperator


def fallback_chain(group: TaskGroup, manifests: Any, *, method: str | None, use_distcp: Any, verify: str,
                   method_retries: int, max_active_chunks: int, step: Callable[..., dict[str, Any]],
                   target: dict[str, Any], deferrable: bool | None = None) -> tuple[TransferRouteOperator, Any]:
    """The run's ``route`` and the mapped ``deliver`` group over ``manifests`` (one per chunk), in
    ``group``. Returns the route (wire it before the extract) and the joins' output."""
    method_ids = {name: f"{group.child_id('deliver')}.{name}" for name in METHODS}
    route = TransferRouteOperator(task_id="route", method=method, use_distcp=use_distcp,
                                  method_task_ids=list(method_ids.values()), **step("route"))

    @task_group(group_id="deliver")
    def deliver(manifest: dict):
        """One chunk: the fallback chain, then a join that fails unless a method delivered."""
        methods: dict[str, TransferOperator] = {}
        for name in METHODS:
            chain = list(CHAIN) if name in CHAIN else [name]
            earlier, later = chain[:chain.index(name)], chain[chain.index(name) + 1:]
            methods[name] = TransferOperator(
                task_id=name, method=name, manifest=manifest, verify=verify, deferrable=deferrable,
                route_task_id=route.task_id, skip_if_delivered_by=[method_ids[e] for e in earlier],
                later_methods=[method_ids[t] for t in later],
                trigger_rule="all_done" if earlier else "all_success",
                map_index_template=MANIFEST_LABEL_TEMPLATE, **target,
                **step(name, retries=method_retries, max_active_tis_per_dagrun=max_active_chunks),
            )
            route >> methods[name]  # a direct parent: the scheduler reads its skips
            if earlier:
                methods[earlier[-1]] >> methods[name]
        join = ChunkDeliveredOperator(
            task_id="delivered", manifest=manifest, method_task_ids=[m.task_id for m in methods.values()],
            map_index_template=MANIFEST_LABEL_TEMPLATE, **step("delivered"),
        )
        list(methods.values()) >> join
        return join

    return route, deliver.expand(manifest=manifests).output


class TransferRouteOperator(BaseOperator):
    """Once per run, before anything is extracted: the methods each chunk may try, first to last,
    from ``method`` and ``use_distcp``; returns their task ids. The others are skipped by the
    scheduler for every chunk (rule 1 above).

    :param method: the first method to try (templated); empty: distcp, or hdfs_put without distcp.
    :param use_distcp: false leaves distcp out (templated).
    :param method_task_ids: the task ids of the methods, whose last dotted part names the method.
    """

    template_fields: Sequence[str] = ("method", "use_distcp")
    inherits_from_skipmixin = True  # what the scheduler looks for before it reads the XCom below

    def __init__(self, *, method: str | None, use_distcp: Any, method_task_ids: Sequence[str],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = method
        self.use_distcp = use_distcp
        self.method_task_ids = list(method_task_ids)

    def execute(self, context: Any) -> list[str]:
        chain = chain_from(self.method or None, use_distcp=parse_bool(self.use_distcp, "use_distcp"))
        by_method = {task_id.rsplit(".", 1)[-1]: task_id for task_id in self.method_task_ids}
        chosen = [by_method[name] for name in chain]
        context["ti"].xcom_push(key=XCOM_SKIPMIXIN_KEY, value={
            XCOM_SKIPMIXIN_SKIPPED: [task_id for task_id in self.method_task_ids if task_id not in chosen]})
        self.log.info("every chunk tries %s, each only if the one before did not deliver", " -> ".join(chain))
        return chosen


class ChunkDeliveredOperator(BaseOperator):
    """Join of one chunk's fallback chain (ALL_DONE, rule 5 above): returns the delivery record of
    the method that delivered, fails naming the chunk when none did."""

    template_fields: Sequence[str] = ("manifest",)
    ui_color = "#e8f5e9"

    def __init__(self, *, manifest: Any, method_task_ids: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.manifest = manifest
        self.method_task_ids = list(method_task_ids)

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        for task_id in self.method_task_ids:
            data = ti.xcom_pull(task_ids=task_id, map_indexes=ti.map_index)
            if data:
                record = DeliveryRecord.from_dict(data)
                self.log.info("%s delivered by %s to %s", record.chunk, record.method, record.staging_dir)
                return record.to_dict()
        tried = ", ".join(t.rsplit(".", 1)[-1] for t in self.method_task_ids)
        raise TransferError(f"{Manifest.from_dict(self.manifest).label} was not delivered by any method ({tried}); "
                            "see those tasks' logs for each method's error")
