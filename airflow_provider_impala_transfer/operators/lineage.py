"""OpenLineage facets of the extract, export, publish and table tasks (the ``[openlineage]`` extra).

Only the operators' ``get_openlineage_facets_on_complete`` import this module, and only the
OpenLineage provider calls that method, so the package works without the provider. The provider
calls it in a process forked after the task succeeded: nothing here reads a connection, XCom or
the network; the operators keep what their ``execute`` learnt on ``self._lineage``.

Datasets:

* a table as ``impala://host:port`` (``hive://`` for the hive dialect, as OpenLineage names Hive's)
  with the name ``db.table``; a table without a database is in the connection's database;
* files by their directory, named by the converter the provider of the URI's scheme registers
  for Airflow assets (``hdfs://cluster2`` + ``data/events``, ``file`` + ``/tmp/x``), so the publish
  task's output is the very dataset a downstream DAG's ``Asset`` of the same URI stands for;
  schemes without a converter become ``scheme://authority`` + path;
* a query that is not a plain table is the job's ``sql`` facet (unless the operator's
  ``lineage_sql`` is False: its text holds the query's literals); the tables the provider's SQL
  parser finds in it are the inputs either way.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.sqlparser import SQLParser
from airflow.providers.openlineage.utils.utils import translate_airflow_asset
from airflow.sdk import Asset
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import output_statistics_output_dataset, schema_dataset, sql_job

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.common.records import FileEntry, Manifest
from airflow_provider_impala_transfer.core.common.secrets import redact_uri
from airflow_provider_impala_transfer.core.table.ddl import TableTarget, table_columns
from airflow_provider_impala_transfer.core.table.publish import TableResult
from airflow_provider_impala_transfer.core.transfer.records import PublishResult

DEFAULT_DATABASE = "default"


def extract_lineage(connector: SourceConnector, sql: str | None, table: str | None,
                    manifests: Sequence[Manifest], *, sql_facet: bool = True) -> OperatorLineage:
    """Source table(s) -> the directory of chunk files, with their schema, rows, bytes and files.
    ``sql_facet=False``: the query's text (and its literals) stays out; only the table names read from it go."""
    job_facets: dict[str, Any] = {}
    if table:
        inputs = [table_dataset(connector, table, "impala", InputDataset)]
    else:
        if sql_facet:
            job_facets["sql"] = sql_job.SQLJobFacet(query=str(sql), dialect="impala")
        inputs = query_inputs(connector, str(sql))
    by_directory: dict[str, list[FileEntry]] = {}
    for manifest in manifests:
        for entry in manifest.files:
            by_directory.setdefault(manifest.output_path or posixpath.dirname(entry.path), []).append(entry)
    schema = manifests[0].schema if manifests else None
    outputs = [location_dataset(directory, OutputDataset, schema=schema, rows=sum(f.rows or 0 for f in files),
                                size=sum(f.bytes for f in files), files=len(files))
               for directory, files in sorted(by_directory.items())]
    return OperatorLineage(inputs=inputs, outputs=outputs, job_facets=job_facets)


def publish_lineage(target_root: str, result: PublishResult) -> OperatorLineage:
    """The target's table root (the asset): rows, bytes and files this run published into it."""
    output = location_dataset(target_root, OutputDataset, rows=result.rows, size=result.bytes, files=result.files)
    return OperatorLineage(outputs=[output])


def table_lineage(connector: SourceConnector, target: TableTarget, result: TableResult,
                  manifest: Manifest) -> OperatorLineage:
    """The files' root -> the table (its columns as the table declares them, partition columns included)."""
    columns = [*table_columns(target, manifest.schema), *((name, "STRING") for name in (target.partition or {}))]
    fields = [schema_dataset.SchemaDatasetFacetFields(name=name, type=sql_type) for name, sql_type in columns]
    output = table_dataset(connector, target.table, target.dialect, OutputDataset)
    output.facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
    output.outputFacets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=result.rows, size=manifest.bytes, fileCount=len(manifest.files))
    files = location_dataset(target.location, InputDataset, schema=manifest.schema)
    return OperatorLineage(inputs=[files], outputs=[output])


def table_dataset(connector: SourceConnector, table: str, dialect: str, kind: type) -> Any:
    scheme = "hive" if dialect == "hive" else "impala"
    name = table.strip().replace("`", "")
    if "." not in name:
        name = f"{connector.options.get('database') or DEFAULT_DATABASE}.{name}"
    return kind(namespace=f"{scheme}://{connector.address}", name=name)


def query_inputs(connector: SourceConnector, sql: str) -> list[InputDataset]:
    """The tables a query reads, as the provider's SQL parser sees them (none if it cannot parse it)."""
    meta = SQLParser(dialect="hive").parse(sql)
    tables = [t.qualified_name for t in (meta.in_tables if meta else [])]
    return [table_dataset(connector, t, "impala", InputDataset) for t in sorted(set(tables))]


def location_dataset(uri: str, kind: type, *, schema: pa.Schema | None = None, rows: int | None = None,
                     size: int | None = None, files: int | None = None) -> Any:
    namespace, name = location_name(uri)
    dataset = kind(namespace=namespace, name=name)
    if schema is not None:
        dataset.facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.type)) for f in schema])
    if kind is OutputDataset and rows is not None:
        dataset.outputFacets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=rows, size=size, fileCount=files)
    return dataset


def location_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a directory, as Airflow's asset converters name the same URI. A URI
    with a password is named without its user info, as an ``Asset`` drops it."""
    if "://" not in uri:
        uri = "file://" + uri
    uri = redact_uri(uri)  # first: a password holding '/' or '@' goes whole
    parts = urlsplit(uri)
    user_info, _, host = parts.netloc.rpartition("@")
    if ":" in user_info:
        uri = urlunsplit(parts._replace(netloc=host))
    try:
        converted = translate_airflow_asset(Asset(uri), None)
    except ValueError:  # a URI the scheme's provider refuses as an asset
        converted = None
    if converted is not None:
        return converted.namespace, converted.name
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"
