"""``impala_transfer_group``: the whole pipeline as one reusable task group.

    route (once per run: the methods each chunk may try; a bad method fails before any extract)
    plan -> extract (mapped: one task per chunk)
         -> deliver (mapped group, one per chunk):
                distcp -> hdfs_put -> hdfs_cp -> scp    (each tried only if the one before failed)
                fsspec
                -> delivered (fails unless one method delivered this chunk)
         -> reconcile (source COUNT(*) == rows in files == rows delivered, before anything changes)
         -> publish (staging -> final, by rename; the replaced files kept aside, the final dir locked)
         -> target_table
         -> finalize (ALL_DONE: keep, or put back what the run replaced when a task failed)

The per-chunk fallback (route, methods, join) and its rules: ``task_groups/fallback.py``.
``finalize`` is the group's leaf, so the run fails if and only if some chunk was not delivered, a
count differs or the table step failed, and then the target is as it was.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, TaskGroup, get_current_context, task

from airflow_provider_impala_transfer.core.common.partitions import clean_partition, partition_path
from airflow_provider_impala_transfer.core.common.uris import is_hadoop_uri, join, local_path, normalize_uri
from airflow_provider_impala_transfer.core.common.values import parse_bool
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.export import DEFAULT_STAGING_DB, EXTRACT_MODES, check_extract_mode
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec
from airflow_provider_impala_transfer.core.transfer.delivery import DEFAULT_VERIFY, check_verify_mode
from airflow_provider_impala_transfer.core.transfer.methods import METHODS, chain_from
from airflow_provider_impala_transfer.operators.impala_extract import (
    CHUNK_LABEL_TEMPLATE,
    ImpalaChunkPlanOperator,
    ImpalaExportOperator,
    ImpalaExtractOperator,
)
from airflow_provider_impala_transfer.operators.assets import target_asset
from airflow_provider_impala_transfer.operators.reconcile import ReconcileOperator
from airflow_provider_impala_transfer.operators.target_table import TargetTableOperator
from airflow_provider_impala_transfer.operators.transfer import (
    TARGET_ARGUMENTS,
    FinalizePublishOperator,
    PublishOperator,
)
from airflow_provider_impala_transfer.task_groups.fallback import fallback_chain

CHUNKS_DIR = "_impala_transfer_chunks"  # under source_hdfs_path: the client extract's default output_path


def impala_transfer_group(
    group_id: str = "impala_transfer",
    *,
    target_path: str,
    output_path: str | None = None,
    sql: str | None = None,
    table: str | None = None,
    impala_conn_id: str = "impala_default",
    split_by: str | None = None,
    chunk_size: int | str = 1_000_000,
    output_format: str = "parquet",
    compression: str | None = None,
    order_by: str | list[str] | None = None,
    method: str | None = None,
    use_distcp: bool | str = True,
    partition: dict[str, str] | None = None,
    target_table: str | None = None,
    target_impala_conn_id: str | None = None,
    table_dialect: str = "impala",
    verify: str = DEFAULT_VERIFY,
    allow_split_publish: bool = False,
    extract_mode: str = "client",
    source_webhdfs_conn_id: str | None = None,
    staging_db: str = DEFAULT_STAGING_DB,
    export_dialect: str = "impala",
    max_active_chunks: int = 4,
    retries: int | None = None,
    method_retries: int = 0,
    deferrable: bool | None = None,
    outlets: Sequence[Any] | None = None,
    lineage_sql: bool = True,
    default_args: dict[str, Any] | None = None,
    step_kwargs: dict[str, dict[str, Any]] | None = None,
    **target_args: Any,
) -> TaskGroup:
    """Build route -> plan + extract (or export) -> per-chunk fallback transfer -> reconcile ->
    publish -> target table -> finalize. Returns the TaskGroup; wire ``upstream >> group >> downstream``.

    The query, output and target arguments are those of :class:`ImpalaExtractOperator` and
    :class:`TransferOperator` (``target_cluster``, ``source_hdfs_path``, ``hadoop_conn_id``,
    ``webhdfs_conn_id``, ``ssh_conn_id``, ``fsspec_conn_id``, ``distcp_*``, ``publish_lock`` ...);
    any other keyword is refused when the DAG is parsed.

    :param group_id: the task group's id; every task id starts with it.
    :param target_path: the table root on the target: ``hdfs://nn:8020/data/orders``, an fsspec URL,
        or ``file:///...`` (templated).
    :param output_path: where the extract hands the chunk files to the transfer tasks, which may
        run on other workers (templated). Default ``<source_hdfs_path>/_impala_transfer_chunks/<group_id>``
        on the source cluster; an object store works too (``s3://bucket/prefix``, credentials in
        ``output_fsspec_conn_id``); both are removed once the run is kept. A local directory only
        when every task runs on one machine (or a shared volume).
    :param sql: the query, or a path ending in ``.sql`` (templated). Exactly one of sql/table.
    :param table: ``db.table`` to extract whole.
    :param impala_conn_id: the ``impala_transfer`` connection of the source.
    :param split_by: a numeric, date or timestamp column cut into key ranges, one chunk each.
    :param chunk_size: rows per file and about per chunk (templated). At most Airflow's
        ``[core] max_map_length`` chunks: more are merged into larger ones, and the plan's log says so.
    :param output_format: ``parquet`` or ``csv``.
    :param compression: of the files written (parquet: snappy, zstd, gzip, none).
    :param order_by: columns each chunk's rows are sorted by.
    :param method: the first method each chunk tries (templated, e.g. ``"{{ params.method }}"``):
        distcp, hdfs_put, hdfs_cp, scp (the chain from there on) or fsspec. Default: distcp, or
        hdfs_put when ``use_distcp`` is false.
    :param use_distcp: false leaves distcp out of the chain (templated).
    :param partition: ``{"ds": "{{ ds }}"}`` publishes into ``<target_path>/ds=<value>/``.
    :param target_table: the table created or refreshed on the published files.
    :param target_impala_conn_id: the connection for the table step (default: ``impala_conn_id``).
    :param table_dialect: ``impala`` or ``hive`` (the SQL of the table step).
    :param verify: ``checksum`` (default), ``sha256`` or ``size``: see :class:`TransferOperator`.
    :param allow_split_publish: let one run's chunks publish in several transactions.
    :param extract_mode: ``client`` (the workers stream the rows), ``server`` (the source engine
        writes the Parquet on its cluster through :class:`ImpalaExportOperator`, under
        ``source_hdfs_path``, read through ``source_webhdfs_conn_id``), or a template such as
        ``"{{ params.extract_mode }}"``, which builds both paths behind an ``extract_mode`` branch
        and a ``chunks`` task passing on the manifests of the one that ran.
    :param source_webhdfs_conn_id: ``webhdfs`` connection of the source cluster (server mode).
    :param staging_db: where the server-side export creates its staging table.
    :param export_dialect: the source engine's SQL for the export: ``impala`` or ``spark``.
    :param max_active_chunks: how many chunks extract, and how many take each method, at once in
        one run (``max_active_tis_per_dagrun`` of those tasks).
    :param retries: of extract (or export), publish, target_table and finalize, which a retry can
        help; default ``default_args["retries"]``, else 1. The plan, the route, the join and the
        reconcile get Airflow's default (a syntax error or a count that differs stays so).
    :param method_retries: of each method (default 0: the next method is the retry).
    :param deferrable: the distcp tasks submit their YARN job and defer while it copies (the worker
        slot is free; the triggerer polls the ResourceManager). Default: ``[impala_transfer]
        default_deferrable``, else Airflow's ``[operators] default_deferrable``.
    :param outlets: the Airflow assets the run updates, declared on ``finalize`` (after which the
        new files stay, so a rolled-back run records no event); each gets one event per kept run,
        its extras naming the directory published, partition, rows, files, bytes, table and run.
        Default: the ``Asset`` of ``target_path`` when it is literal; none when it is a template
        (pass the one you expect, e.g. ``outlets=[Asset("hdfs://nn:8020/data/orders")]``);
        ``outlets=[]`` declares none.
    :param lineage_sql: False: plan, extract and export send no OpenLineage SQL job facet (the query
        text with its literals; the tables read are still sent), and the export keeps its statements
        out of XCom.
    :param default_args: Airflow operator arguments for every task of the group (the group's
        ``TaskGroup(default_args=...)``): ``owner``, ``pool``, ``queue``, ``execution_timeout``,
        callbacks, ``retry_delay`` ...
    :param step_kwargs: operator arguments for one step, over ``default_args`` and the group's own:
        ``{"extract": {"pool": "impala"}, "distcp": {"queue": "hadoop_edge"}}``. Steps: the task
        ids of the group (see :data:`STEPS`), and ``transfer`` for all five methods. Any argument of
        Airflow's ``BaseOperator`` except those that wire the group (:data:`WIRING`).
    """
    unknown = set(target_args) - set(TARGET_ARGUMENTS)
    if unknown:
        raise ConfigError(", ".join(sorted(unknown)), "unknown argument(s)", f"use: {', '.join(TARGET_ARGUMENTS)}")
    # What is given literally fails when the DAG is parsed, not when a run reaches the task.
    if _literal(method, use_distcp):
        chain_from(str(method) if method not in (None, "") else None, use_distcp=parse_bool(use_distcp, "use_distcp"))
    if _literal(sql, table, split_by, chunk_size, output_format, compression, order_by) \
            and not str(sql or "").endswith(".sql"):
        ExtractSpec.build(sql=sql, table=table, split_by=split_by, chunk_size=chunk_size, output_format=output_format,
                          compression=compression, order_by=order_by)
    if partition and _literal(*partition.keys(), *partition.values()):
        clean_partition(partition)
    check_verify_mode(verify)
    # A literal mode builds its path only; a template (a Param) builds both and a branch picks one per run.
    modes = [check_extract_mode(extract_mode)] if _literal(extract_mode) else list(EXTRACT_MODES)
    server_ready = bool(target_args.get("source_hdfs_path") and source_webhdfs_conn_id)
    if modes == ["server"] and not server_ready:
        raise _server_not_ready()
    if "client" in modes and not output_path and not target_args.get("source_hdfs_path"):
        raise ConfigError("output_path", "is not set, and there is no source_hdfs_path to stage the chunks on",
                          "give source_hdfs_path (hdfs:// on the source cluster; every worker can read it), or "
                          "output_path: an hdfs:// or object-store URL (a local directory only on one machine)")
    store = output_path or target_args.get("source_hdfs_path") or ""
    if ("client" in modes and target_args.get("output_fsspec_conn_id") and _literal(store)
            and (is_hadoop_uri(store) or local_path(store) is not None)):
        raise ConfigError("output_fsspec_conn_id", f"is for an object-store output_path, but the chunks are staged "
                          f"on {store if output_path else 'source_hdfs_path (the default)'}",
                          "give output_path='s3://bucket/prefix' (or another fsspec URL), or drop output_fsspec_conn_id")
    assets = list(outlets or [])
    if outlets is None and _literal(target_path, target_args.get("target_cluster") or ""):  # a template's
        asset = target_asset(target_path, target_args.get("target_cluster"))               # value comes in the run
        assets = [asset] if asset is not None else []
    if retries is None:
        retries = (default_args or {}).get("retries", 1)
    step = _StepArguments(step_kwargs)
    query_args = dict(sql=sql, table=table, impala_conn_id=impala_conn_id, split_by=split_by, chunk_size=chunk_size,
                      lineage_sql=lineage_sql)
    target = dict(target_path=target_path, partition=partition, **target_args)

    with TaskGroup(group_id, default_args=default_args or {}) as group:
        _refuse_a_shared_final_dir(group, target_path, target_args.get("target_cluster"), partition)
        target["transfer_group_id"] = group.group_id  # its own staging, export and locks in every run
        if "client" in modes and not output_path:  # one directory per group: two groups of a DAG never mix
            output_path = join(target_args["source_hdfs_path"], CHUNKS_DIR, group.group_id)
        export = extract = None
        if "server" in modes:
            export = ImpalaExportOperator(
                task_id="export", source_hdfs_path=target_args["source_hdfs_path"],
                source_webhdfs_conn_id=source_webhdfs_conn_id, staging_db=staging_db, dialect=export_dialect,
                compression=compression, hadoop_conn_id=target_args.get("hadoop_conn_id"),
                hdfs_bin=target_args.get("hdfs_bin"), proxy_user=target_args.get("proxy_user"),
                transfer_group_id=group.group_id, **query_args, **step("export", retries=retries),
            )
            manifests = export.output  # one manifest per chunk of the exported files
        if "client" in modes:
            plan = ImpalaChunkPlanOperator(task_id="plan", **query_args, **step("plan"))
            extract = ImpalaExtractOperator.partial(
                task_id="extract", output_path=output_path, output_format=output_format, compression=compression,
                order_by=order_by, map_index_template=CHUNK_LABEL_TEMPLATE,
                hadoop_conn_id=target_args.get("hadoop_conn_id"), hdfs_bin=target_args.get("hdfs_bin"),
                proxy_user=target_args.get("proxy_user"), output_fsspec_conn_id=target_args.get("output_fsspec_conn_id"),
                **query_args, **step("extract", retries=retries, max_active_tis_per_dagrun=max_active_chunks),
            ).expand(chunk=plan.output)
            manifests = extract.output
        first = export or plan
        if export is not None and extract is not None:
            first = _choose_mode.override(**step("extract_mode"))(extract_mode, server_ready)
            first >> [plan, export]
            manifests = _chunks.override(**step("chunks"))(export.task_id, extract.task_id)
            [export, extract] >> manifests.operator

        # Once per run, first: a bad method fails before anything is extracted.
        route, delivered = fallback_chain(group, manifests, method=method, use_distcp=use_distcp, verify=verify,
                                          method_retries=method_retries, max_active_chunks=max_active_chunks,
                                          step=step, target=target, deferrable=deferrable)
        route >> first

        # Before anything is replaced: source COUNT(*) == rows in the files == rows delivered.
        checked = ReconcileOperator(task_id="reconcile", sql=sql, table=table, impala_conn_id=impala_conn_id,
                                    manifests=manifests, deliveries=delivered, **step("reconcile"))
        publish = PublishOperator(task_id="publish", deliveries=delivered, allow_split_publish=allow_split_publish,
                                  hold_until_finalized=True, **target, **step("publish", retries=retries))
        checked >> publish
        checks = []
        if target_table:
            checks.append(TargetTableOperator(
                task_id="target_table", target_table=target_table, manifests=manifests,
                published=publish.output, target_path=target_path,
                target_cluster=target_args.get("target_cluster"),
                target_impala_conn_id=target_impala_conn_id or impala_conn_id, partition=partition,
                dialect=table_dialect, file_format=output_format, **step("target_table", retries=retries),
            ))
        finalize = FinalizePublishOperator(
            task_id="finalize", publish_task_id=publish.task_id, check_task_ids=[t.task_id for t in checks],
            counts_task_id=checked.task_id, export_task_id=export.task_id if export else None,
            source_impala_conn_id=impala_conn_id, source_webhdfs_conn_id=source_webhdfs_conn_id,
            target_table=target_table, target_impala_conn_id=target_impala_conn_id or impala_conn_id,
            table_dialect=table_dialect, staged_chunks_path=output_path if extract is not None else None,
            outlets=list(assets), **target, **step("finalize", retries=retries),
        )
        [publish, *checks] >> finalize
    return group


# The group's steps (task ids, without the group's prefix); ``transfer`` in step_kwargs means all methods.
STEPS = ("route", "extract_mode", "plan", "extract", "export", "chunks", *METHODS, "delivered", "reconcile",
         "publish", "target_table", "finalize")
# Operator arguments that wire the group together, which step_kwargs may not change.
WIRING = ("task_id", "trigger_rule", "map_index_template", "outlets", "inlets", "dag", "task_group", "default_args")


class _StepArguments:
    """``step_kwargs``, checked when the DAG is parsed: ``step(name, **ours)`` is what one step's
    operator gets, the user's arguments over the group's own."""

    def __init__(self, step_kwargs: dict[str, dict[str, Any]] | None) -> None:
        accepted = set(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs", *WIRING}
        self.kwargs: dict[str, dict[str, Any]] = {}
        for name, kwargs in (step_kwargs or {}).items():
            if name not in (*STEPS, "transfer"):
                raise ConfigError("step_kwargs", f"{name!r} is not a step of the group",
                                  f"use: {', '.join(STEPS)}, or transfer for every method")
            if not isinstance(kwargs, dict):
                raise ConfigError(f"step_kwargs[{name!r}]", "is not a dict of operator arguments",
                                  "e.g. {'pool': 'impala', 'queue': 'hadoop_edge'}")
            wiring = sorted(set(kwargs) & set(WIRING))
            if wiring:
                raise ConfigError(f"step_kwargs[{name!r}]", f"{', '.join(wiring)}: set by the group, which wires "
                                  "its tasks together", "drop it; outlets are the group's outlets argument")
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                raise ConfigError(f"step_kwargs[{name!r}]", f"{', '.join(unknown)}: not an argument of Airflow's "
                                  "BaseOperator", "use pool, queue, execution_timeout, retries, retry_delay, "
                                  "priority_weight, callbacks ... (any BaseOperator argument)")
            self.kwargs[name] = dict(kwargs)

    def __call__(self, name: str, **ours: Any) -> dict[str, Any]:
        every_method = self.kwargs.get("transfer", {}) if name in METHODS else {}
        return {**ours, **every_method, **self.kwargs.get(name, {})}


@task.branch(task_id="extract_mode")
def _choose_mode(mode: str, server_ready: bool) -> str:
    """This run's path: plan + extract (client) or export (server)."""
    mode = check_extract_mode(mode)
    if mode == "server" and not server_ready:
        raise _server_not_ready()
    prefix = get_current_context()["ti"].task_id.rpartition(".")[0]
    return f"{prefix}.{'export' if mode == 'server' else 'plan'}".lstrip(".")


