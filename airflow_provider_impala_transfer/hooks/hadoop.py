"""The Hadoop command-line clients on the worker (``hadoop distcp``, ``hdfs dfs``), and WebHDFS.

The clients use the worker's own Hadoop configuration (``HADOOP_CONF_DIR``) and Kerberos ticket
cache, as an operator running them by hand would; nothing secret passes through Airflow.

Which executables run is decided by DAG code or the deployment, never by a connection: whoever
can edit a connection (a UI role) is not meant to run code on the workers. So the binaries come
from operator arguments (``hadoop_bin=``, ``hdfs_bin=``), then the Airflow config
(``[impala_transfer] hadoop_bin`` / ``hdfs_bin``, or ``AIRFLOW__IMPALA_TRANSFER__HADOOP_BIN``),
then ``hadoop``/``hdfs`` on PATH. An optional connection of type ``hadoop_cli`` may only set the
environment variables in :data:`CONNECTION_ENV` (extra ``env``): which cluster configuration,
user, Kerberos cache and token file to use, time zone and locale. Variables that load code or
choose a program (``LD_PRELOAD``, ``PATH``, ``JAVA_HOME``, ``HADOOP_HOME``,
``HADOOP_CLIENT_OPTS``/``HADOOP_OPTS`` with ``-javaagent``, ``CLASSPATH``...) are refused there;
the operator argument ``hadoop_env=`` (DAG code) may still set any variable.

What remains with a connection: ``HADOOP_CONF_DIR``/``KRB5_CONFIG`` choose among files already on
the worker (the Hadoop scripts source ``hadoop-env.sh`` from the conf dir), so a worker must not
let strangers create such directories; ``HADOOP_USER_NAME`` chooses the HDFS identity, as on any
cluster without Kerberos (a Kerberized cluster ignores it). ``HADOOP_PROXY_USER`` is refused
there: on a Kerberized cluster it makes the workers' principal impersonate any user it may proxy,
so only DAG code chooses it (``proxy_user=``).

Kerberos: the connection's ``env`` may point ``KRB5CCNAME`` at a cache someone keeps fresh
(Airflow's ``airflow kerberos`` renewer), or its extras ``principal`` and ``keytab`` (a path on the
worker, mode 0600) make the task ``kinit -kt`` into a private cache that every Hadoop client of
the task uses and that is removed when the task ends (``core/common/kerberos.py``).

DistCp on YARN: extras ``yarn_queue``, ``distcp_conf`` (only the keys of
:data:`~airflow_provider_impala_transfer.core.transfer.distcp.CONNECTION_CONF_KEYS`: queue, priority,
memory, vcores, timeouts) and ``yarn_rm_url`` (the ResourceManager's web address, to kill a job
whose task is stopped); the operator's ``yarn_queue``/``distcp_conf``/``yarn_rm_url`` win.

A ``webhdfs`` connection (the hdfs provider's ``WebHDFSHook``: host(s), port, login,
Kerberos/SSL extras) of the *target* cluster moves the metadata steps (exists, list, mkdir,
rename, delete) from a JVM per call to HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from airflow.providers.apache.hdfs.hooks.webhdfs import AirflowWebHDFSHookException, WebHDFSHook
from airflow.sdk import BaseHook, conf

from airflow_provider_impala_transfer.core.common.kerberos import (
    KeytabLogin,
    close_tickets,
    ticket_cache,
    ticket_summary,
)
from airflow_provider_impala_transfer.core.common.values import proxy_user_env
from airflow_provider_impala_transfer.core.errors import ConfigError, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import DEFAULT_TIMEOUT, CommandRunner
from airflow_provider_impala_transfer.core.transfer.distcp import check_distcp_conf
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata

CONFIG_SECTION = "impala_transfer"
# The only variables a hadoop_cli connection may set: none of them loads code or picks a program.
CONNECTION_ENV = ("HADOOP_CONF_DIR", "HADOOP_USER_NAME", "HADOOP_TOKEN_FILE_LOCATION", "KRB5CCNAME", "KRB5_CONFIG",
                  "TZ", "LANG", "LC_ALL")
BINARIES = ("hadoop_bin", "hdfs_bin")


class HadoopCliHook(BaseHook):
    """Resolves which ``hadoop``/``hdfs`` to run and with which environment.

    Binaries: arguments, then ``[impala_transfer]`` in the Airflow config, then PATH; a connection
    extra ``hadoop_bin``/``hdfs_bin`` is refused. Environment: the connection's ``env`` (only
    :data:`CONNECTION_ENV`), overridden by ``env`` (the operator's ``hadoop_env``: any variable),
    then ``proxy_user`` (``HADOOP_PROXY_USER``). Extras ``principal`` + ``keytab``: a private ticket
    cache (``KRB5CCNAME``), opened when the hook is made and closed when the task ends.
    """

    conn_name_attr = "hadoop_conn_id"
    default_conn_name = "hadoop_cli_default"
    conn_type = "hadoop_cli"
    hook_name = "Hadoop CLI (distcp, hdfs dfs)"

    def __init__(self, hadoop_conn_id: str | None = None, *, hadoop_bin: str | None = None,
                 hdfs_bin: str | None = None, env: dict[str, str] | None = None, proxy_user: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        extras: dict[str, Any] = {}
        if hadoop_conn_id:
            extras = self.get_connection(hadoop_conn_id).extra_dejson
        for name in BINARIES:
            if extras.get(name):
                raise ConfigError(name, f"is set in the extras of connection {hadoop_conn_id!r}, but a connection "
                                  "cannot choose the program a worker runs",
                                  f"pass {name}='/path/to/{name[:-4]}' to the operator (or impala_transfer_group), or "
                                  f"set [{CONFIG_SECTION}] {name} in the Airflow config; remove the extra")
        self.hadoop_bin: str = hadoop_bin or _configured("hadoop_bin") or "hadoop"
        self.hdfs_bin: str = hdfs_bin or _configured("hdfs_bin") or "hdfs"
        from_connection = connection_env(extras.get("env"), hadoop_conn_id)
        login = KeytabLogin.from_settings(extras.get("principal"), extras.get("keytab"),
                                          f"connection {hadoop_conn_id!r}")
        if login is not None:
            if "KRB5CCNAME" in from_connection:
                raise ConfigError("env", f"connection {hadoop_conn_id!r} sets both KRB5CCNAME in env and a principal "
                                  "and keytab: the clients can use one ticket cache",
                                  "remove KRB5CCNAME (the keytab's ticket goes to a private cache) or principal "
                                  "and keytab")
            from_connection.update(ticket_cache(login).env())
        merged = {**from_connection, **(env or {}), **proxy_user_env(proxy_user, "proxy_user")}
        self.env: dict[str, str] | None = {k: str(v) for k, v in merged.items()} or None
        # How distcp's YARN job runs: where it queues and how big it is (an allow-list), and where
        # the ResourceManager answers; DAG code may override each and set any distcp_conf key.
        self.yarn_queue: str | None = extras.get("yarn_queue") or None
        self.distcp_conf: dict[str, str] = check_distcp_conf(extras.get("distcp_conf"), connection=hadoop_conn_id)
        self.yarn_rm_url: str | None = extras.get("yarn_rm_url") or None

    def hdfs_shell(self, log: Callable[[str], None], timeout: float | None = DEFAULT_TIMEOUT) -> HdfsShell:
        """``hdfs dfs`` with this hook's binary and environment, each call bounded by ``timeout``."""
        return HdfsShell(hdfs_bin=self.hdfs_bin, runner=CommandRunner(timeout=timeout, env=self.env, log=log))

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: ``hdfs dfs -test -d /`` on the default filesystem of the
        connection's configuration (60 s at most), and who the clients are with Kerberos."""
        try:
            self.hdfs_shell(log=lambda line: None, timeout=60).test("-d", "/")
            env = {**os.environ, **(self.env or {})}
            who = f", as {ticket_summary(env['KRB5CCNAME'])}" if env.get("KRB5CCNAME") else ""
            return True, f"{self.hdfs_bin} dfs reached the default filesystem{who}"
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        finally:
            close_tickets()


def connection_env(env: Any, conn_id: str | None = None) -> dict[str, str]:
    """A ``hadoop_cli`` connection's ``env`` extra, if it sets only :data:`CONNECTION_ENV`."""
    if env in (None, "", {}):
        return {}
    where = f"the env extra of connection {conn_id!r}" if conn_id else "a connection's env extra"
    if not isinstance(env, dict):
        raise ConfigError("env", f"{where} is {type(env).__name__}, not an object",
                          'write {"HADOOP_CONF_DIR": "/etc/hadoop/conf"}')
    if "HADOOP_PROXY_USER" in env:
        raise ConfigError("env", f"HADOOP_PROXY_USER in {where} is not allowed: a connection cannot choose whom the "
                          "workers' Hadoop identity impersonates",
                          "pass proxy_user='<user>' to the operator or impala_transfer_group (DAG code), or "
                          "--proxy-user to the CLI; the cluster must allow it: hadoop.proxyuser.<the workers' "
                          "user>.hosts/groups/users")
    refused = sorted(str(name) for name in env if name not in CONNECTION_ENV)
    if refused:
        raise ConfigError("env", f"{', '.join(refused)} in {where} is not allowed: a connection may set only "
                          f"{', '.join(CONNECTION_ENV)}",
                          "set other variables with the operator argument hadoop_env= (DAG code), or remove them")
    for name, value in env.items():
        if value is not None and any(c in str(value) for c in "\0\n\r"):
            raise ConfigError("env", f"{name} in {where} is {value!r}", "give one line of text")
    return {name: str(value) for name, value in env.items() if value is not None}


def _configured(name: str) -> str | None:
    """``[impala_transfer] <name>`` from the Airflow config (or AIRFLOW__IMPALA_TRANSFER__<NAME>)."""
    return conf.get(CONFIG_SECTION, name, fallback=None) or None


def webhdfs_metadata(webhdfs_conn_id: str) -> WebHdfsMetadata:
    """WebHDFS of the target cluster through the hdfs provider's hook (HA namenodes, Kerberos),
    connected when first used."""

    def connect() -> Any:
        hook = WebHDFSHook(webhdfs_conn_id=webhdfs_conn_id)
        try:
            return hook.get_conn()
        except AirflowWebHDFSHookException as exc:  # "Failed to locate the valid server.": which, and why?
            connection = hook.get_connection(webhdfs_conn_id)
            tried = ", ".join(f"{host}:{connection.port}" for host in str(connection.host).split(","))
            raise TransferError(f"no NameNode answered at {tried} (check that it runs, and that host and port "
                                "are its HTTP address, dfs.namenode.http-address)") from exc

    return WebHdfsMetadata(connect=connect, name=f"WebHDFS connection {webhdfs_conn_id!r}")
