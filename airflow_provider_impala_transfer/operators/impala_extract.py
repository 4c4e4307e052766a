"""Operators that turn an Impala query into chunk files. They only read Airflow context and call
the Airflow-free core (planning, conversion, writing, manifests)."""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, conf

from airflow_provider_impala_transfer.core.extract.extract import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_FETCH_SIZE,
    DEFAULT_MAX_CHUNKS,
    ExtractSpec,
    Progress,
    extract_chunk,
    plan_chunks,
)
from airflow_provider_impala_transfer.core.common.connection import RunningQueries
from airflow_provider_impala_transfer.core.common.kerberos import closes_tickets
from airflow_provider_impala_transfer.core.common.records import Chunk, Manifest
from airflow_provider_impala_transfer.core.common.uris import is_hadoop_uri, local_path, run_key
from airflow_provider_impala_transfer.core.export import DEFAULT_STAGING_DB, export_manifests, plan_export, run_export
from airflow_provider_impala_transfer.core.staging import stage_on_hdfs
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.hooks.fsspec import FsspecHook
from airflow_provider_impala_transfer.hooks.hadoop import HadoopCliHook, webhdfs_metadata
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook
from airflow_provider_impala_transfer.hooks.masking import mask_in_task_logs


def run_directory(output_path: str, dag_id: str, run_id: str) -> str:
    """``<output_path>/<dag_id>/<run_id>`` with characters Hadoop paths reject (``:``, ``+``) replaced,
    so every run has its own directory and a retry lands in the same one."""
    return posixpath.join(output_path.rstrip("/"), run_key(dag_id), run_key(run_id))


# Pass as ``map_index_template=`` to ``ImpalaExtractOperator.partial(...)``: the grid then names each
# mapped task instance by its key range instead of a bare index. (A mapped operator reads this from
# the partial() arguments only, so it cannot be defaulted in __init__.)
CHUNK_LABEL_TEMPLATE = "{{ task.chunk.description if task.chunk else 'all rows' }}"


