"""The seed tool's Python API (``impala_transfer.transfer``) on this provider's core.

Why this module exists: code written against the *impala-transfer-tool* (see its
``transfer-methods.md``) keeps working after changing one line::

    from impala_transfer.transfer import FSSpecFileTransferManager        # before
    from airflow_provider_impala_transfer.transfer import FSSpecFileTransferManager  # after

The classes keep the seed's names, signatures and return values (``transfer_files`` -> bool), but
they are thin adapters over the same core the operators and the CLI use: the traditional chain
is :func:`core.transfer.delivery.deliver_with_fallback` over :mod:`core.transfer.methods`, verification is
:func:`core.transfer.delivery.verify`, publishing is :func:`core.transfer.delivery.publish_files`. There is no second
implementation of copying, checking or publishing here. What changes for the user, on purpose:

* files are streamed in ``transfer_options['chunk_size']`` blocks (default 8 MiB), never read whole;
* every file is copied into a hidden staging directory (``<table>/_impala_transfer_staging/<run>/``),
  read back and compared (size + sha256) with what was read from the source, and only then moved
  into ``<target_path>/<target_table>/``: a file there is complete or absent, a same-named file is
  replaced (files of one call appear one after another: the directory is shared with other writers);
* configuration mistakes raise :class:`ConfigError` naming the setting and the fix; a failed
  transfer returns ``False`` as before, logs one line that says why, and keeps the detail in
  ``last_error`` (``last_results``/``last_attempts`` say what was delivered and by which method);
* secrets are masked in ``get_transfer_info()``, ``repr()``, log lines and ``last_error``;
* no shell: tools run as argv lists (see :mod:`core.transfer.commands`).

This module imports no Airflow: it works in any Python process with the provider installed.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import fsspec
from fsspec.core import split_protocol
from fsspec.registry import get_filesystem_class

from airflow_provider_impala_transfer.core.common.checksums import EMPTY_CRC32C, file_digests
from airflow_provider_impala_transfer.core.common.records import FileEntry
from airflow_provider_impala_transfer.core.common.secrets import Redactor, mask_secrets
from airflow_provider_impala_transfer.core.common.uris import (
    check_component,
    check_path_text,
    join,
    local_path,
    normalize_uri,
    scheme_of,
)
from airflow_provider_impala_transfer.core.errors import ConfigError, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner, resolve_binary
from airflow_provider_impala_transfer.core.transfer.delivery import (
    DEFAULT_VERIFY,
    check_verify_mode,
    deliver_files,
    deliver_with_fallback,
    verify,
)
from airflow_provider_impala_transfer.core.transfer.destinations import Destination, FsspecDestination
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run, RunLayout
from airflow_provider_impala_transfer.core.transfer.distcp import DistcpOptions
from airflow_provider_impala_transfer.core.transfer.methods import (
    FsspecMethod,
    TransferMethod,
    chain_from,
)
from airflow_provider_impala_transfer.core.transfer.publish import publish_files
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets

__all__ = ["FSSpecFileTransferManager", "UnifiedFileTransferManager", "ConfigError", "mask_secrets"]

log = logging.getLogger("airflow_provider_impala_transfer.transfer")  # the module users import

DEFAULT_CHUNK_SIZE = 8 << 20
TRANSFER_OPTIONS = ("chunk_size", "verify")
# Keys of a filesystem config that are ours, not the filesystem's.
LOCATION_KEYS = ("protocol", "bucket", "container", "target_path")
def _describe_exception(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- shared checks ---------------------------------------------------------------------------

def _check_table(target_table: object) -> str:
    if not isinstance(target_table, str):
        raise ConfigError("target_table", f"{target_table!r} is not a string", "give the table's directory name")
    check_component(target_table, "target_table")
    if target_table.startswith((".", "_")):
        raise ConfigError("target_table", f"{target_table!r} starts with '.' or '_', so Hive and Impala "
                          "would skip its directory", "start it with a letter or digit")
    return target_table


def _check_filepaths(filepaths: object) -> list[str]:
    if isinstance(filepaths, (str, bytes)) or not isinstance(filepaths, Iterable):
        raise ConfigError("filepaths", f"{filepaths!r} is not a list of paths", "pass a list, e.g. ['/data/a.parquet']")
    paths = list(filepaths)
    for path in paths:
        if not isinstance(path, str) or not path.strip():
            raise ConfigError("filepaths", f"{path!r} is not a path", "give file paths as strings")
    return paths


def _check_names(names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        check_component(name, "filepaths")
        if name.startswith((".", "_")):
            raise ConfigError("filepaths", f"{name!r} starts with '.' or '_', so Hive and Impala would skip it",
                              "rename the file")
        if name in seen:
            raise ConfigError("filepaths", f"two files are named {name!r}; they would land on the same "
                              "target path", "transfer them in separate calls or rename one")
        seen.add(name)


def _run_id() -> str:
    return f"python-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _protocols(cls: type) -> tuple[str, ...]:
    protocol = getattr(cls, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _progress_log(message: str) -> None:
    """Progress lines while a file is copied, at most every 10 s."""
    log.info("%s", message)


def _url(cls: type, path: str) -> str:
    """``path`` of a filesystem class as a URL, without building the filesystem."""
    protocol = (_protocols(cls) or ("file",))[0]
    return path if split_protocol(path)[0] else f"{protocol}://{path}"


# --- FSSpecFileTransferManager -----------------------------------------------------------------

class _FsSide:
    """One side (source or target) of an fsspec transfer: an instance, or a config to build one."""

    def __init__(self, role: str, config: dict[str, Any] | None, fs: fsspec.AbstractFileSystem | None):
        self.role = role
        self.field = f"{role}_fs_config"
        if config is not None and not isinstance(config, dict):
            raise ConfigError(self.field, f"is a {type(config).__name__}, not a dict",
                              "give a dict such as {'protocol': 's3', 'bucket': 'my-bucket'}")
        if fs is not None and not isinstance(fs, fsspec.AbstractFileSystem):
            raise ConfigError(f"{role}_fs", f"is a {type(fs).__name__}, not an fsspec filesystem",
                              "pass fsspec.filesystem(...) or a config dict")
        self.config = dict(config or {})
        self._fs = fs
        protocol = self.config.get("protocol", "file")
        if fs is not None:
            self.cls: type = type(fs)
            self.protocol = _protocols(self.cls)[0] if _protocols(self.cls) else protocol
        else:
            if not isinstance(protocol, str) or not protocol:
                raise ConfigError(f"{self.field}.protocol", f"{protocol!r} is not a protocol name",
                                  "for example 'file', 's3', 'gcs', 'abfs', 'hdfs', 'sftp', 'memory'")
            try:
                self.cls = get_filesystem_class(protocol)
            except ValueError:
                known = ", ".join(sorted(fsspec.available_protocols())[:40])
                raise ConfigError(f"{self.field}.protocol", f"{protocol!r} is not an fsspec protocol",
                                  f"use one of {known}") from None
            except ImportError as exc:
                raise ConfigError(f"{self.field}.protocol", f"{protocol!r} needs a package that is not "
                                  f"installed: {exc}", "install it in this environment") from None
            self.protocol = protocol
        for key in ("bucket", "container", "target_path"):
            value = self.config.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{self.field}.{key}", f"{value!r} is not a name or path", "give a string or leave it out")
        if "bucket" in self.config and "container" in self.config:
            raise ConfigError(self.field, "has both 'bucket' and 'container'", "keep the one your store uses")

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items() if k not in LOCATION_KEYS}

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            self._fs = fsspec.filesystem(self.protocol, **self.options)
        return self._fs

    @property
    def built(self) -> bool:
        return self._fs is not None

    def strip(self, path: str, field: str) -> str:
        """A path or URL in this filesystem's own syntax (no protocol)."""
        protocol, _ = split_protocol(path)
        if protocol and protocol.lower() not in _protocols(self.cls):
            raise ConfigError(field, f"{mask_secrets(path)!r} is a {protocol}:// URL, but the {self.role} "
                              f"filesystem is {self.protocol}", f"give a path in the {self.protocol} "
                              f"filesystem (or a {self.protocol}:// URL), or change the {self.role} filesystem")
        return self.cls._strip_protocol(path)

    def base(self, target_path: str | None) -> str | None:
        """Where ``<table>/`` goes: ``target_path`` (a URL is absolute; a plain path is inside the
        config's bucket/container), else the config's bucket/container + ``target_path``."""
        container = self.config.get("bucket") or self.config.get("container")
        field = "target_path"
        if target_path is None:
            target_path, field = self.config.get("target_path"), f"{self.field}.target_path"
        elif not isinstance(target_path, str) or not target_path.strip():
            raise ConfigError("target_path", f"{target_path!r} is not a path", "give a path or URL, or leave it out")
        if target_path is None:
            if not container:
                return None
            return self.strip(container, f"{self.field}.bucket")
        check_path_text(target_path, field)
        if split_protocol(target_path)[0]:
            return self.strip(target_path, field)
        if container:
            return self.strip(join(container, target_path.lstrip("/")), field)
        return self.strip(target_path, field)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"protocol": self.protocol, "type": self.cls.__name__,
                                "config": mask_secrets(self.config)}
        if self._fs is not None:
            info["storage_options"] = mask_secrets(dict(getattr(self._fs, "storage_options", {}) or {}))
        return info

    def secrets(self) -> list[Any]:
        sources: list[Any] = [self.config]
        if self._fs is not None:
            sources.append(dict(getattr(self._fs, "storage_options", {}) or {}))
        return sources


