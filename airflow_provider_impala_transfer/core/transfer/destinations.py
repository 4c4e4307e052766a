"""Where a method delivers: the few operations verification and publishing need, per kind of store.

* :class:`HdfsDestination` goes through ``hdfs dfs`` (distcp, hdfs put and hdfs cp deliver here),
* :class:`SshDestination` through ``ssh`` (scp delivers here),
* :class:`FsspecDestination` through an fsspec filesystem (S3, GCS, ABFS, SFTP, local, memory...).

Checksums are sha256 of the bytes as stored, read back in blocks: HDFS's own checksum
(MD5-of-CRC32C) depends on block and chunk sizes and is not comparable with the manifest.
:func:`fsspec_destination` is the one place a target URL becomes an fsspec filesystem.
"""

from __future__ import annotations

import hashlib
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import fsspec
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer.core.common.secrets import mask_secrets
from airflow_provider_impala_transfer.core.errors import ConfigError, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner, resolve_binary
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget

_BLOCK = 1 << 20


def _visible(name: str) -> bool:
    """Hive/Impala skip names starting with '.' or '_' (Hadoop's .crc files, our temporaries)."""
    return not name.startswith((".", "_"))


class Destination(ABC):
    """A directory tree on one store, addressed by paths in that store's own syntax."""

    kind: str
    root: str

    def describe(self, path: str) -> str:
        return path

    @abstractmethod
    def file_info(self, paths: Sequence[str], *, checksum: bool = True) -> dict[str, tuple[int, str | None]]:
        """path -> (bytes, sha256 or None); missing paths raise TransferError."""

    @abstractmethod
    def is_dir(self, path: str) -> bool: ...

    @abstractmethod
    def makedirs(self, path: str) -> None: ...

    @abstractmethod
    def list_names(self, directory: str) -> list[str]:
        """Visible file names directly under ``directory``."""

    @abstractmethod
    def move(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` (which must not exist)."""

    @abstractmethod
    def remove(self, paths: Sequence[str], *, recursive: bool = False) -> None: ...


@dataclass
class HdfsDestination(Destination):
    root: str
    shell: HdfsShell
    kind: str = "hdfs"

    def file_info(self, paths, *, checksum=True):
        try:
            sizes = self.shell.sizes(list(paths))
        except TransferError as exc:
            raise TransferError(f"cannot stat delivered files: {exc}") from exc
        if not checksum:
            return {p: (sizes[p], None) for p in paths}
        digests = self.shell.sha256(list(paths), [sizes[p] for p in paths])
        return {p: (sizes[p], d) for p, d in zip(paths, digests)}

    def is_dir(self, path):
        return self.shell.test("-d", path)

    def makedirs(self, path):
        self.shell.mkdir(path)

    def list_names(self, directory):
        return [n for n in self.shell.list_names(directory) if _visible(n)]

    def move(self, source, target):
        self.shell.move(source, target)

    def remove(self, paths, *, recursive=False):
        self.shell.remove(*paths, recursive=recursive)


@dataclass
class SshDestination(Destination):
    """Files on a remote host's own filesystem, reached by ssh; commands are GNU coreutils."""

    target: ScpTarget
    runner: CommandRunner
    kind: str = "ssh"

    @property
    def root(self) -> str:  # type: ignore[override]
        return self.target.remote_path

    def describe(self, path):
        return f"{self.target.destination}:{path}"

    def _ssh(self, *command: str, check: bool = True):
        argv = self.target.ssh_argv(*command)
        argv[0] = resolve_binary(argv[0], "ssh_bin")
        return self.runner.run(argv, check=check)

    def file_info(self, paths, *, checksum=True):
        sizes = {}
        out = self._ssh("stat", "-c", "%s", "--", *paths).stdout.decode().split()
        for path, size in zip(paths, out, strict=True):
            sizes[path] = int(size)
        if not checksum:
            return {p: (sizes[p], None) for p in paths}
        lines = self._ssh("sha256sum", "--", *paths).stdout.decode("utf-8", "replace").splitlines()
        digests = [line.split(None, 1)[0].lstrip("\\") for line in lines]
        return {p: (sizes[p], d) for p, d in zip(paths, digests, strict=True)}

    def is_dir(self, path):
        result = self._ssh("test", "-d", path, check=False)
        if result.returncode == 255:  # ssh's own failure (unreachable, refused key), not "no"
            stderr = result.stderr.decode("utf-8", "replace").strip()
            raise TransferError(f"ssh to {self.target.destination} failed: {stderr or 'exit 255'}")
        return result.returncode == 0

    def makedirs(self, path):
        self._ssh("mkdir", "-p", "--", path)

    def list_names(self, directory):
        out = self._ssh("ls", "-1A", "--", directory).stdout.decode("utf-8")
        return [n for n in out.splitlines() if n and _visible(n)]

    def move(self, source, target):
        self._ssh("mv", "-T", "--", source, target)

    def remove(self, paths, *, recursive=False):
        if paths:
            self._ssh("rm", "-rf" if recursive else "-f", "--", *paths)


@dataclass
class FsspecDestination(Destination):
    fs: fsspec.AbstractFileSystem
    root: str  # path in the filesystem's own syntax (no protocol)
    kind: str = "fsspec"

    def describe(self, path):
        return self.fs.unstrip_protocol(path)

    def file_info(self, paths, *, checksum=True):
        info = {}
        for path in paths:
            try:
                size = self.fs.size(path)
            except FileNotFoundError:
                raise TransferError(f"{self.describe(path)} is missing") from None
            info[path] = (size, sha256_file(self.fs, path) if checksum else None)
        return info

    def is_dir(self, path):
        return self.fs.isdir(path)

    def makedirs(self, path):
        self.fs.makedirs(path, exist_ok=True)

    def list_names(self, directory):
        return [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(directory, detail=False)
                if _visible(posixpath.basename(p.rstrip("/"))) and self.fs.isfile(p)]

    def move(self, source, target):
        if not self.fs.isdir(source):
            self.fs.mv(source, target)  # no recursive=: SFTP's mv does not take it
            return
        if isinstance(self.fs, LocalFileSystem):
            self.fs.mv(source, target, recursive=True)
            return
        # Object stores (S3, GCS, ABFS) have no directories to rename: move object by object.
        # Each object appears whole, but the set does not appear at once (documented).
        prefix = source.rstrip("/") + "/"
        for path in self.fs.find(source):
            self.fs.mv(path, posixpath.join(target, path[len(prefix):]))
        if self.fs.exists(source):
            self.fs.rm(source, recursive=True)

    def remove(self, paths, *, recursive=False):
        for path in paths:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=recursive)


def fsspec_destination(url: str, options: dict | None = None, *, field: str = "target_path",
                       options_name: str = "the storage options") -> FsspecDestination:
    """The fsspec filesystem and directory of ``url`` (``s3://bucket/x``, ``sftp://host/x``...)."""
    scheme = fsspec.utils.get_protocol(url)
    try:
        fs, root = fsspec.core.url_to_fs(url, **(options or {}))
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(field, f"cannot open {scheme}:// ({exc})",
                          f"install the fsspec package for {scheme} or fix {options_name}") from None
    except OSError as exc:  # filesystems that connect when created (sftp): a wrong host or port
        raise ConfigError(field, f"cannot reach {mask_secrets(url)} ({exc})",
                          f"check the host, port and {options_name}") from None
    return FsspecDestination(fs=fs, root=root)


def sha256_file(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb", block_size=_BLOCK) as stream:
        for block in iter(lambda: stream.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