class _ImpalaQueryOperator(BaseOperator):
    """Fields shared by planning and extracting: what to read and how to cut it."""

    template_fields: Sequence[str] = ("sql", "table", "split_by", "chunk_size", "num_chunks")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        sql: str | None = None,
        table: str | None = None,
        impala_conn_id: str = ImpalaTransferHook.default_conn_name,
        split_by: str | None = None,
        chunk_size: int | str = DEFAULT_CHUNK_SIZE,
        num_chunks: int | str | None = None,
        empty_result: str = "file",
        allow_non_select: bool = False,
        connect_timeout: float | None = None,
        lineage_sql: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.table = table
        self.impala_conn_id = impala_conn_id
        self.split_by = split_by
        self.chunk_size = chunk_size
        self.num_chunks = num_chunks
        self.empty_result = empty_result
        self.allow_non_select = allow_non_select
        self.connect_timeout = connect_timeout
        self.lineage_sql = lineage_sql
        self._running = RunningQueries()  # the queries on_kill cancels
        self._shell: HdfsShell | None = None  # the Hadoop client whose running command on_kill stops
        self._lineage: tuple[Any, list[Manifest]] | None = None  # (connector, manifests) for OpenLineage

    def hook(self) -> ImpalaTransferHook:
        return ImpalaTransferHook(impala_conn_id=self.impala_conn_id, connect_timeout=self.connect_timeout,
                                  running=self._running)

    def on_kill(self) -> None:
        """Cancel the running query on the server (a killed client's query would run on there) and
        stop a running Hadoop command with its process group."""
        self._running.cancel(log=self.log.warning)
        if self._shell is not None:
            self._shell.runner.stop()

    def hdfs_shell(self, hadoop_conn_id: str | None, hdfs_bin: str | None, proxy_user: str | None = None) -> HdfsShell:
        hook = HadoopCliHook(hadoop_conn_id, hdfs_bin=hdfs_bin, proxy_user=proxy_user)
        self._shell = hook.hdfs_shell(self.log.info)
        return self._shell

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Source table (or query) -> the files written (the OpenLineage provider calls this)."""
        if self._lineage is None:
            return None
        from airflow_provider_impala_transfer.operators.lineage import extract_lineage

        connector, manifests = self._lineage
        return extract_lineage(connector, self.sql, self.table, manifests, sql_facet=self.lineage_sql)

    def build_spec(self, **overrides: Any) -> ExtractSpec:
        """The extract request; at most Airflow's ``[core] max_map_length`` chunks, which is how
        many mapped tasks the scheduler expands (more are merged into larger chunks)."""
        return ExtractSpec.build(
            sql=self.sql, table=self.table, split_by=self.split_by, chunk_size=self.chunk_size,
            num_chunks=self.num_chunks, empty_result=self.empty_result,
            allow_non_select=self.allow_non_select,
            max_chunks=conf.getint("core", "max_map_length", fallback=DEFAULT_MAX_CHUNKS), **overrides,
        )


class ImpalaChunkPlanOperator(_ImpalaQueryOperator):
    """Cut a query into chunks (key ranges of ``split_by``), returned as a list for ``.expand()``.

    Without ``split_by`` there is one chunk: a single streamed query (files still roll over every
    ``chunk_size`` rows). Never ``LIMIT ... OFFSET``.

    :param lineage_sql: accepted as by :class:`ImpalaExtractOperator`; the plan sends no
        OpenLineage datasets or SQL facet of its own, and its chunks (XCom) hold only the key
        bounds it read, never the query text.
    """

    @closes_tickets
    def execute(self, context: Any) -> list[dict[str, Any]]:
        spec = self.build_spec()
        chunks = plan_chunks(self.hook().connector(), spec)
        for chunk in chunks:
            self.log.info("chunk %d: %s", chunk.index, chunk.description)
        return [c.to_dict() for c in chunks]


class ImpalaExtractOperator(_ImpalaQueryOperator):
    """Stream an Impala query into exact-typed Parquet/CSV files of at most ``chunk_size`` rows.

    Map it over :class:`ImpalaChunkPlanOperator`'s output (``chunk=``) for parallel chunks, each
    with its own connection; without ``chunk`` it plans and extracts every chunk itself.

    :param sql: query, or a path ending in ``.sql`` (templated). Exactly one of sql/table.
    :param table: ``db.table`` to extract whole.
    :param output_path: where the chunk files are handed to the transfer tasks (templated):
        ``hdfs://`` on the source cluster (written to a private temp dir first, then staged there,
        CRC32C-checked, by the Hadoop client of ``hadoop_conn_id``/``hdfs_bin``, acting for
        ``proxy_user`` if given: see :class:`~.transfer.TransferOperator`), an object store
        (``s3://bucket/prefix``, written directly), or a local directory, which only works when every
        task of the run shares that disk (one machine, or a shared volume). Files go to
        ``<output_path>/<dag_id>/<run_id>/chunk-CCCCC-part-PPPPP.<ext>`` unless ``run_subdirectory``
        is False.
    :param output_format: ``parquet`` (default) or ``csv``.
    :param compression: parquet: snappy (default), zstd, gzip, none; csv: none (default), gzip.
    :param chunk_size: maximum rows per file, and the target rows per chunk when planning.
    :param split_by: integer/decimal/float/date/timestamp column to cut into key ranges.
    :param order_by: columns to sort each chunk by; makes re-runs byte-identical on servers that
        do not return rows in a stable order (costs a sort on the server).
    :param fetch_size: rows per round trip to the server.
    :param timestamp_unit: ``us`` (default; years 1-9999) or ``ns``. A value with more digits than
        the unit keeps fails the task instead of being truncated.
    :param empty_result: ``file`` writes one schema-only file for an empty result; ``none`` nothing.
    :param storage_options: fsspec options for ``output_path`` (credentials belong in a connection).
    :param output_fsspec_conn_id: ``fsspec`` connection of an object-store ``output_path`` (its
        credentials and endpoint; the transfer tasks read the files through the same connection).
    :param lineage_sql: ``True`` (default): the query text, literals included, is the OpenLineage
        SQL job facet. ``False`` leaves that facet out (the tables the query reads are still the
        inputs, parsed on the worker; a ``table`` extract has no facet either way). No XCom value of
        the extract holds the query text (Airflow still records the rendered ``sql`` field).
    :return: the manifest (files with rows, bytes, sha256; the Arrow schema) through XCom.
    """

    template_fields: Sequence[str] = (*_ImpalaQueryOperator.template_fields, "output_path", "output_format",
                                      "compression", "chunk", "order_by")
    def __init__(
        self,
        *,
        output_path: str,
        output_format: str = "parquet",
        compression: str | None = None,
        chunk: dict[str, Any] | None = None,
        order_by: str | list[str] | None = None,
        fetch_size: int = DEFAULT_FETCH_SIZE,
        timestamp_unit: str = "us",
        storage_options: dict[str, Any] | None = None,
        run_subdirectory: bool = True,
        hadoop_conn_id: str | None = None,
        hdfs_bin: str | None = None,
        proxy_user: str | None = None,
        output_fsspec_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_path = output_path
        self.output_fsspec_conn_id = output_fsspec_conn_id
        self.hadoop_conn_id = hadoop_conn_id
        self.hdfs_bin = hdfs_bin
        self.proxy_user = proxy_user
        self.output_format = output_format
        self.compression = compression
        self.chunk = chunk
        self.order_by = order_by
        self.fetch_size = fetch_size
        self.timestamp_unit = timestamp_unit
        self.storage_options = storage_options
        self.run_subdirectory = run_subdirectory

    def output_directory(self, context: Any) -> str:
        mask_in_task_logs(self.output_path)  # the password of a URL this task writes to
        if not self.run_subdirectory:
            return self.output_path
        return run_directory(self.output_path, context["dag"].dag_id, context["run_id"])

    @closes_tickets
    def execute(self, context: Any) -> dict[str, Any]:
        spec = self.build_spec(
            output_format=self.output_format, compression=self.compression, order_by=self.order_by,
            fetch_size=self.fetch_size, timestamp_unit=self.timestamp_unit,
        )
        connector = self.hook().connector()
        directory = self.output_directory(context)
        if local_path(directory) is not None:
            self.log.warning("output_path %s is this worker's local disk: the tasks that transfer these files "
                             "must run where they can read it (one machine, or a shared volume). With Celery or "
                             "Kubernetes workers give an hdfs:// or object-store URL, or extract_mode='server'.",
                             directory)
        chunks = [Chunk.from_dict(self.chunk)] if self.chunk else plan_chunks(connector, spec)
        manifests = []
        options = {**FsspecHook(self.output_fsspec_conn_id).options_for(directory, "output_path")[1],
                   **(self.storage_options or {})}
        shell = (self.hdfs_shell(self.hadoop_conn_id, self.hdfs_bin, self.proxy_user) if is_hadoop_uri(directory)
                 else None)
        for chunk in chunks:
            self.log.info("chunk %d (%s) -> %s", chunk.index, chunk.description, directory)
            progress = Progress(label=f"chunk {chunk.index}", sink=self.log.info)
            # a chunk for the cluster is written privately and handed over there; its local files go at once
            with tempfile.TemporaryDirectory(prefix="impala-extract-") as private:
                manifest = extract_chunk(connector, spec, chunk, private if shell else directory,
                                         storage_options=options, progress=progress)
                if shell is not None:
                    manifest = stage_on_hdfs(manifest, shell, directory, log=self.log.info)
            manifests.append(manifest)
        manifest = Manifest.merge(manifests)
        manifest.output_path = directory
        for entry in manifest.files:
            self.log.info("wrote %s: %d rows, %d bytes, sha256 %s", entry.path, entry.rows, entry.bytes, entry.sha256)
        self._lineage = (connector, [manifest])
        return manifest.to_dict()


class ImpalaExportOperator(_ImpalaQueryOperator):
    """Server-side export: the source engine writes the query's Parquet files on its own cluster
    (``CREATE EXTERNAL TABLE ... LOCATION '<source_hdfs_path>/_impala_transfer_export/<run>' AS
    <query>``), in parallel on every node; no row passes through the worker. Returns one manifest
    per chunk of about ``chunk_size`` rows (rows and schema from the files' footers, CRC32C from the
    cluster), for ``deliver.expand(manifest=...)`` exactly as the client extract's.

    :param source_hdfs_path: hdfs:// directory on the source cluster the engine may write.
    :param source_webhdfs_conn_id: ``webhdfs`` connection of the source cluster (lists the files,
        reads their footers).
    :param staging_db: database of the run's staging table (CREATE rights needed; dropped after
        publishing by :class:`FinalizePublishOperator`).
    :param dialect: ``impala`` or ``hive`` (Spark Thrift Server).
    :param transfer_group_id: set by ``impala_transfer_group``: two groups of one DAG run export into
        tables and directories of their own.
    :param lineage_sql: ``True`` (default): the query text is the OpenLineage SQL job facet, and the
        export's plan in XCom (key ``export``) holds its statements, the ``CREATE ... AS <query>``
        included. ``False``: no SQL facet (the input tables are still sent), and the plan in XCom
        keeps only the staging table and directory, all :class:`FinalizePublishOperator` needs to
        drop the export; the statements are still logged as they run.
    """

    template_fields: Sequence[str] = (*_ImpalaQueryOperator.template_fields, "source_hdfs_path", "staging_db")

    def __init__(self, *, source_hdfs_path: str, source_webhdfs_conn_id: str, staging_db: str = DEFAULT_STAGING_DB,
                 dialect: str = "impala", compression: str | None = None, hadoop_conn_id: str | None = None,
                 hdfs_bin: str | None = None, proxy_user: str | None = None, transfer_group_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transfer_group_id = transfer_group_id
        self.source_hdfs_path = source_hdfs_path
        self.source_webhdfs_conn_id = source_webhdfs_conn_id
        self.staging_db = staging_db
        self.dialect = dialect
        self.compression = compression
        self.hadoop_conn_id = hadoop_conn_id
        self.hdfs_bin = hdfs_bin
        self.proxy_user = proxy_user

    @closes_tickets
    def execute(self, context: Any) -> list[dict[str, Any]]:
        spec = self.build_spec(output_format="parquet", compression=self.compression)
        run = Run(run_id=context["run_id"], dag_id=context["ti"].dag_id, group_id=self.transfer_group_id)
        mask_in_task_logs(self.source_hdfs_path)
        plan = plan_export(spec, run, source_hdfs_path=self.source_hdfs_path, staging_db=self.staging_db,
                           dialect=self.dialect)
        # Without lineage_sql no XCom holds the query: finalize drops the export by its table and location only.
        recorded = plan.to_dict() if self.lineage_sql else {**plan.to_dict(), "statements": []}
        context["ti"].xcom_push(key=EXPORT_KEY, value=recorded)  # before it runs: finalize drops it
        connector = self.hook().connector()
        metadata = webhdfs_metadata(self.source_webhdfs_conn_id)
        run_export(connector, plan, metadata, log=self.log.info)
        shell = self.hdfs_shell(self.hadoop_conn_id, self.hdfs_bin, self.proxy_user)
        manifests = export_manifests(connector, spec, plan, metadata, shell, log=self.log.info)
        for manifest in manifests:
            self.log.info("%s: %s", manifest.label, manifest.chunks[0].description)
        self._lineage = (connector, manifests)
        return [m.to_dict() for m in manifests]


EXPORT_KEY = "export"  # XCom: the ExportPlan of a run, for dropping it once published
