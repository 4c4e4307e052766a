"""Operators that move extracted chunk files to a target, check them, and publish them.

* :class:`TransferOperator` runs ONE method (distcp, hdfs_put, hdfs_cp, scp, fsspec) for one
  chunk's manifest and returns what it delivered (paths, bytes, sha256, method) through XCom; in a
  fallback chain (``task_groups/fallback.py``) it has the chunk's later methods skipped once it
  delivered.
* :class:`PublishOperator` renames the run's staging directory to its final place once every
  chunk is there; :class:`FinalizePublishOperator` keeps it, or puts back what it replaced when a
  later task failed.

All real work is in the Airflow-free core; these read context and connections.
"""

from __future__ import annotations

import inspect
import tempfile
from datetime import timedelta
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, DownstreamTasksSkipped

from airflow_provider_impala_transfer.core.common.kerberos import closes_tickets
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.uris import (
    HADOOP_SCHEMES,
    is_hadoop_uri,
    local_path,
    normalize_uri,
    scheme_of,
)
from airflow_provider_impala_transfer.core.common.values import positive_seconds, proxy_user_env
from airflow_provider_impala_transfer.core.errors import (ConfigError, GroupConflict, ImpalaTransferError, PublishError,
                                                          TransferError)
from airflow_provider_impala_transfer.core.export import ExportPlan, drop_export
from airflow_provider_impala_transfer.core.staging import fetch_local, remove_staged
from airflow_provider_impala_transfer.core.reconcile import count_mismatch
from airflow_provider_impala_transfer.core.table.ddl import TableTarget
from airflow_provider_impala_transfer.core.table.publish import refresh_table
from airflow_provider_impala_transfer.core.transfer.commands import DEFAULT_TIMEOUT, CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import (DEFAULT_VERIFY, check_verify_mode, deliver_chunk,
                                                                    verify_delivery)
from airflow_provider_impala_transfer.core.transfer.destinations import Destination, refuse_without_exclusive_create
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run, inside
from airflow_provider_impala_transfer.core.transfer.lock import DEFAULT_LEASE, PublishLock
from airflow_provider_impala_transfer.core.transfer.distcp import DistcpMethod, DistcpOptions, DistcpSubmission
from airflow_provider_impala_transfer.core.transfer.methods import TransferMethod, check_method
from airflow_provider_impala_transfer.core.transfer.publish import commit_kinds, publish_deliveries, roll_back_kinds
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord, PublishResult
from airflow_provider_impala_transfer.core.transfer.targets import DESTINATION_OF, TransferTargets
from airflow_provider_impala_transfer.hooks.fsspec import FsspecHook
from airflow_provider_impala_transfer.hooks.hadoop import CONFIG_SECTION, HadoopCliHook, webhdfs_metadata
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook
from airflow_provider_impala_transfer.hooks.masking import mask_in_task_logs
from airflow_provider_impala_transfer.operators.assets import record_published
from airflow_provider_impala_transfer.triggers.distcp import DistcpJobTrigger, application_from_event
from airflow_provider_impala_transfer.operators.impala_extract import EXPORT_KEY, run_directory
from airflow_provider_impala_transfer.operators.target_table import switch_tables_back
from airflow_provider_impala_transfer.hooks.scp import ScpHook

# Label mapped task instances in the grid by their chunk's key range (pass as map_index_template).
MANIFEST_LABEL_TEMPLATE = (
    "{{ (task.manifest.get('chunks') or [{}])[0].get('description', 'all rows') if task.manifest else '' }}"
)


