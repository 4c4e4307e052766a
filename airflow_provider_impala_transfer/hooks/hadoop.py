"""The Hadoop command-line clients on the worker (``hadoop distcp``, ``hdfs dfs``), and WebHDFS.

The clients use the worker's own Hadoop configuration (``HADOOP_CONF_DIR``) and Kerberos ticket
cache, as an operator running them by hand would; nothing secret passes through Airflow. An
optional connection of type ``hadoop_cli`` carries the binaries and environment (extras
``hadoop_bin``, ``hdfs_bin``, ``env``), so they are configured once per deployment instead of per
task. A ``webhdfs`` connection (the hdfs provider's ``WebHDFSHook``: host(s), port, login,
Kerberos/SSL extras) of the *target* cluster moves the metadata steps (exists, list, mkdir,
rename, delete) from a JVM per call to HTTP.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from airflow.sdk import BaseHook

from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata


class HadoopCliHook(BaseHook):
    """Resolves which ``hadoop``/``hdfs`` to run and with which environment: arguments first, then
    the connection's extras, then the defaults on PATH."""

    conn_name_attr = "hadoop_conn_id"
    default_conn_name = "hadoop_cli_default"
    conn_type = "hadoop_cli"
    hook_name = "Hadoop CLI (distcp, hdfs dfs)"

    def __init__(self, hadoop_conn_id: str | None = None, *, hadoop_bin: str | None = None,
                 hdfs_bin: str | None = None, env: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        extras: dict[str, Any] = {}
        if hadoop_conn_id:
            extras = self.get_connection(hadoop_conn_id).extra_dejson
        self.hadoop_bin: str = hadoop_bin or extras.get("hadoop_bin") or "hadoop"
        self.hdfs_bin: str = hdfs_bin or extras.get("hdfs_bin") or "hdfs"
        merged = {**(extras.get("env") or {}), **(env or {})}
        self.env: dict[str, str] | None = {k: str(v) for k, v in merged.items()} or None


def webhdfs_metadata(webhdfs_conn_id: str) -> WebHdfsMetadata:
    """WebHDFS of the target cluster through the hdfs provider's hook (HA namenodes, Kerberos),
    connected when first used."""
    return WebHdfsMetadata(connect=lambda: WebHDFSHook(webhdfs_conn_id=webhdfs_conn_id).get_conn(),
                           name=f"WebHDFS connection {webhdfs_conn_id!r}")
