"""The Hadoop command-line clients on the worker: ``hadoop distcp`` and ``hdfs dfs``.

They use the worker's own Hadoop configuration (``HADOOP_CONF_DIR``) and Kerberos ticket cache,
as an operator running them by hand would; nothing secret passes through Airflow. An optional
connection of type ``hadoop_cli`` carries the binaries and environment (extras ``hadoop_bin``,
``hdfs_bin``, ``env``), so they are configured once per deployment instead of per task.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_impala_transfer.core.commands import CommandRunner
from airflow_provider_impala_transfer.core.hdfs_shell import HdfsShell


class HadoopCliHook(BaseHook):
    conn_name_attr = "hadoop_conn_id"
    default_conn_name = "hadoop_cli_default"
    conn_type = "hadoop_cli"
    hook_name = "Hadoop CLI (distcp, hdfs dfs)"

    def __init__(self, hadoop_conn_id: str | None = None, *, runner: CommandRunner | None = None,
                 hadoop_bin: str | None = None, hdfs_bin: str | None = None,
                 env: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        extras: dict[str, Any] = {}
        if hadoop_conn_id:
            extras = self.get_connection(hadoop_conn_id).extra_dejson
        self.hadoop_bin = hadoop_bin or extras.get("hadoop_bin") or "hadoop"
        self.hdfs_bin = hdfs_bin or extras.get("hdfs_bin") or "hdfs"
        self.runner = runner or CommandRunner()
        merged_env = {**(extras.get("env") or {}), **(env or {})}
        if merged_env:
            self.runner.env = {**(self.runner.env or {}), **{k: str(v) for k, v in merged_env.items()}}

    def shell(self) -> HdfsShell:
        return HdfsShell(hdfs_bin=self.hdfs_bin, runner=self.runner)
