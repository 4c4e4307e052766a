"""Every method's target in one object, built from plain settings: the CLI and the Python
managers use it directly; the operators build the same methods from Airflow connections.

A method whose settings are missing raises :class:`ConfigError` naming the setting, so in a
fallback chain it counts as a failed attempt and the next method runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_impala_transfer.core.common.uris import check_hadoop_path
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.destinations import (
    Destination,
    FsspecDestination,
    HdfsDestination,
    SshDestination,
)
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.distcp import DistcpMethod, DistcpOptions
from airflow_provider_impala_transfer.core.transfer.methods import (
    FsspecMethod,
    HdfsCpMethod,
    HdfsPutMethod,
    ScpMethod,
    TransferMethod,
    check_method,
)
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata

DESTINATION_OF = {"distcp": "hdfs", "hdfs_put": "hdfs", "hdfs_cp": "hdfs", "scp": "ssh", "fsspec": "fsspec"}


@dataclass
class TransferTargets:
    """Where each method delivers.

    :param hdfs_root: target of distcp / hdfs put / hdfs cp (``hdfs://nn/path``, ``file:///path``,
        or an absolute path on the client's default filesystem; distcp needs a cluster URI).
    :param scp: the scp host and remote directory (None: scp is not configured).
    :param fsspec: the fsspec filesystem and the directory in it (see :func:`fsspec_destination`).
    :param webhdfs: WebHDFS of the target cluster: exists/list/rename/mkdir/delete without a JVM.
    """

    hdfs_root: str | None = None
    source_hdfs_path: str | None = None
    hadoop_bin: str = "hadoop"
    hdfs_bin: str = "hdfs"
    hadoop_env: dict[str, str] | None = None
    distcp: DistcpOptions = field(default_factory=DistcpOptions)
    listing_dir: str | None = None
    scp: ScpTarget | None = None
    fsspec: FsspecDestination | None = None
    webhdfs: WebHdfsMetadata | None = None  # the target cluster's WebHDFS, for metadata steps
    command_timeout: float | None = None
    withhold: tuple[str, ...] = ()  # environment variables no tool may see (the CLI's password variable)

    def runner(self, log: Callable[[str], None] = lambda message: None, *,
               timeout: float | None = None) -> CommandRunner:
        """One runner per task or chunk: ``stop()`` cancels that one's tools (``timeout`` overrides
        ``command_timeout``, e.g. for a quick connection test)."""
        return CommandRunner(timeout=timeout or self.command_timeout,
                             env=dict(self.hadoop_env) if self.hadoop_env else None, log=log, withhold=self.withhold)

    def method(self, name: str, runner: CommandRunner, log: Callable[[str], None] = lambda m: None) -> TransferMethod:
        name = check_method(name)
        if name == "scp":
            return ScpMethod(destination=self.destination("ssh", runner), runner=runner)
        if name == "fsspec":
            return FsspecMethod(destination=self.destination("fsspec", runner), runner=runner, log=log)
        destination = self.destination("hdfs", runner)
        if name == "distcp":
            if "://" not in destination.root:
                raise ConfigError("target_cluster", f"distcp copies to another cluster, but the target "
                                  f"{destination.root!r} names none",
                                  "set target_cluster (CLI: --target-cluster / TARGET_CLUSTER) or give "
                                  "hdfs://<namenode>/path, or start the chain with hdfs_put")
            options = DistcpOptions(**{**self.distcp.__dict__, "hadoop_bin": self.hadoop_bin})
            extra: dict[str, Any] = {"listing_dir": self.listing_dir} if self.listing_dir else {}
            source = check_hadoop_path(self.source_hdfs_path, "source_hdfs_path") if self.source_hdfs_path else None
            return DistcpMethod(destination=destination, source_shell=destination.shell, runner=runner,
                                source_hdfs_path=source, options=options, **extra)
        cls = HdfsPutMethod if name == "hdfs_put" else HdfsCpMethod
        return cls(destination=destination, runner=runner)

    def destination(self, kind: str, runner: CommandRunner) -> Destination:
        if kind == "ssh":
            if self.scp is None:
                raise ConfigError("scp_target_host", "scp is not configured",
                                  "set scp_target_host and scp_target_path (CLI: --scp-target-host, --scp-target-path)")
            return SshDestination(target=self.scp, runner=runner)
        if kind == "fsspec":
            if self.fsspec is None:
                raise ConfigError("target_path", "no fsspec target is configured", "give an fsspec URL such as s3://bucket/path")
            return self.fsspec
        if not self.hdfs_root:
            raise ConfigError("target_hdfs_path", "is not set", "set target_hdfs_path (CLI: --target-hdfs-path / TARGET_HDFS_PATH)")
        return HdfsDestination(root=check_hadoop_path(self.hdfs_root, "target_path"),
                               shell=HdfsShell(hdfs_bin=self.hdfs_bin, runner=runner),
                               metadata=self.webhdfs)
