"""Where a method delivers: the few operations verification and publishing need, per kind of store.

* :class:`HdfsDestination` goes through ``hdfs dfs`` (distcp, hdfs put and hdfs cp deliver here),
* :class:`SshDestination` through ``ssh`` (scp delivers here),
* :class:`FsspecDestination` through an fsspec filesystem (S3, GCS, ABFS, SFTP, local, memory...).

What each can check without reading the data back is its ``native_checksum``: HDFS computes the
whole file's CRC32C from the CRCs its DataNodes keep (``COMPOSITE_CRC`` mode; its default
MD5-of-CRC32C depends on block sizes and is not comparable with the manifest), so verifying a
delivery to HDFS costs one ``hdfs dfs -checksum``, whatever the size. The others have nothing the
manifest can be compared with, so their files are read back and hashed (sha256).
:func:`fsspec_destination` is the one place a target URL becomes an fsspec filesystem.
"""

from __future__ import annotations

import os
import posixpath
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import fsspec
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer.core.common.checksums import EMPTY_CRC32C, file_digests
from airflow_provider_impala_transfer.core.common.secrets import mask_secrets
from airflow_provider_impala_transfer.core.errors import ConfigError, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner, resolve_binary
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata


def _visible(name: str) -> bool:
    """Hive/Impala skip names starting with '.' or '_' (Hadoop's .crc files, our temporaries)."""
    return not name.startswith((".", "_"))


class Destination(ABC):
    """A directory tree on one store, addressed by paths in that store's own syntax."""

    kind: str
    root: str
    native_checksum: str | None = None  # a checksum the store computes without a read-back

    def describe(self, path: str) -> str:
        return path

    @abstractmethod
    def file_info(self, paths: Sequence[str], *, checksum: str | None = "sha256") -> dict[str, tuple[int, str | None]]:
        """path -> (bytes, the file's ``checksum`` (``sha256``, or the ``native_checksum``) or None
        when not asked); missing paths raise TransferError."""

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

    @abstractmethod
    def create_exclusive(self, path: str, text: str) -> bool:
        """Create the small file ``path`` holding ``text`` unless it exists: True if this call
        created it. Atomic where the store can say "only if absent" (HDFS rename, a symlink over
        ssh, O_EXCL locally, S3's If-None-Match); its parent directory exists."""

    @abstractmethod
    def read_text(self, path: str) -> str | None:
        """The text of the small file ``path``, or None if there is none."""

    @abstractmethod
    def modified(self, directory: str) -> dict[str, float]:
        """Every entry directly under ``directory`` (hidden ones too) -> when it was last modified
        (POSIX seconds); {} if the directory does not exist. Entries the store keeps no time for
        (an object store's prefixes) are left out."""


@dataclass
class HdfsDestination(Destination):
    """HDFS through the Hadoop client (``hdfs dfs``: the worker's HADOOP_CONF_DIR, HA nameservices,
    Kerberos ticket). With ``metadata`` (WebHDFS), the metadata steps go over HTTP instead of a JVM
    each; data and checksums still go through the client."""

    root: str
    shell: HdfsShell
    metadata: WebHdfsMetadata | None = None
    kind: str = "hdfs"
    native_checksum: str | None = "crc32c"

    def file_info(self, paths, *, checksum="sha256"):
        paths = list(paths)
        if checksum == "crc32c":  # sizes and CRCs side by side: two short JVMs, not one after the other
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(self._sizes, paths)
                found = self.shell.crc32c(paths)
                sizes = pending.result()
            info = {}
            for p in paths:
                value = EMPTY_CRC32C if sizes[p] == 0 else found[p]
                if value is None:
                    raise TransferError(f"{p}: the cluster gave no COMPOSITE-CRC32C checksum (a cluster before "
                                        "Hadoop 3.1?); use verify=sha256")
                info[p] = (sizes[p], value)
            return info
        sizes = self._sizes(paths)
        if checksum is None:
            return {p: (sizes[p], None) for p in paths}
        digests = self.shell.sha256(paths, [sizes[p] for p in paths])
        return {p: (sizes[p], d) for p, d in zip(paths, digests)}

    def _sizes(self, paths: list[str]) -> dict[str, int]:
        try:
            return (self.metadata or self.shell).sizes(paths)
        except TransferError as exc:
            raise TransferError(f"cannot stat delivered files: {exc}") from exc

    def is_dir(self, path):
        return self.metadata.is_dir(path) if self.metadata else self.shell.test("-d", path)

    def makedirs(self, path):
        (self.metadata or self.shell).makedirs(path)

    def list_names(self, directory):
        return [n for n in (self.metadata or self.shell).list_names(directory) if _visible(n)]

    def move(self, source, target):
        (self.metadata or self.shell).move(source, target)

    def remove(self, paths, *, recursive=False):
        if self.metadata:
            self.metadata.remove(paths, recursive=recursive)
        else:
            self.shell.remove(*paths, recursive=recursive)

    def create_exclusive(self, path, text):
        return (self.metadata or self.shell).create_exclusive(path, text)

    def modified(self, directory):
        return (self.metadata or self.shell).modified(directory)

    def read_text(self, path):
        return (self.metadata or self.shell).read_text(path)


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

    def _ssh(self, *command: str, check: bool = True, capture: bool = False):
        argv = self.target.ssh_argv(*command)
        argv[0] = resolve_binary(argv[0], "ssh_bin")
        return self.runner.run(argv, check=check, capture=capture)

    def file_info(self, paths, *, checksum="sha256"):
        sizes = {}
        out = self._ssh("stat", "-c", "%s", "--", *paths, capture=True).stdout.decode().split()
        for path, size in zip(paths, out, strict=True):
            sizes[path] = int(size)
        if checksum is None:
            return {p: (sizes[p], None) for p in paths}
        lines = self._ssh("sha256sum", "--", *paths, capture=True).stdout.decode("utf-8", "replace").splitlines()
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
        out = self._ssh("ls", "-1A", "--", directory, capture=True).stdout.decode("utf-8")
        return [n for n in out.splitlines() if n and _visible(n)]

    def move(self, source, target):
        self._ssh("mv", "-T", "--", source, target)

    def remove(self, paths, *, recursive=False):
        if paths:
            self._ssh("rm", "-rf" if recursive else "-f", "--", *paths)

    # A symlink is created whole or not at all, and its target is its text (as Emacs' lock files).
    def create_exclusive(self, path, text):
        return self._ssh("ln", "-s", "-T", "--", text, path, check=False).returncode == 0 or self._exists_or_fail(path)

    def _exists_or_fail(self, path: str) -> bool:
        if self.read_text(path) is None:
            raise TransferError(f"cannot create {self.describe(path)} on {self.target.destination}")
        return False

    def modified(self, directory):
        # GNU find; the directory is absolute (ScpTarget checks), so it cannot read as an option
        result = self._ssh("find", directory, "-mindepth", "1", "-maxdepth", "1", "-printf", "%T@ %f\\n",
                           check=False, capture=True)
        if result.returncode == 255:
            raise TransferError(f"ssh to {self.target.destination} failed: "
                                f"{result.stderr.decode('utf-8', 'replace').strip() or 'exit 255'}")
        lines = result.stdout.decode("utf-8", "replace").splitlines() if result.returncode == 0 else []
        return {name: float(when) for when, _, name in (line.partition(" ") for line in lines) if name}

    def read_text(self, path):
        result = self._ssh("readlink", "--", path, check=False, capture=True)
        if result.returncode == 255:
            raise TransferError(f"ssh to {self.target.destination} failed: "
                                f"{result.stderr.decode('utf-8', 'replace').strip() or 'exit 255'}")
        return result.stdout.decode("utf-8", "replace").strip() if result.returncode == 0 else None