@task(task_id="chunks", trigger_rule="none_failed_min_one_success")
def _chunks(export_task_id: str, extract_task_id: str) -> list[dict]:
    """The manifests of whichever path ran (the other one was skipped by the branch)."""
    ti = get_current_context()["ti"]
    exported = ti.xcom_pull(task_ids=export_task_id)
    if exported is not None:
        return exported
    return [m for m in ti.xcom_pull(task_ids=[extract_task_id]) if m]  # a list: every map index


def _server_not_ready() -> ConfigError:
    return ConfigError("extract_mode", "'server' needs source_hdfs_path (where the engine writes) and "
                       "source_webhdfs_conn_id (to read what it wrote)", "set both, or use extract_mode='client'")


def _refuse_a_shared_final_dir(group: TaskGroup, target_path: str, target_cluster: str | None,
                               partition: dict[str, str] | None) -> None:
    """Two groups of one DAG that publish the same final directory would replace each other's
    files within one run: refused when the DAG is parsed if both targets are literal (otherwise
    the second group's publish refuses it in the run, by the lock and the publish record)."""
    dag = group.dag
    values = [target_path, target_cluster or "", *(partition or {}).keys(), *(partition or {}).values()]
    if dag is None or not _literal(*values):
        return
    here = (normalize_uri(target_path, "target_path", cluster=target_cluster), clean_partition(partition))
    for other in dag.tasks:
        if not isinstance(other, PublishOperator) or other.transfer_group_id in (None, group.group_id):
            continue
        theirs = [other.target_path, other.target_cluster or "", *(other.partition or {}).keys(),
                  *(other.partition or {}).values()]
        if _literal(*theirs) and (normalize_uri(other.target_path, "target_path", cluster=other.target_cluster),
                                  clean_partition(other.partition)) == here:
            where = here[0] + (f" ({partition_path(here[1])})" if here[1] else "")
            raise ConfigError("target_path", f"the task groups {other.transfer_group_id!r} and {group.group_id!r} of "
                              f"DAG {dag.dag_id!r} both publish {where}, so in each run one would replace the "
                              "other's files", "give each group its own target_path or partition")


def _literal(*values: Any) -> bool:
    """No Jinja template among ``values``: they can be checked before any run."""
    return not any("{{" in str(v) or "{%" in str(v) for v in values)

