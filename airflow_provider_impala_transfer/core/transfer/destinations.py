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
import shutil
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from glob import has_magic

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

    def directories(self, paths: Sequence[str]) -> set[str]:
        """Which of ``paths`` exist as directories (one command where the store's tool takes several)."""
        return {path for path in paths if self.is_dir(path)}

    @abstractmethod
    def makedirs(self, *paths: str) -> None:
        """Create each directory and its parents (one command where the store's tool takes several)."""

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
        created it. Atomic: of two callers at once exactly one gets True (HDFS rename, WebHDFS
        CREATE without overwrite, a symlink over ssh, O_EXCL locally, S3's If-None-Match); a
        store that cannot say "only if absent" raises ConfigError naming ``publish_lock``. Its
        parent directory exists."""

    @abstractmethod
    def write_text(self, path: str, text: str) -> None:
        """Replace the small file ``path`` with ``text`` (only its owner writes it: a lock being
        refreshed, a transaction record); readers see the old text or the new one."""

    @abstractmethod
    def read_text(self, path: str) -> str | None:
        """The text of the small file ``path``, or None if there is none."""

    @abstractmethod
    def modified(self, directory: str) -> dict[str, float]:
        """Every entry directly under ``directory`` (hidden ones too) -> when it was last modified
        (POSIX seconds); {} if the directory does not exist. On an object store, whose prefixes
        keep no time, a prefix's time is its newest object's. Names come from the store
        unparsed or from a format no name can break (NUL-separated, JSON); a caller still keeps
        only names it made (:mod:`~airflow_provider_impala_transfer.core.transfer.layout`)."""

    def touch(self, directory: str) -> None:
        """Mark ``directory`` as modified now: a rename keeps its old time, and a run's files moved
        back to staging by a roll back must wait there a full :data:`LEFTOVER_AFTER` again."""

    # Object stores have no directories: a directory "rename" is a copy and a delete per object,
    # which a transaction must be able to resume (:meth:`objects`, :meth:`move_object`).
    moves_objects: bool = False

    def objects(self, directory: str) -> list[str]:
        """Every object below ``directory``, relative to it (object stores only)."""
        raise NotImplementedError

    def move_object(self, source: str, target: str, *, keep_target: bool = False) -> None:
        """Move one object, so that running it again after any failure finishes the move (object
        stores only). ``keep_target``: if both exist, ``target`` is the one to keep."""
        raise NotImplementedError


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

    def directories(self, paths):
        return super().directories(paths) if self.metadata else self.shell.directories(paths)

    def makedirs(self, *paths):
        if self.metadata:
            for path in paths:
                self.metadata.makedirs(path)
        elif paths:
            self.shell.makedirs(*paths)

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

    def write_text(self, path, text):
        (self.metadata or self.shell).write_text(path, text)

    def modified(self, directory):
        return (self.metadata or self.shell).modified(directory)

    def touch(self, directory):
        (self.metadata or self.shell).touch(directory)

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

    def makedirs(self, *paths):
        if paths:
            self._ssh("mkdir", "-p", "--", *paths)

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

    def write_text(self, path, text):
        # a new link under a unique name, renamed over the old one: rename(2) replaces atomically
        candidate = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.{uuid.uuid4().hex}"
        self._ssh("ln", "-s", "-T", "--", text, candidate)
        self._ssh("mv", "-f", "-T", "--", candidate, path)

    def touch(self, directory):
        self._ssh("touch", "-c", "-m", "--", directory)

    def _exists_or_fail(self, path: str) -> bool:
        if self.read_text(path) is None:
            raise TransferError(f"cannot create {self.describe(path)} on {self.target.destination}")
        return False

    def modified(self, directory):
        # GNU find; the directory is absolute (ScpTarget checks), so it cannot read as an option.
        # One NUL after each entry: a name may hold a newline, never a NUL.
        result = self._ssh("find", directory, "-mindepth", "1", "-maxdepth", "1", "-printf", "%T@ %f\\0",
                           check=False, capture=True)
        if result.returncode == 255:
            raise TransferError(f"ssh to {self.target.destination} failed: "
                                f"{result.stderr.decode('utf-8', 'replace').strip() or 'exit 255'}")
        entries = result.stdout.decode("utf-8", "surrogateescape").split("\0") if result.returncode == 0 else []
        return {name: float(when) for when, _, name in (entry.partition(" ") for entry in entries) if name}

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

    def makedirs(self, *paths):
        for path in paths:
            self.fs.makedirs(path, exist_ok=True)

    def list_names(self, directory):
        names = (posixpath.basename(info["name"].rstrip("/")) for info in self.fs.ls(directory, detail=True)
                 if info.get("type") == "file")  # one listing, no request per entry
        return [name for name in names if _visible(name)]

    @property
    def moves_objects(self) -> bool:  # type: ignore[override]
        return bool(_protocols(self.fs) & OBJECT_STORES)

    def move(self, source, target):
        if not self.fs.isdir(source):
            self.fs.mv(source, target)  # no recursive=: SFTP's mv does not take it
        elif isinstance(self.fs, LocalFileSystem):
            self.fs.mv(source, target, recursive=True)
        elif not self.moves_objects:
            self.fs.mv(source, target)  # a store with directories (WebHDFS, SFTP): one rename
        else:
            # Object stores (S3, GCS, ABFS) have no directories to rename: move object by object.
            # Each object appears whole, but the set does not appear at once (publishing records
            # the objects first and can resume: core.transfer.publish).
            for name in self.objects(source):
                self.move_object(posixpath.join(source, name), posixpath.join(target, name))
            self._drop_empty(source)
        # Some stores answer a rename they did not do with "false", not an error (WebHDFS when the
        # target's parent is missing): never go on as if it had happened.
        if not self.fs.exists(target) or self.fs.exists(source):
            raise TransferError(f"renaming {self.describe(source)} to {self.describe(target)} did not happen")

    def objects(self, directory):
        prefix = directory.rstrip("/") + "/"
        try:
            found = self.fs.find(directory)  # by name, never a glob
        except FileNotFoundError:
            return []
        return sorted(path[len(prefix):] for path in found if path.startswith(prefix))

    def move_object(self, source, target, *, keep_target=False):
        """Copy, check the copy's size, delete the source. Run again after a failure at any
        point, it finishes the move: a source already gone with its target there was moved; a
        source still there is copied (again: an object appears whole, so a copy made before
        is replaced by an equal one), then deleted. Four requests per object."""
        before = self._info(source)
        if before is None:
            if not self.fs.exists(target):
                raise TransferError(f"neither {self.describe(source)} nor {self.describe(target)} exists")
            return
        if not (keep_target and self.fs.exists(target)):
            self.fs.cp_file(source, target)
            there = self._info(target)
            if there is None or there.get("size") != before.get("size"):
                raise TransferError(f"copying {self.describe(source)} to {self.describe(target)} did not happen")
        self.fs.rm_file(source)

    def _info(self, path: str) -> dict | None:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return info if info.get("type") != "directory" else None

    def _drop_empty(self, directory: str) -> None:
        """An in-memory filesystem keeps directories of its own; object stores keep none."""
        if "memory" in _protocols(self.fs) and self.fs.isdir(directory) and not self.fs.find(directory):
            self.fs.rm(directory, recursive=True)

    def remove(self, paths, *, recursive=False):
        for path in paths:
            if not self.fs.exists(path):
                continue
            if not has_magic(path):
                self.fs.rm(path, recursive=recursive)  # what it finds below is removed by name
            elif isinstance(self.fs, LocalFileSystem):  # fs.rm would read * ? [ as a glob
                shutil.rmtree(path) if recursive and os.path.isdir(path) else os.remove(path)
            else:
                for name in self.objects(path) if recursive else []:
                    self.fs.rm_file(posixpath.join(path, name))
                if self._info(path) is not None:
                    self.fs.rm_file(path)
                self._drop_empty(path)

    def _no_exclusive_create(self) -> str | None:
        """Why :meth:`create_exclusive` cannot say "only if absent" in one step here, or None."""
        protocols = _protocols(self.fs)
        if isinstance(self.fs, LocalFileSystem) or protocols & EXCLUSIVE_CREATE:
            return None
        if protocols & PROBED_EXCLUSIVE_CREATE:
            return None if _honours_if_none_match(self.fs, self.root) else \
                "this endpoint ignores If-None-Match (it wrote a probe file twice)"
        return NO_EXCLUSIVE_CREATE

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
        problem = self._no_exclusive_create()
        if problem:
            raise _lock_refused(self.describe(path), problem)
        try:
            if _protocols(self.fs) & {"sftp", "ssh"}:
                with self.fs.open(path, "xb") as handle:  # SFTP's O_EXCL
                    handle.write(data)
            else:
                self.fs.pipe_file(path, data, mode="create")  # S3: If-None-Match: *
        except FileExistsError:
            return False
        except OSError:
            if self.read_text(path) is None:  # SFTP answers "Failure" for an existing file
                raise
            return False
        return True

    def write_text(self, path, text):
        data = text.encode("utf-8")
        if isinstance(self.fs, LocalFileSystem):  # a private file renamed over the old one
            candidate = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.{uuid.uuid4().hex}"
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(candidate, path)
            return
        self.fs.pipe_file(path, data)  # one PUT on an object store: replaced whole

    def read_text(self, path):
        try:
            return self.fs.cat_file(path).decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def touch(self, directory):
        if isinstance(self.fs, LocalFileSystem):
            os.utime(directory)
        # object stores: a moved object is a new one, with its own time; SFTP keeps the old time

    def modified(self, directory):
        if self.moves_objects:  # a prefix keeps no time: its newest object's
            prefix = directory.rstrip("/") + "/"
            try:
                found = self.fs.find(directory, detail=True)
            except FileNotFoundError:
                return {}
            newest: dict[str, float] = {}
            for path, info in found.items():
                when = _mtime(info)
                if path.startswith(prefix) and when is not None:
                    name = path[len(prefix):].split("/", 1)[0]
                    newest[name] = max(when, newest.get(name, when))
            return newest
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


_IF_NONE_MATCH: dict[tuple[fsspec.AbstractFileSystem, str], bool] = {}


def _honours_if_none_match(fs: fsspec.AbstractFileSystem, root: str) -> bool:
    """Create one probe object twice "only if absent": a store that ignores If-None-Match lets the
    second write through. Asked once per filesystem (endpoint and credentials) and bucket; the
    probe is removed."""
    key = (fs, root.split("/", 1)[0])
    if key not in _IF_NONE_MATCH:
        probe = f"{root.rstrip('/')}/_impala_transfer_locks/.if-none-match-{uuid.uuid4().hex}"
        try:
            fs.pipe_file(probe, b"probe", mode="create")
        except OSError:  # the store's own error (a 503, a refused key): as for any other request
            raise
        except Exception as exc:  # noqa: BLE001 - s3fs < 2024.12 passes mode= on to botocore, which refuses it
            raise ConfigError("publish_lock", f"{fs.unstrip_protocol(root)}: cannot write a lock file only if it is "
                              f"absent ({type(exc).__name__}: {exc})",
                              "install s3fs 2024.12 or later, and check the store answers") from None
        try:
            fs.pipe_file(probe, b"again", mode="create")
            _IF_NONE_MATCH[key] = False
        except FileExistsError:
            _IF_NONE_MATCH[key] = True
        finally:
            fs.rm_file(probe)
    return _IF_NONE_MATCH[key]


# Stores whose fsspec filesystem creates a file only if it is absent, in one step (publish locks):
# O_EXCL on the local disk and over SFTP, the in-memory filesystem; and S3's If-None-Match, which
# some S3-compatible stores ignore: probed per endpoint when first used. GCS and ABFS have such a
# precondition too, but their fsspec filesystems are not tested here, so they are refused until
# they are; fsspec's webhdfs checks, then writes.
EXCLUSIVE_CREATE = frozenset({"file", "local", "memory", "sftp", "ssh"})
PROBED_EXCLUSIVE_CREATE = frozenset({"s3", "s3a"})
NO_EXCLUSIVE_CREATE = "cannot create a file only if it is absent in one step"


def refuse_without_exclusive_create(url: str, lock_mode: str) -> None:
    """Before anything runs: a ConfigError naming ``publish_lock`` when ``url``'s store can never
    take a publish lock only if absent (S3 endpoints are probed when first used)."""
    if lock_mode != "none" and fsspec.utils.get_protocol(url) not in EXCLUSIVE_CREATE | PROBED_EXCLUSIVE_CREATE:
        raise _lock_refused(mask_secrets(url), NO_EXCLUSIVE_CREATE)


def _lock_refused(where: str, problem: str) -> ConfigError:
    return ConfigError("publish_lock", f"{where}: {problem}, so two runs publishing this target at once could both "
                       "take its lock", "publish to HDFS, AWS S3, SFTP or a local path; or set publish_lock='none' "
                       "(CLI: --publish-lock none) if only one run at a time ever publishes to this target")


def _mtime(info: dict) -> float | None:
    """An fsspec entry's modification time, under the name its filesystem uses."""
    for key in ("mtime", "LastModified", "last_modified", "modificationTime", "updated", "created"):
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