def _transfer_options(options: object) -> dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError("transfer_options", f"is a {type(options).__name__}, not a dict",
                          "for example {'chunk_size': 8 * 1024 * 1024}")
    unknown = sorted(set(options) - set(TRANSFER_OPTIONS))
    if unknown:
        raise ConfigError("transfer_options", f"unknown option(s) {', '.join(map(repr, unknown))}",
                          f"use {', '.join(TRANSFER_OPTIONS)}")
    chunk_size = options.get("chunk_size", DEFAULT_CHUNK_SIZE)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ConfigError("transfer_options.chunk_size", f"{chunk_size!r} is not a number of bytes > 0",
                          "for example 8 * 1024 * 1024")
    # fsspec stores offer no checksum comparable with the source's: a read-back sha256 is the check
    mode = check_verify_mode(options.get("verify", "sha256"), "transfer_options.verify")
    return {"chunk_size": chunk_size, "verify": mode}


class FSSpecFileTransferManager:
    """Copy files between any two fsspec filesystems into ``<target_path>/<target_table>/``.

    :param source_fs_config, target_fs_config: ``{'protocol': 's3', <that filesystem's options>,
        'bucket'|'container': ..., 'target_path': ...}``; ``protocol`` defaults to ``'file'``.
        ``bucket``/``container``/``target_path`` say where files go and are not passed to the
        filesystem.
    :param source_fs, target_fs: ready filesystem instances; used instead of building one from
        the config (a config given too still supplies bucket/container/target_path).
    :param transfer_options: ``chunk_size`` (bytes read and written per block, default 8 MiB) and
        ``verify`` (``'sha256'``, default, or ``'size'``).

    Filesystems given as configs are built when first needed (``validate_config`` or
    ``transfer_files``), so a store that cannot be reached makes the transfer return False.

    Memory: reading holds one ``chunk_size`` block; writing buffers what the target filesystem
    buffers (local, SFTP: nothing more; s3fs uploads parts of its ``default_block_size``, 50 MiB
    unless the target config sets e.g. ``'default_block_size': 8 * 2**20``, at least 5 MiB).
    """

    def __init__(self, source_fs_config: dict[str, Any] | None = None, target_fs_config: dict[str, Any] | None = None,
                 source_fs: fsspec.AbstractFileSystem | None = None, target_fs: fsspec.AbstractFileSystem | None = None,
                 transfer_options: dict[str, Any] | None = None):
        self._source = _FsSide("source", source_fs_config, source_fs)
        self._target = _FsSide("target", target_fs_config, target_fs)
        self.transfer_options = _transfer_options(transfer_options)
        self.last_error: str | None = None
        self.last_results: list[dict[str, Any]] = []

    # the seed's attributes
    @property
    def source_fs(self) -> fsspec.AbstractFileSystem:
        return self._source.fs

    @property
    def target_fs(self) -> fsspec.AbstractFileSystem:
        return self._target.fs

    @property
    def source_fs_config(self) -> dict[str, Any]:
        return dict(self._source.config)

    @property
    def target_fs_config(self) -> dict[str, Any]:
        return dict(self._target.config)

    def _redactor(self) -> Redactor:
        return Redactor(*self._source.secrets(), *self._target.secrets())

    def __repr__(self) -> str:
        base = self._target.config.get("target_path") or self._target.config.get("bucket") or \
            self._target.config.get("container")
        where = f", target_path={mask_secrets(base)!r}" if base else ""
        return (f"{type(self).__name__}(source={self._source.protocol!r}, target={self._target.protocol!r}"
                f"{where}, chunk_size={self.transfer_options['chunk_size']}, verify={self.transfer_options['verify']!r})")

    def target_dir(self, target_table: str, target_path: str | None = None) -> str:
        """``<base>/<target_table>`` in the target filesystem's syntax; raises ConfigError."""
        table = _check_table(target_table)
        base = self._target.base(target_path)
        if base is None:
            raise ConfigError("target_path", "is not set, so there is nowhere to put the files",
                              "pass target_path= to transfer_files (e.g. 's3://my-bucket/transfers/') or put "
                              "'target_path' (and 'bucket'/'container') in target_fs_config")
        return join(base, table)

    def transfer_files(self, filepaths: list[str], target_table: str, target_path: str | None = None) -> bool:
        """Stream, verify and publish ``filepaths`` (paths or URLs in the source filesystem) into
        ``<target_path>/<target_table>/<file name>``. True when every file is there and verified.

        Raises :class:`ConfigError` for a wrong setting (before anything is written); returns
        False when a transfer fails, with the reason in ``last_error``."""
        self.last_error, self.last_results = None, []
        paths = _check_filepaths(filepaths)
        table_dir = self.target_dir(target_table, target_path)
        sources = [self._source.strip(p, "filepaths") for p in paths]
        names = [posixpath.basename(s.rstrip("/")) for s in sources]
        _check_names(names)
        if not paths:
            log.info("%s: no files to transfer", target_table)
            return True
        run = Run(run_id=_run_id())
        layout = run.at(table_dir)
        chunk, mode = self.transfer_options["chunk_size"], self.transfer_options["verify"]
        destination: Destination | None = None
        step = f"connecting to the source ({self._source.protocol})"
        try:
            source_fs = self._source.fs
            step = f"connecting to the target ({self._target.protocol})"
            target_fs = self._target.fs
            destination = FsspecDestination(fs=target_fs, root=table_dir)
            staging = layout.staging_dir
            method = FsspecMethod(destination=destination, source_fs=source_fs, block_size=chunk, log=_progress_log)
            copied: list[FileEntry] = []
            for path, name in zip(sources, names):  # one by one, so a failure names its file
                step = f"copying {source_fs.unstrip_protocol(path)} to {destination.describe(join(staging, name))}"
                copied += method.copy([FileEntry(path=path, bytes=-1, sha256="")], run)
                log.info("copied %s: %s bytes, sha256 %s", name, f"{copied[-1].bytes:,}", copied[-1].sha256)
            step = f"verifying {destination.describe(staging)}"
            verified = verify(destination, staging, copied, mode=mode)
            step = f"publishing into {destination.describe(table_dir)}"
            published = publish_files(destination, staging, table_dir, names, log=log.info)
        except Exception as exc:  # noqa: BLE001 - the seed's contract is a bool; the detail is kept
            return self._failed(target_table, step, exc, destination, layout)
        self.last_results = [{"path": final, "bytes": entry.bytes, "sha256": entry.sha256,
                              "source": source_fs.unstrip_protocol(source.path),
                              "checksum_verified": entry.checksum_verified}
                             for final, entry, source in zip(published, verified, copied)]
        log.info("%s: %d file(s), %s bytes delivered to %s", target_table, len(copied),
                 f"{sum(f.bytes for f in copied):,}", destination.describe(table_dir))
        return True

    def _failed(self, table: str, step: str, exc: BaseException, destination: Destination | None,
                layout: RunLayout) -> bool:
        redact = self._redactor()
        self.last_error = redact(f"{step}: {_describe_exception(exc)}")
        log.error("%s: transfer failed while %s", table, self.last_error)
        if destination is not None:
            try:
                destination.remove([layout.staging_dir], recursive=True)
            except Exception as cleanup:  # noqa: BLE001 - best effort; the first error is what matters
                log.warning("%s: could not remove %s: %s", table, destination.describe(layout.staging_dir),
                            redact(_describe_exception(cleanup)))
        return False

    def validate_config(self) -> bool:
        """True when both filesystems can be built and the configured target can be reached;
        otherwise False with the reason in ``last_error``."""
        self.last_error = None
        step = "checking the configuration"
        try:
            step = f"connecting to the source ({self._source.protocol})"
            self._source.fs  # noqa: B018 - builds it
            step = f"connecting to the target ({self._target.protocol})"
            target_fs = self._target.fs
            base = self._target.base(None)
            if base is not None:
                step = f"looking up {target_fs.unstrip_protocol(base)}"
                target_fs.exists(base)
        except Exception as exc:  # noqa: BLE001
            self.last_error = self._redactor()(f"{step}: {_describe_exception(exc)}")
            log.error("configuration check failed while %s", self.last_error)
            return False
        return True

    def get_transfer_info(self) -> dict[str, Any]:
        """What this manager is set up to do, with every secret masked."""
        source, target = self._source.describe(), self._target.describe()
        try:
            base = self._target.base(None)
        except ConfigError:
            base = None
        return {
            "transfer_method": "fsspec",
            "source_protocol": source["protocol"],
            "target_protocol": target["protocol"],
            "source_fs_configured": bool(self._source.config) or self._source.built,
            "target_fs_configured": bool(self._target.config) or self._target.built,
            "source_fs_type": source["type"],
            "target_fs_type": target["type"],
            "source_fs_config": source["config"],
            "target_fs_config": target["config"],
            "source_storage_options": source.get("storage_options"),
            "target_storage_options": target.get("storage_options"),
            "target_base": mask_secrets(_url(self._target.cls, base)) if base is not None else None,
            "transfer_options": dict(self.transfer_options),
        }


