"""The transfer methods: what each runs to move one chunk's files into a run's staging directory.

Each method builds its command lines in ``commands()`` and ``deliver()`` runs exactly those;
``describe()`` says in words what a delivery does (the command lines; for fsspec, which has no
external program, each copy), which the CLI's ``--dry-run`` prints. Verification lives in
:mod:`.delivery`, publishing in :mod:`.publish`.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.callbacks import Callback

from airflow_provider_impala_transfer.core.common.checksums import Digests
from airflow_provider_impala_transfer.core.common.records import FileEntry
from airflow_provider_impala_transfer.core.common.uris import is_hadoop_uri, join
from airflow_provider_impala_transfer.core.common.values import check_choice
from airflow_provider_impala_transfer.core.errors import ConfigError, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner, resolve_binary
from airflow_provider_impala_transfer.core.transfer.destinations import (
    Destination,
    FsspecDestination,
    HdfsDestination,
    SshDestination,
)
from airflow_provider_impala_transfer.core.transfer.layout import Run

CHAIN = ("distcp", "hdfs_put", "hdfs_cp", "scp")
METHODS = (*CHAIN, "fsspec")


def check_method(method: object, field: str = "method") -> str:
    return check_choice(method, field, METHODS, "a transfer method")


def chain_from(method: str | None = None, *, use_distcp: bool = True) -> list[str]:
    """The methods tried for a chunk, in order: the seed's distcp -> hdfs put -> hdfs cp -> scp,
    entered at ``method`` (``fsspec`` is a chain of its own)."""
    if method is None or method == "":
        method = "distcp" if use_distcp else "hdfs_put"
    method = check_method(method)
    if method == "distcp" and not use_distcp:
        raise ConfigError("use_distcp", "is false but method is 'distcp'", "drop one of the two")
    if method == "fsspec":
        return ["fsspec"]
    return list(CHAIN[CHAIN.index(method):])


def _local_paths(files: Sequence[FileEntry], method: str) -> list[str]:
    paths = [f.local for f in files]
    if any(p is None for p in paths):
        remote = next(f.path for f in files if f.local is None)
        raise TransferError(f"{method} copies files from this machine, but {remote} is not local "
                            "(use hdfs_cp or distcp for files already on a cluster)")
    return paths  # type: ignore[return-value]


def _local_uris(files: Sequence[FileEntry], method: str) -> list[str]:
    """Local files as ``file://`` URIs for ``hdfs dfs -put``: FsShell resolves a plain path that is
    not a valid URI (a space in it) on the cluster's default filesystem, not on this machine."""
    return ["file://" + path for path in _local_paths(files, method)]


class TransferMethod(ABC):
    name: str
    destination: Destination
    runner: CommandRunner
    copies_from_hdfs = False  # True: takes hdfs:// sources as they are (distcp, hdfs cp)

    def needs_local_copies(self, files: Sequence[FileEntry]) -> bool:
        """Staged files (on a cluster or an object store) that this method can only copy from this
        machine: all but those on a Hadoop cluster for a method that takes them as they are."""
        return any(f.local is None and not (self.copies_from_hdfs and is_hadoop_uri(f.path)) for f in files)

    def target_dir(self, run: Run) -> str:
        """The run's staging directory on this method's destination."""
        return run.at(self.destination.root).staging_dir

    @abstractmethod
    def commands(self, files: Sequence[FileEntry], run: Run, *, overwrite: bool) -> list[list[str]]:
        """Every command line ``deliver`` runs, in order."""

    def describe(self, files: Sequence[FileEntry], run: Run) -> list[str]:
        """What ``deliver`` does, one line per step: here its command lines, shell-quoted."""
        return [" ".join(shlex.quote(a) for a in argv) for argv in self.commands(files, run, overwrite=True)]

    def deliver(self, files: Sequence[FileEntry], run: Run, *, overwrite: bool) -> dict[str, int] | None:
        """Copy ``files`` into the run's staging directory; return the tool's counters, if it has any."""
        for argv in self.commands(files, run, overwrite=overwrite):
            self._run(argv)
        return None

    def _run(self, argv: Sequence[str], **kwargs: Any):
        return self.runner.run([resolve_binary(argv[0], f"{os.path.basename(argv[0])}_bin"), *argv[1:]], **kwargs)


class HdfsTargetMethod(TransferMethod):
    """A method into HDFS (distcp, hdfs put, hdfs cp): with WebHDFS metadata on the destination,
    the run's staging directory is made over HTTP before the copy, not by a JVM of its own."""

    destination: HdfsDestination

    def target_mkdir(self, run: Run) -> list[list[str]]:
        """The command line that makes the run's staging directory, or none when WebHDFS does."""
        if self.destination.metadata is not None:
            return []
        return [self.destination.shell.mkdir_argv(self.target_dir(run))]

    def deliver(self, files, run, *, overwrite):
        if self.destination.metadata is not None:
            self.destination.makedirs(self.target_dir(run))
        return self.copy(files, run, overwrite=overwrite)

    def copy(self, files: Sequence[FileEntry], run: Run, *, overwrite: bool) -> dict[str, int] | None:
        return TransferMethod.deliver(self, files, run, overwrite=overwrite)