@dataclass
class FsspecDestination(Destination):
    fs: fsspec.AbstractFileSystem
    root: str  # path in the filesystem's own syntax (no protocol)
    kind: str = "fsspec"

    def describe(self, path):
        return self.fs.unstrip_protocol(path)

    def file_info(self, paths, *, checksum="sha256"):
        info = {}
        for path in paths:
            try:
                size = self.fs.size(path)
            except FileNotFoundError:
                raise TransferError(f"{self.describe(path)} is missing") from None
            info[path] = (size, file_digests(self.fs, path).sha256 if checksum else None)
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
        elif isinstance(self.fs, LocalFileSystem):
            self.fs.mv(source, target, recursive=True)
        elif not _protocols(self.fs) & OBJECT_STORES:
            self.fs.mv(source, target)  # a store with directories (WebHDFS, SFTP): one rename
        else:
            # Object stores (S3, GCS, ABFS) have no directories to rename: move object by object.
            # Each object appears whole, but the set does not appear at once (documented).
            prefix = source.rstrip("/") + "/"
            for path in self.fs.find(source):
                moved = posixpath.join(target, path[len(prefix):])
                self.fs.mv(path, moved)
                if not self.fs.exists(moved):
                    raise TransferError(f"moving {self.describe(path)} to {self.describe(moved)} did not happen")
            if self.fs.find(source):
                raise TransferError(f"{self.describe(source)} still holds files after moving them")
            if self.fs.exists(source):
                self.fs.rm(source, recursive=True)
        # Some stores answer a rename they did not do with "false", not an error (WebHDFS when the
        # target's parent is missing): never go on as if it had happened.
        if not self.fs.exists(target) or self.fs.exists(source):
            raise TransferError(f"renaming {self.describe(source)} to {self.describe(target)} did not happen")

    def remove(self, paths, *, recursive=False):
        for path in paths:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=recursive)

    def create_exclusive(self, path, text):
        data = text.encode("utf-8")
        if isinstance(self.fs, LocalFileSystem):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return True
        # S3 (If-None-Match: *) is atomic; fsspec's generic "create" checks, then writes.
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True

    def read_text(self, path):
        try:
            return self.fs.cat_file(path).decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def modified(self, directory):
        try:
            entries = self.fs.ls(directory, detail=True)
        except FileNotFoundError:
            return {}
        found = {}
        for info in entries:
            when = _mtime(info)
            if when is not None:
                found[posixpath.basename(info["name"].rstrip("/"))] = when
        return found


def _mtime(info: dict) -> float | None:
    """An fsspec entry's modification time, under the name its filesystem uses."""
    for key in ("mtime", "LastModified", "last_modified", "modificationTime", "updated"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return float(value) / (1000 if key == "modificationTime" else 1)
    return None


# Stores without directories: a "directory" rename is a loop over objects.
OBJECT_STORES = frozenset({"s3", "s3a", "gcs", "gs", "abfs", "abfss", "az", "adl", "oci", "oss", "r2", "memory"})


def _protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


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