# --- UnifiedFileTransferManager ----------------------------------------------------------------

TRADITIONAL_KWARGS = ("target_hdfs_path", "use_distcp", "source_hdfs_path", "target_cluster", "scp_target_host",
                      "scp_target_path")
EXTRA_KWARGS = ("scp_user", "scp_port", "scp_key_file", "scp_known_hosts", "scp_host_key_checking", "hadoop_bin",
                "hdfs_bin", "hadoop_env", "distcp_maps", "distcp_bandwidth_mb", "yarn_queue", "distcp_conf",
                "yarn_rm_url", "command_timeout", "verify")
FSSPEC_CONFIG_KEYS = ("source_fs_config", "target_fs_config", "transfer_options")


def _local_source(path: str) -> FileEntry:
    """Size, sha256 and CRC32C of a local file, read once."""
    digests = file_digests(fsspec.filesystem("file"), path)
    return FileEntry(path=path, bytes=digests.size, sha256=digests.sha256, crc32c=digests.crc32c)


class UnifiedFileTransferManager:
    """The seed's switch between the fsspec manager and the traditional chain.

    ``use_fsspec=True``: an :class:`FSSpecFileTransferManager` built from ``source_fs``,
    ``target_fs`` and ``fsspec_config`` (``source_fs_config``, ``target_fs_config``,
    ``transfer_options``).

    Otherwise the chain distcp -> hdfs put -> hdfs cp -> scp (hdfs put first with
    ``use_distcp=False``), each attempt verified (size + sha256) before the next is skipped. Settings:
    the seed's ``target_hdfs_path``, ``use_distcp``, ``source_hdfs_path``, ``target_cluster``,
    ``scp_target_host``, ``scp_target_path``, and ``scp_user``, ``scp_port``, ``scp_key_file``,
    ``scp_known_hosts``, ``scp_host_key_checking`` ('yes' or 'accept-new'), ``hadoop_bin``,
    ``hdfs_bin``, ``hadoop_env``, ``distcp_maps``, ``distcp_bandwidth_mb``, ``yarn_queue``,
    ``distcp_conf`` and ``yarn_rm_url`` (the distcp job's queue, settings and ResourceManager), ``command_timeout``
    (seconds per tool run), ``verify`` ('sha256' or 'size'). Files go to
    ``<target_hdfs_path>/<target_table>/`` (``hdfs://<target_cluster><path>`` when a cluster is
    given) or ``<scp_target_path>/<target_table>/`` on the scp host.
    """

    def __init__(self, use_fsspec: bool = False, fsspec_config: dict[str, Any] | None = None,
                 source_fs: fsspec.AbstractFileSystem | None = None, target_fs: fsspec.AbstractFileSystem | None = None,
                 **traditional_kwargs: Any):
        unknown = sorted(set(traditional_kwargs) - set(TRADITIONAL_KWARGS) - set(EXTRA_KWARGS))
        if unknown:
            raise ConfigError(", ".join(unknown), "unknown setting(s) of UnifiedFileTransferManager",
                              f"use {', '.join(TRADITIONAL_KWARGS + EXTRA_KWARGS)}")
        self.use_fsspec = bool(use_fsspec)
        self.settings = dict(traditional_kwargs)
        self.fsspec_manager: FSSpecFileTransferManager | None = None
        self.last_attempts: list[dict[str, Any]] = []
        self._last_error: str | None = None
        self._last_results: list[dict[str, Any]] = []
        if self.use_fsspec:
            config = fsspec_config or {}
            if not isinstance(config, dict):
                raise ConfigError("fsspec_config", f"is a {type(config).__name__}, not a dict",
                                  f"give a dict with {', '.join(FSSPEC_CONFIG_KEYS)}")
            extra = sorted(set(config) - set(FSSPEC_CONFIG_KEYS))
            if extra:
                raise ConfigError("fsspec_config", f"unknown key(s) {', '.join(map(repr, extra))}",
                                  f"use {', '.join(FSSPEC_CONFIG_KEYS)}")
            if traditional_kwargs:
                log.warning("use_fsspec=True: ignoring %s (they configure the traditional chain)",
                            ", ".join(sorted(traditional_kwargs)))
            self.fsspec_manager = FSSpecFileTransferManager(source_fs=source_fs, target_fs=target_fs, **config)
            return
        if fsspec_config or source_fs is not None or target_fs is not None:
            raise ConfigError("use_fsspec", "is False, but fsspec_config/source_fs/target_fs were given",
                              "pass use_fsspec=True to use them, or drop them")
        self._check_traditional()

    # settings of the traditional chain -------------------------------------------------------
    def _get(self, name: str, default: Any = None) -> Any:
        value = self.settings.get(name)
        return default if value is None else value

    def _check_traditional(self) -> None:
        s = self._get
        if s("target_hdfs_path"):
            normalize_uri(s("target_hdfs_path"), "target_hdfs_path", cluster=s("target_cluster"))
        if s("scp_target_host") or s("scp_target_path"):
            self._scp_target(None)
        check_verify_mode(s("verify", DEFAULT_VERIFY))
        if s("hadoop_env") is not None and not isinstance(s("hadoop_env"), dict):
            raise ConfigError("hadoop_env", "is not a dict", "for example {'HADOOP_CONF_DIR': '/etc/hadoop/conf'}")
        timeout = s("command_timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigError("command_timeout", f"{timeout!r} is not a number of seconds > 0", "fix or leave unset")
        self._distcp_options()

    def _distcp_options(self) -> DistcpOptions:
        return DistcpOptions(maps=self._get("distcp_maps", 20), bandwidth_mb=self._get("distcp_bandwidth_mb"),
                             yarn_queue=self._get("yarn_queue"), conf=self._get("distcp_conf") or {},
                             resource_manager=self._get("yarn_rm_url"))

    def _scp_target(self, table: str | None) -> ScpTarget | None:
        s = self._get
        host, path = s("scp_target_host"), s("scp_target_path")
        if not host and not path:
            return None
        if not host:
            raise ConfigError("scp_target_host", "is not set but scp_target_path is", "set both or neither")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError("scp_target_path", f"{path!r} is not an absolute path",
                              "give the directory on the scp host, e.g. /data/incoming")
        check_path_text(path, "scp_target_path")
        port = s("scp_port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError("scp_port", f"{port!r} is not a port number", "e.g. 22")
        return ScpTarget(host=host, remote_path=join(path, table) if table else path, user=s("scp_user"), port=port,
                         key_file=s("scp_key_file"), known_hosts=s("scp_known_hosts"),
                         host_key_checking=s("scp_host_key_checking", "yes"))

    def _hdfs_root(self, table: str | None, target_path: str | None) -> str | None:
        field, base = ("target_path", target_path) if target_path is not None else \
            ("target_hdfs_path", self._get("target_hdfs_path"))
        if not base:
            return None
        root = normalize_uri(base, field, cluster=self._get("target_cluster"))
        return join(root, table) if table else root

    def _targets(self, table: str | None, target_path: str | None) -> TransferTargets:
        return TransferTargets(hdfs_root=self._hdfs_root(table, target_path),
                               source_hdfs_path=self._get("source_hdfs_path"),
                               hadoop_bin=self._get("hadoop_bin", "hadoop"), hdfs_bin=self._get("hdfs_bin", "hdfs"),
                               hadoop_env=self._get("hadoop_env"), distcp=self._distcp_options(),
                               scp=self._scp_target(table), command_timeout=self._get("command_timeout"))

    @property
    def chain(self) -> list[str]:
        return chain_from(None, use_distcp=bool(self._get("use_distcp", True)))

    def _redactor(self) -> Redactor:
        return Redactor(self.settings)

    # the seed's API ----------------------------------------------------------------------------
    @property
    def last_error(self) -> str | None:
        return self.fsspec_manager.last_error if self.fsspec_manager else self._last_error

    @property
    def last_results(self) -> list[dict[str, Any]]:
        return self.fsspec_manager.last_results if self.fsspec_manager else self._last_results

    def __repr__(self) -> str:
        if self.fsspec_manager:
            return f"{type(self).__name__}(use_fsspec=True, manager={self.fsspec_manager!r})"
        shown = {k: v for k, v in mask_secrets(self.settings).items()
                 if k in ("target_hdfs_path", "target_cluster", "scp_target_host", "scp_target_path", "use_distcp")}
        return f"{type(self).__name__}(use_fsspec=False, chain={self.chain}, " + \
            ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def get_transfer_info(self) -> dict[str, Any]:
        if self.fsspec_manager:
            return {**self.fsspec_manager.get_transfer_info(), "use_fsspec": True}
        return {"transfer_method": self.chain[0], "use_fsspec": False, "chain": self.chain,
                **{k: None for k in TRADITIONAL_KWARGS}, **mask_secrets(self.settings),
                "use_distcp": bool(self._get("use_distcp", True))}

    def validate_config(self) -> bool:
        """True when at least one method of the chain has its settings and its tools; the others'
        reasons are logged and kept in ``last_error``."""
        if self.fsspec_manager:
            return self.fsspec_manager.validate_config()
        targets, problems, usable = self._targets(None, None), [], []
        runner = targets.runner()
        for name in self.chain:
            try:
                targets.method(name, runner)
                tools = {"distcp": [(targets.hadoop_bin, "hadoop_bin"), (targets.hdfs_bin, "hdfs_bin")],
                         "scp": [("scp", "scp_bin"), ("ssh", "ssh_bin")]}.get(name, [(targets.hdfs_bin, "hdfs_bin")])
                for binary, setting in tools:
                    resolve_binary(binary, setting)
                usable.append(name)
            except (ConfigError, TransferError) as exc:
                problems.append(f"{name}: {exc}")
        self._last_error = self._redactor()("; ".join(problems)) if problems else None
        for problem in problems:
            log.warning("cannot use %s", self._redactor()(problem))
        return bool(usable)

    def transfer_files(self, filepaths: list[str], target_table: str, target_path: str | None = None) -> bool:
        """Deliver ``filepaths`` into ``<target>/<target_table>/`` with the first method of the
        chain that works (verified), then publish them there. ``target_path`` overrides
        ``target_hdfs_path`` for this call."""
        if self.fsspec_manager:
            started = time.monotonic()
            ok = self.fsspec_manager.transfer_files(filepaths, target_table, target_path)
            self.last_attempts = [{"method": "fsspec", "delivered": ok, "error": self.fsspec_manager.last_error,
                                   "seconds": round(time.monotonic() - started, 3)}]
            return ok
        self._last_error, self._last_results, self.last_attempts = None, [], []
        paths = _check_filepaths(filepaths)
        table = _check_table(target_table)
        for path in paths:
            scheme = scheme_of(path)
            if scheme not in ("", "file", "hdfs", "viewfs"):
                raise ConfigError("filepaths", f"{mask_secrets(path)!r} is a {scheme}:// URL",
                                  "give local paths or hdfs:// URIs (or use use_fsspec=True)")
        names = [posixpath.basename(p.rstrip("/")) for p in paths]
        _check_names(names)
        targets = self._targets(table, target_path)
        if targets.hdfs_root is None and targets.scp is None:
            raise ConfigError("target_hdfs_path", "is not set and scp is not configured, so there is nowhere to "
                              "put the files", "set target_hdfs_path (or pass target_path=) or "
                              "scp_target_host + scp_target_path")
        if not paths:
            log.info("%s: no files to transfer", table)
            return True
        redact = self._redactor()
        run = Run(run_id=_run_id())
        runner = targets.runner(log=lambda message: log.debug("%s", redact(message)))
        built: list[TransferMethod] = []
        delivered_by: list[TransferMethod] = []
        step = "reading the source files"
        try:
            files = self._source_files(paths, runner)

            def build(name: str) -> TransferMethod:
                method = targets.method(name, runner)
                built.append(method)
                return method

            def deliver(method: TransferMethod, overwrite: bool) -> DeliveryRecord:
                record = deliver_files(method, files, run, label=table, overwrite=overwrite,
                                       verify_mode=self._get("verify", DEFAULT_VERIFY),
                                       log=lambda message: log.info("%s", redact(message)))
                delivered_by.append(method)
                return record

            step = "delivering"
            record, attempts = deliver_with_fallback(
                [(name, lambda name=name: build(name)) for name in self.chain], deliver, label=table,
                log=lambda message: log.info("%s", redact(message)))
            self.last_attempts = [{"method": a.method, "delivered": a.delivered, "error": redact(a.error) if a.error else None,
                                   "seconds": round(a.seconds, 3)} for a in attempts]
            log.info("%s: %s", table, "; ".join(f"{a['method']} " + ("delivered" if a["delivered"] else f"failed ({a['error']})")
                                             for a in self.last_attempts))
            if record is None:
                raise TransferError("no method delivered: " + "; ".join(f"{a['method']}: {a['error']}"
                                                                       for a in self.last_attempts))
            method = delivered_by[-1]
            destination = method.destination
            step = f"publishing into {destination.describe(destination.root)}"
            published = publish_files(destination, method.target_dir(run), destination.root, names,
                                      log=lambda message: log.info("%s", redact(message)))
        except Exception as exc:  # noqa: BLE001 - the seed's contract is a bool; the detail is kept
            self._last_error = redact(f"{step}: {_describe_exception(exc)}")
            log.error("%s: transfer failed while %s", table, self._last_error)
            self._cleanup(built, run, redact)
            return False
        self._cleanup([m for m in built if m.destination.kind != method.destination.kind], run, redact)
        self._last_results = [{"path": final, "bytes": entry.bytes, "sha256": entry.sha256, "method": method.name,
                               "checksum_verified": entry.checksum_verified}
                              for final, entry in zip(published, record.files)]
        return True

    def _source_files(self, paths: Sequence[str], runner: CommandRunner) -> list[FileEntry]:
        files, remote = [], []
        for path in paths:
            local = local_path(path) if scheme_of(path) else os.path.abspath(path)
            if local is not None:
                files.append(_local_source(local))
            else:
                remote.append(len(files))
                files.append(FileEntry(path=path, bytes=-1, sha256=""))
        if remote:  # hdfs:// sources: sizes, sha256 and CRC32C through the cluster client, one call each
            shell = HdfsShell(hdfs_bin=self._get("hdfs_bin", "hdfs"), runner=runner)
            urls = [files[i].path for i in remote]
            sizes = shell.sizes(urls)
            digests = shell.sha256(urls, [sizes[u] for u in urls])
            crcs = shell.crc32c([u for u in urls if sizes[u]])  # None where the cluster has no composite CRC
            for i, url, digest in zip(remote, urls, digests):
                crc = crcs.get(url) if sizes[url] else EMPTY_CRC32C
                files[i] = FileEntry(path=url, bytes=sizes[url], sha256=digest, crc32c=crc)
        return files

    def _cleanup(self, methods: Sequence[TransferMethod], run: Run, redact: Callable[[str], str]) -> None:
        """Remove this run's staging directories that an attempt may have left (best effort)."""
        seen: set[tuple[str, str]] = set()
        for method in methods:
            destination = method.destination
            staging = method.target_dir(run)
            if (destination.kind, staging) in seen:
                continue
            seen.add((destination.kind, staging))
            try:
                if destination.is_dir(staging):
                    destination.remove([staging], recursive=True)
            except Exception as exc:  # noqa: BLE001
                log.debug("could not remove %s: %s", destination.describe(staging), redact(_describe_exception(exc)))