class _TargetOperator(BaseOperator):
    """Where chunks go and how each method reaches it; shared by transfer and publish."""

    template_fields: Sequence[str] = ("target_path", "target_cluster", "source_hdfs_path", "scp_target_path",
                                      "scp_target_host", "partition", "yarn_queue")
    ui_color = "#fdf0e0"

    def __init__(
        self,
        *,
        target_path: str,
        target_cluster: str | None = None,
        source_hdfs_path: str | None = None,
        partition: dict[str, str] | None = None,
        hadoop_conn_id: str | None = None,
        webhdfs_conn_id: str | None = None,
        hadoop_bin: str | None = None,
        hdfs_bin: str | None = None,
        hadoop_env: dict[str, str] | None = None,
        proxy_user: str | None = None,
        ssh_conn_id: str | None = None,
        scp_target_path: str | None = None,
        scp_target_host: str | None = None,
        scp_bandwidth_kbit: int | None = None,
        scp_bin: str = "scp",
        ssh_bin: str = "ssh",
        fsspec_conn_id: str | None = None,
        output_fsspec_conn_id: str | None = None,
        distcp_maps: int = 20,
        distcp_bandwidth_mb: int | None = None,
        distcp_strategy: str = "dynamic",
        yarn_queue: str | None = None,
        distcp_conf: dict[str, Any] | None = None,
        yarn_rm_url: str | None = None,
        command_timeout: float | None = DEFAULT_TIMEOUT,
        publish_lock: str = "atomic",
        publish_lock_lease: float | timedelta = DEFAULT_LEASE,
        transfer_group_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_path = target_path
        self.target_cluster = target_cluster
        self.source_hdfs_path = source_hdfs_path
        self.partition = partition
        self.hadoop_conn_id = hadoop_conn_id
        self.webhdfs_conn_id = webhdfs_conn_id
        self.hadoop_bin = hadoop_bin
        self.hdfs_bin = hdfs_bin
        self.hadoop_env = hadoop_env
        self.proxy_user = proxy_user
        proxy_user_env(proxy_user, "proxy_user")  # a bad name fails the DAG's parse, before any run
        self.ssh_conn_id = ssh_conn_id
        self.scp_target_path = scp_target_path
        self.scp_target_host = scp_target_host
        self.scp_bandwidth_kbit = scp_bandwidth_kbit
        self.scp_bin = scp_bin
        self.ssh_bin = ssh_bin
        self.fsspec_conn_id = fsspec_conn_id
        self.output_fsspec_conn_id = output_fsspec_conn_id
        self.distcp_options = dict(maps=distcp_maps, bandwidth_mb=distcp_bandwidth_mb,
                                   strategy=distcp_strategy)
        self.yarn_queue = yarn_queue
        self.distcp_conf = distcp_conf
        self.yarn_rm_url = yarn_rm_url
        if "{{" not in str(yarn_queue):  # bad options fail when the DAG is parsed
            DistcpOptions(**self.distcp_options, yarn_queue=yarn_queue, conf=distcp_conf or {},
                          resource_manager=yarn_rm_url)
        self.command_timeout = None if command_timeout is None else positive_seconds(command_timeout, "command_timeout")
        self.lock = PublishLock(mode=publish_lock, lease=publish_lock_lease)  # bad values fail when the DAG is parsed
        if "{{" not in str(target_path) and scheme_of(str(target_path)) not in (*HADOOP_SCHEMES, "file", ""):
            refuse_without_exclusive_create(str(target_path), self.lock.mode)  # an fsspec store that cannot lock
        self.transfer_group_id = transfer_group_id
        self._runner: CommandRunner | None = None  # the running tool, which ``on_kill`` stops
        self._open_hooks: ExitStack | None = None  # hooks holding files the running commands use
        self._destinations: dict[str, Destination] = {}

    @contextmanager
    def connections(self) -> Iterator[None]:
        """Build methods and destinations inside this block: files their connections need (an ssh
        connection's ``private_key`` and ``host_key``) exist while it runs, and are removed when
        it ends, also by an error or a kill."""
        with ExitStack() as stack:
            self._open_hooks = stack
            self._destinations: dict[str, Destination] = {}
            try:
                yield
            finally:
                self._open_hooks = None
                self._destinations = {}

    def transfer_run(self, context: Any) -> Run:
        return Run(run_id=context["run_id"], partition=self.partition or None, dag_id=context["ti"].dag_id,
                   group_id=self.transfer_group_id)

    def _target_uri(self) -> str:
        mask_in_task_logs(self.target_path, self.source_hdfs_path)  # the passwords of URLs this task reads
        return normalize_uri(self.target_path, "target_path", cluster=self.target_cluster)

    def _hadoop(self) -> HadoopCliHook:
        return HadoopCliHook(self.hadoop_conn_id, hadoop_bin=self.hadoop_bin, hdfs_bin=self.hdfs_bin,
                             env=self.hadoop_env, proxy_user=self.proxy_user)

    def _scp(self) -> ScpHook:
        """The ssh connection's hook, open until :meth:`connections` ends."""
        if self._open_hooks is None:
            raise ConfigError("ssh_conn_id", "the scp target was built outside the operator's connections() block",
                              "build methods and destinations inside `with self.connections():`")
        return self._open_hooks.enter_context(ScpHook(self.ssh_conn_id, scp_bin=self.scp_bin, ssh_bin=self.ssh_bin))

    def _scp_args(self) -> dict[str, Any]:
        return {"remote_path": self.scp_target_path or local_path(self.target_path or "") or None,
                "host": self.scp_target_host, "bandwidth_kbit": self.scp_bandwidth_kbit}

    def _targets(self, method: str) -> TransferTargets:
        """The method's target from this task's arguments, reading only the connection it needs;
        the methods themselves are built by the core, as for the CLI and the Python API."""
        if method == "scp":
            return TransferTargets(scp=self._scp().target(**self._scp_args()), command_timeout=self.command_timeout)
        if method == "fsspec":
            return TransferTargets(fsspec=FsspecHook(self.fsspec_conn_id).destination(self._target_uri()),
                                   command_timeout=self.command_timeout)
        hadoop = self._hadoop()
        source = normalize_uri(self.source_hdfs_path, "source_hdfs_path") if self.source_hdfs_path else None
        return TransferTargets(hdfs_root=self._target_uri(), source_hdfs_path=source, hadoop_bin=hadoop.hadoop_bin,
                               hdfs_bin=hadoop.hdfs_bin, hadoop_env=hadoop.env,
                               distcp=self._distcp_options(hadoop), command_timeout=self.command_timeout,
                               webhdfs=webhdfs_metadata(self.webhdfs_conn_id) if self.webhdfs_conn_id else None)

    def _distcp_options(self, hadoop: HadoopCliHook) -> DistcpOptions:
        """This task's distcp settings over its hadoop_cli connection's (queue, job settings, RM)."""
        conf = {**hadoop.distcp_conf, **(self.distcp_conf or {})}
        if self.yarn_queue:
            conf.pop("mapreduce.job.queuename", None)
        queue = self.yarn_queue or (None if "mapreduce.job.queuename" in conf else hadoop.yarn_queue)
        return DistcpOptions(**self.distcp_options, yarn_queue=queue, conf=conf,
                             resource_manager=self.yarn_rm_url or hadoop.yarn_rm_url)

    def _runner_for(self, targets: TransferTargets) -> CommandRunner:
        self._runner = targets.runner(log=self.log.info)
        return self._runner

    def build_method(self, method: str) -> TransferMethod:
        targets = self._targets(method)
        return targets.method(method, self._runner_for(targets), log=self.log.info)

    def build_destination(self, kind: str) -> Destination:
        """One per kind within :meth:`connections` (publish, then commit, use the same one)."""
        if kind not in self._destinations:
            targets = self._targets(next(name for name, of in DESTINATION_OF.items() if of == kind))
            self._destinations[kind] = targets.destination(kind, self._runner_for(targets))
        return self._destinations[kind]

    def _staging_options(self, staged: str) -> dict[str, Any]:
        """fsspec options of the object store holding the staged chunk files."""
        return FsspecHook(self.output_fsspec_conn_id).options_for(staged, "output_path")[1]

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.stop()


# Every argument of where chunks go and how each method reaches them, from the one definition
# above: the task group passes exactly these on to its transfer and publish tasks.
TARGET_ARGUMENTS: tuple[str, ...] = tuple(
    name for name in inspect.signature(_TargetOperator.__init__).parameters
    if name not in ("self", "target_path", "partition", "transfer_group_id", "kwargs")
)


class TransferOperator(_TargetOperator):
    """Deliver one chunk's files with one method into the run's staging directory, verified.

    :param method: distcp, hdfs_put, hdfs_cp, scp or fsspec.
    :param manifest: the chunk's manifest from :class:`ImpalaExtractOperator` (templated/mapped).
    :param target_path: the table/data root on the target: ``hdfs://nn:8020/data/x`` (distcp, hdfs
        put/cp), any fsspec URL (fsspec), or ``file:///...``. Never without a scheme; with
        ``target_cluster`` an absolute path becomes ``hdfs://<cluster><path>``.
    :param source_hdfs_path: where distcp stages local chunk files on the source cluster first.
    :param partition: ``{"ds": "{{ ds }}"}`` publishes into ``<target_path>/ds=<value>/``;
        without it a run publishes into ``<target_path>/<run_id>/``.
    :param ssh_conn_id: scp target (host, port, login, key; see :class:`ScpHook`).
    :param scp_target_path: remote directory for scp (default: the path of a file:// target, or
        the connection's ``target_path`` extra).
    :param fsspec_conn_id: credentials/options for the fsspec target.
    :param output_fsspec_conn_id: ``fsspec`` connection of the object store where the extract staged
        the chunk files (its ``output_path``), read through it and removed once the run is kept.
    :param hadoop_conn_id: ``hadoop_cli`` connection: environment for the Hadoop clients, limited to
        :data:`~airflow_provider_impala_transfer.hooks.hadoop.CONNECTION_ENV` (see :class:`HadoopCliHook`).
    :param hadoop_bin, hdfs_bin: the Hadoop clients to run (default: ``[impala_transfer]`` in the
        Airflow config, then ``hadoop``/``hdfs`` on PATH); never from a connection.
    :param hadoop_env: more environment for the Hadoop clients (DAG code: any variable).
    :param proxy_user: the HDFS user the Hadoop clients act for (``HADOOP_PROXY_USER``): the workers'
        identity impersonates it, which the cluster must allow (``hadoop.proxyuser.*``). Not
        templated, and never from a connection: whoever may trigger a run or edit a connection
        does not choose whom to impersonate.
    :param yarn_queue: YARN queue of the distcp job (templated; default: the ``hadoop_cli``
        connection's extra ``yarn_queue``, else the cluster's default queue).
    :param distcp_conf: more settings of the distcp job, ``{"mapreduce.map.memory.mb": 2048}``
        (``-D`` options over the connection's extra ``distcp_conf``); no secrets (they would be on a
        command line), not ``dfs.checksum.combine.mode``.
    :param yarn_rm_url: the ResourceManager's web address (``http://rm:8088``), where a stopped
        task kills its distcp job and a deferred one follows it; default: the connection's extra
        ``yarn_rm_url``, else the tracking URL the job's client prints.
    :param webhdfs_conn_id: ``webhdfs`` connection of the target cluster (the hdfs provider's): exists,
        list, mkdir, rename and delete over HTTP instead of a JVM per call. Copies and checksums
        always go through the Hadoop client.
    :param verify: ``checksum`` (default: HDFS's CRC32C of each file, computed by the cluster, no
        read-back; sha256 read back where the target has no comparable checksum), ``sha256``
        (always read back and hash) or ``size``.
    :param publish_lock: ``atomic`` (default): publishing takes a lock file per final directory,
        created only if absent, so two runs never publish one partition at once; ``none`` only for
        a target that one run at a time ever publishes to, on a store that cannot create a file
        only if absent (the publish tasks then refuse such a store with this hint).
    :param publish_lock_lease: seconds (or a timedelta) after which a lock belongs to a run that is
        gone (each attempt of the run's publish writes its time): the next run of that directory
        restores what the gone run replaced and takes over, and the gone run's finalize, if it
        ever comes, fails loudly instead of keeping anything. Default 24 h: make it longer than
        any gap between a run's publish and its finalize (e.g. a finalize cleared the next day).
    :param transfer_group_id: set by ``impala_transfer_group``: two groups of one DAG run never share
        staging or a lock, and two that publish one final directory are refused.
    :param route_task_id: in a fallback chain, the run's route (``task_groups/fallback.py``); this
        task skips itself unless it chose this method (the scheduler normally skipped it already).
    :param skip_if_delivered_by: earlier methods of the chain; skips itself if one delivered.
    :param later_methods: later methods of the chain: once this one delivered, the scheduler marks
        them skipped for this chunk without starting them.
    :param deferrable: distcp only: submit the job (``hadoop distcp -async``) and defer to
        :class:`~airflow_provider_impala_transfer.triggers.distcp.DistcpJobTrigger` while it copies;
        the task resumes to remove the staged copies and verify. Default: ``[impala_transfer]
        default_deferrable``, else ``[operators] default_deferrable``.
    :param poll_interval: seconds between the trigger's first polls of the ResourceManager (it
        backs off to 60 s).
    """

    template_fields: Sequence[str] = (*_TargetOperator.template_fields, "manifest")

    def __init__(self, *, method: str, manifest: Any, verify: str = DEFAULT_VERIFY,
                 route_task_id: str | None = None, skip_if_delivered_by: Sequence[str] = (),
                 later_methods: Sequence[str] = (), deferrable: bool | None = None, poll_interval: float = 5.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = check_method(method)
        self.deferrable = default_deferrable() if deferrable is None else bool(deferrable)
        self.poll_interval = positive_seconds(poll_interval, "poll_interval")
        self.verify = check_verify_mode(verify)
        self.manifest = manifest
        self.route_task_id = route_task_id
        self.skip_if_delivered_by = list(skip_if_delivered_by)
        self.later_methods = list(later_methods)

    @closes_tickets
    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        manifest = Manifest.from_dict(self.manifest)
        label = manifest.label
        if self.route_task_id:  # one route per run: its XCom has no map index
            chosen = ti.xcom_pull(task_ids=self.route_task_id, map_indexes=-1) or []
            if self.task_id not in chosen:
                raise AirflowSkipException(f"{label}: {self.method} is not among the methods chosen for this run")
        for earlier in self.skip_if_delivered_by:
            if ti.xcom_pull(task_ids=earlier, map_indexes=ti.map_index):
                raise AirflowSkipException(f"{label}: already delivered by {earlier.rsplit('.', 1)[-1]}")
        # Overwrite only what this run itself may have left: a retry, or an earlier method's attempt.
        overwrite = ti.try_number > 1 or bool(self.skip_if_delivered_by)
        with self.connections(), tempfile.TemporaryDirectory(prefix="impala-transfer-") as private:
            method = self.build_method(self.method)
            if method.needs_local_copies(manifest.files):
                # files staged on HDFS or an object store (by the extract or the server-side export), for a
                # method that copies local files: verified copies in this task's private directory, gone when
                # it ends
                shell = HdfsShell(hdfs_bin=self._hadoop().hdfs_bin, runner=method.runner)  # killed by on_kill
                stores = [f.path for f in manifest.files if f.local is None and not is_hadoop_uri(f.path)]
                manifest = fetch_local(manifest, shell, private,
                                       storage_options=self._staging_options(stores[0]) if stores else None)
            if self.deferrable and isinstance(method, DistcpMethod):
                self._defer_distcp(method, manifest, self.transfer_run(context), overwrite=overwrite)
            record = deliver_chunk(method, manifest, self.transfer_run(context),
                                   overwrite=overwrite, verify_mode=self.verify, log=self.log.info)
        return self._delivered(ti, label, record)

    def _defer_distcp(self, method: DistcpMethod, manifest: Manifest, run: Run, *, overwrite: bool) -> None:
        """Submit the chunk's distcp job and give the worker slot back while it copies: the
        triggerer polls the ResourceManager (:class:`DistcpJobTrigger`), and the task resumes in
        :meth:`execute_complete`. What it needs then travels in the deferral's kwargs."""
        self.log.info("%s: distcp -> %s (deferred while the job copies)", manifest.label,
                      method.destination.describe(method.target_dir(run)))
        submission = method.submit(manifest.files, run, overwrite=overwrite)
        if submission.resource_manager is None:
            raise TransferError(f"distcp job {submission.application_id} was submitted, but no ResourceManager "
                                "address is known to follow it (set yarn_rm_url, or the hadoop_cli connection's "
                                f"extra yarn_rm_url; stop it: yarn application -kill {submission.application_id})")
        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else self.command_timeout
        self.defer(trigger=DistcpJobTrigger(submission.application_id, submission.resource_manager,
                                            poll_interval=self.poll_interval, timeout=timeout),
                   method_name="execute_complete", kwargs={"submission": submission.to_dict()})

    @closes_tickets
    def execute_complete(self, context: Any, event: dict[str, Any], submission: dict[str, Any]) -> dict[str, Any]:
        """The deferred distcp job ended: remove its staged copies, fail unless it succeeded, verify
        the chunk's files at the target as the synchronous path does."""
        ti = context["ti"]
        manifest = Manifest.from_dict(self.manifest)
        submitted = DistcpSubmission.from_dict(submission)
        app = application_from_event(event) if event.get("status") == "ended" else None
        with self.connections():
            method = self.build_method(self.method)
            if not isinstance(method, DistcpMethod):
                raise AirflowFailException(f"{manifest.label}: resumed a deferred distcp as {self.method}")
            if app is None:
                self.log.error("%s: %s", manifest.label, event.get("message"))
            counters = method.finish(submitted, app)
            run = self.transfer_run(context)
            record = verify_delivery(method, manifest, run, verify_mode=self.verify, log=self.log.info)
            record.counters = counters
        return self._delivered(ti, manifest.label, record)

    def _delivered(self, ti: Any, label: str, record: DeliveryRecord) -> dict[str, Any]:
        self.log.info("%s delivered by %s: %d files, %d bytes", label, self.method, len(record.files), record.bytes)
        if not self.later_methods:
            return record.to_dict()
        # The chunk's later methods are not needed: skipped by the API server (rule 2 of
        # task_groups/fallback.py). The exception pushes no return value, hence the push first.
        ti.xcom_push(key="return_value", value=record.to_dict())
        self.log.info("%s: not needed any more: %s", label, ", ".join(t.rsplit(".", 1)[-1] for t in self.later_methods))
        raise DownstreamTasksSkipped(tasks=[(task_id, ti.map_index) for task_id in self.later_methods])


def default_deferrable() -> bool:
    """``[impala_transfer] default_deferrable``, else Airflow's ``[operators] default_deferrable``."""
    if conf.get(CONFIG_SECTION, "default_deferrable", fallback=None) not in (None, ""):
        return conf.getboolean(CONFIG_SECTION, "default_deferrable")
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def delivery_records(deliveries: Any) -> list[DeliveryRecord]:
    """The chunk joins' outputs as records. Airflow 3.3 hands the output of a task in a mapped task
    group with ONE instance over as that instance's value, not as a list of one."""
    if isinstance(deliveries, dict):
        deliveries = [deliveries]
    return [DeliveryRecord.from_dict(d) for d in deliveries if d]


class PublishOperator(_TargetOperator):
    """Make a run's verified files visible: staging directory -> final directory, by rename.

    What the final directory held waits aside, and the final directory stays locked against other
    runs, until :class:`FinalizePublishOperator` keeps the new files or puts the old ones back.

    :param deliveries: every chunk's delivery record (the joins' outputs).
    :param allow_split_publish: publish even when chunks reached different places (some by scp to
        another host); by default such a run fails and nothing is published.
    :param hold_until_finalized: a :class:`FinalizePublishOperator` follows (as in
        ``impala_transfer_group``): the replaced files and the lock wait for its verdict. False
        (default): this task confirms at once, as a run with no later checks; then give it the
        target's ``Asset`` as ``outlets``, whose event it fills in as the finalize task would.
    """

    template_fields: Sequence[str] = (*_TargetOperator.template_fields, "deliveries")
    ui_color = "#e8f5e9"

    def __init__(self, *, deliveries: Any, allow_split_publish: bool = False, hold_until_finalized: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deliveries = deliveries
        self.allow_split_publish = allow_split_publish
        self.hold_until_finalized = hold_until_finalized
        self._lineage: PublishResult | None = None  # for OpenLineage

    @closes_tickets
    def execute(self, context: Any) -> dict[str, Any]:
        records = delivery_records(self.deliveries)
        # Said before anything moves: if this task dies mid-way, the finalize task knows where to look.
        context["ti"].xcom_push(key=PUBLISHING_KEY, value=sorted({r.destination for r in records}))
        run = self.transfer_run(context)
        with self.connections():
            try:
                result = publish_deliveries(records, run, self.build_destination,
                                            allow_split=self.allow_split_publish, lock=self.lock, log=self.log.info)
            except GroupConflict as exc:  # the DAG's doing: a retry would be refused the same way
                raise AirflowFailException(str(exc)) from exc
            if not self.hold_until_finalized:
                commit_kinds(list(result.published), run, self.build_destination, lock=self.lock, log=self.log.info)
        for record in records:
            self.log.info("%-40s %-8s %3d files %14s bytes", record.chunk, record.method,
                          len(record.files), f"{record.bytes:,}")
        self._lineage = result
        record_published(self, context, result)  # only for Asset outlets given to this task
        return result.to_dict()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The target's table root, with the rows, bytes and files published (the OpenLineage provider calls this)."""
        if self._lineage is None:
            return None
        from airflow_provider_impala_transfer.operators.lineage import publish_lineage

        return publish_lineage(self._target_uri(), self._lineage)


class FinalizePublishOperator(_TargetOperator):
    """The run's last task (trigger rule ALL_DONE, the leaf that decides the run's state): if the
    publish and every check after it succeeded, drop the files the run replaced and release the
    final directory's lock; otherwise put back what the run replaced (the previous partition, the
    table's files), switch a table whose location a check task switched back where it read before
    (that task's ``TABLE_SWITCH_KEY``: it may have been killed before it could), refresh the target
    table, and fail the run.

    A task's success is read as its XCom return value, as the chunk joins do. A kept run gives each
    ``Asset`` among its outlets one event whose extras name what it published
    (:func:`~airflow_provider_impala_transfer.operators.assets.record_published`).

    :param publish_task_id: the :class:`PublishOperator`'s task id.
    :param check_task_ids: tasks after the publish that must succeed (the target table).
    :param target_table: refreshed after a roll back (engines cache file lists), on
        ``target_impala_conn_id`` with ``table_dialect``.
    :param export_task_id: an :class:`ImpalaExportOperator` whose staging table and directory are
        dropped once the run is kept (on ``source_impala_conn_id``, ``source_webhdfs_conn_id``);
        a failed run keeps them for its retry, which replaces them.
    :param staged_chunks_path: the extract's ``output_path`` when it is on HDFS or an object store
        (``output_fsspec_conn_id``): the run's chunk files staged there are removed once the run is
        kept (a failed run keeps them; its retry's extract replaces them).
    """

    template_fields: Sequence[str] = (*_TargetOperator.template_fields, "target_table", "staged_chunks_path")

    def __init__(self, *, publish_task_id: str, check_task_ids: Sequence[str] = (), counts_task_id: str | None = None,
                 target_table: str | None = None, target_impala_conn_id: str | None = None,
                 table_dialect: str = "impala", export_task_id: str | None = None,
                 source_impala_conn_id: str | None = None, source_webhdfs_conn_id: str | None = None,
                 staged_chunks_path: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.publish_task_id = publish_task_id
        self.staged_chunks_path = staged_chunks_path
        self.counts_task_id = counts_task_id
        self.export_task_id = export_task_id
        self.source_impala_conn_id = source_impala_conn_id
        self.source_webhdfs_conn_id = source_webhdfs_conn_id
        self.check_task_ids = list(check_task_ids)
        self.target_table = target_table
        self.target_impala_conn_id = target_impala_conn_id
        self.table_dialect = table_dialect

    @closes_tickets
    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        run = self.transfer_run(context)
        published = ti.xcom_pull(task_ids=self.publish_task_id)
        checks = {t: ti.xcom_pull(task_ids=t) for t in self.check_task_ids}
        failed = [t for t, value in checks.items() if value is None]
        if published and not failed:
            result = PublishResult.from_dict(published)
            before = ti.xcom_pull(task_ids=self.counts_task_id) if self.counts_task_id else None
            counts = {**(before or {}), "published": result.rows}
            counts.update({t.rsplit(".", 1)[-1]: v["rows"] for t, v in checks.items() if "rows" in v})
            self.log.info("counts: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            if count_mismatch(counts) is None:
                with self.connections():
                    try:
                        commit_kinds(list(result.published), run, self.build_destination, lock=self.lock,
                                     log=self.log.info)
                    except PublishError as exc:  # another run took the directory over: nothing here is kept
                        raise AirflowFailException(str(exc)) from exc
                self.log.info("kept %s", ", ".join(result.published.values()))
                self._drop_export(ti)
                self._remove_staged_chunks(context)
                record_published(self, context, result, table=self.target_table)  # the asset event, once kept
                return {**result.to_dict(), "counts": counts}
            failed = ["the final count"]
        kinds = ti.xcom_pull(task_ids=self.publish_task_id, key=PUBLISHING_KEY) or []
        restored: list[str] = []
        if kinds:
            with self.connections():
                restored = roll_back_kinds(kinds, run, self.build_destination, lock=self.lock, log=self.log.info)
        # A table step killed after switching the table's (or partition's) location never switched
        # it back: it would read the run's directory, just moved back to staging. Logged, not raised.
        switched = switch_tables_back(ti, self.check_task_ids, self.target_impala_conn_id, self.log)
        if restored and self.target_table:
            self._refresh_table()
        what = (f"restored what the run replaced ({', '.join(restored)})" if restored
                else "nothing the run published is visible")
        if switched:
            what += f"; switched {', '.join(switched)} back to where it read before"
        step = ", ".join(t.rsplit(".", 1)[-1] for t in failed) if published else "publishing or a task before it"
        # The run's verdict, not a flaky step: retrying it would decide the same.
        raise AirflowFailException(str(PublishError(f"the run failed at {step}: {what}; see those tasks' logs")))

    def _drop_export(self, ti: Any) -> None:
        plan = ti.xcom_pull(task_ids=self.export_task_id, key=EXPORT_KEY) if self.export_task_id else None
        if not plan:
            return
        try:
            drop_export(ImpalaTransferHook(impala_conn_id=self.source_impala_conn_id).connector(),
                        ExportPlan.from_dict(plan), webhdfs_metadata(self.source_webhdfs_conn_id), log=self.log.info)
        except ImpalaTransferError as exc:  # the run is published and kept; only the clean-up failed
            self.log.warning("could not drop the export (drop it by hand): %s", exc)

    def _remove_staged_chunks(self, context: Any) -> None:
        if not self.staged_chunks_path or local_path(self.staged_chunks_path) is not None:
            return
        mask_in_task_logs(self.staged_chunks_path)
        directory = run_directory(self.staged_chunks_path, context["ti"].dag_id, context["run_id"])
        try:
            shell = self._hadoop().hdfs_shell(self.log.info, self.command_timeout)
            remove_staged(inside(directory, self.staged_chunks_path), shell,
                          storage_options=None if is_hadoop_uri(directory) else self._staging_options(directory))
        except ImpalaTransferError as exc:  # the run is published and kept; only the clean-up failed
            self.log.warning("could not remove the staged chunk files %s (remove them by hand): %s", directory, exc)

    def _refresh_table(self) -> None:
        target = TableTarget(table=self.target_table, location=self._target_uri(), partition=self.partition or None,
                             dialect=self.table_dialect)
        try:
            refresh_table(ImpalaTransferHook(impala_conn_id=self.target_impala_conn_id).connector(), target)
        except Exception as exc:  # noqa: BLE001 - as for the switch back: the run's verdict must not hide behind it
            self.log.warning("could not refresh %s after the roll back (refresh it by hand): %s", target.table, exc)


PUBLISHING_KEY = "publishing"  # XCom: the kinds of destination a publish is about to change