@dataclass
class HdfsPutMethod(HdfsTargetMethod):
    """``hdfs dfs -put`` of the local chunk files: one JVM for all of a chunk's files."""

    destination: HdfsDestination
    runner: CommandRunner
    name: str = "hdfs_put"

    def commands(self, files, run, *, overwrite):
        shell, target_dir = self.destination.shell, self.target_dir(run)
        return [*self.target_mkdir(run), shell.put_argv(_local_uris(files, self.name), target_dir, overwrite=overwrite)]


@dataclass
class HdfsCpMethod(HdfsTargetMethod):
    """``hdfs dfs -cp`` from the files' URIs (hdfs:// or file://), through Hadoop's FileSystem API."""

    destination: HdfsDestination
    runner: CommandRunner
    name: str = "hdfs_cp"
    copies_from_hdfs = True

    def commands(self, files, run, *, overwrite):
        shell, target_dir = self.destination.shell, self.target_dir(run)
        sources = [f.path if f.local is None else "file://" + f.local for f in files]  # see _local_uris
        return [*self.target_mkdir(run), shell.cp_argv(sources, target_dir, overwrite=overwrite)]


@dataclass
class ScpMethod(TransferMethod):
    """``scp`` to a host's filesystem; the remote directory is created first over ssh."""

    destination: SshDestination
    runner: CommandRunner
    name: str = "scp"

    def commands(self, files, run, *, overwrite):
        target, target_dir = self.destination.target, self.target_dir(run)
        return [target.ssh_argv("mkdir", "-p", "--", target_dir),
                target.scp_argv(_local_paths(files, self.name), target_dir)]


class LoggingCallback(Callback):
    """fsspec progress callback: a log line at most every ``every`` seconds per file."""

    def __init__(self, label: str, sink: Callable[[str], None], every: float = 10.0):
        super().__init__()
        self.label, self.sink, self.every = label, sink, every
        self._last = time.monotonic()

    def call(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if self.size and (now - self._last >= self.every or self.value >= self.size):
            self._last = now
            self.sink(f"{self.label}: {self.value / 1e6:,.1f} of {self.size / 1e6:,.1f} MB")


@dataclass
class FsspecMethod(TransferMethod):
    """Streams each file to any fsspec filesystem in blocks (``put_file`` for local files, which
    s3fs/gcsfs turn into multipart uploads); never reads a whole file into memory.

    ``source_fs``: read every file's path through this filesystem (the Python API's source),
    instead of opening each URL with ``source_storage_options``."""

    destination: FsspecDestination
    runner: CommandRunner = field(default_factory=CommandRunner)
    source_storage_options: dict[str, Any] = field(default_factory=dict)
    source_fs: fsspec.AbstractFileSystem | None = None
    block_size: int = 8 << 20
    log: Callable[[str], None] = lambda message: None
    name: str = "fsspec"

    def commands(self, files, run, *, overwrite):
        return []  # no external program

    def describe(self, files, run):
        target_dir = self.target_dir(run)
        return [f"fsspec copy {f.path} -> {self.destination.describe(join(target_dir, f.name))}" for f in files]

    def deliver(self, files, run, *, overwrite):
        self.copy(files, run)

    def copy(self, files: Sequence[FileEntry], run: Run) -> list[FileEntry]:
        """Copy every file into the run's staging directory; return each as it was read: its size
        and the checksums of the bytes copied (hashed while copying, so no second read is needed),
        except for local files handed to ``put_file``, which are returned as given."""
        fs, target_dir = self.destination.fs, self.target_dir(run)
        fs.makedirs(target_dir, exist_ok=True)
        copied = []
        for f in files:
            target = join(target_dir, f.name)
            callback = LoggingCallback(f.name, self.log)
            if self.source_fs is None and f.local is not None:
                fs.put_file(f.local, target, callback=callback)
                copied.append(f)
                continue
            if self.source_fs is not None:
                source_fs, source_path = self.source_fs, f.path
            else:
                source_fs, source_path = fsspec.core.url_to_fs(f.path, **self.source_storage_options)
            digests = Digests()
            size = copy_stream(source_fs, source_path, fs, target, callback=callback, block_size=self.block_size,
                               digest=digests)
            copied.append(dataclasses.replace(f, bytes=size, sha256=digests.sha256, crc32c=digests.crc32c))
        return copied


def copy_stream(source_fs: fsspec.AbstractFileSystem, source: str, target_fs: fsspec.AbstractFileSystem,
                target: str, *, callback: Callback | None = None, block_size: int = 8 << 20,
                digest: Any = None) -> int:
    """Copy between two filesystems in blocks of ``block_size``; memory stays at one block.

    ``digest`` (a ``hashlib`` object or :class:`Digests`) is updated with every block copied, so the checksum of the
    bytes read costs no second read of the source. A source whose size changes while it is read
    fails the copy."""
    callback = callback or Callback()
    size = source_fs.size(source)
    callback.set_size(size)
    copied = 0
    with source_fs.open(source, "rb", block_size=block_size) as src, target_fs.open(target, "wb") as dst:
        while block := src.read(block_size):
            dst.write(block)
            if digest is not None:
                digest.update(block)
            copied += len(block)
            callback.relative_update(len(block))
    if size is not None and copied != size:
        raise TransferError(f"{source_fs.unstrip_protocol(source)} changed while it was copied: "
                            f"{copied:,} bytes read, {size:,} expected")
    return copied
