"""Shared staging: what one task hands to the next lives where every worker can read it.

With Celery or Kubernetes workers the extract and the transfer of a chunk may run on different
machines, so a worker's local disk is no hand-off. The client extract therefore writes a chunk's
files into its own private temp directory, then :func:`stage_on_hdfs` puts them on the source
cluster (where distcp wants its sources anyway), each copy checked against the CRC32C computed
while writing, and the manifest names the HDFS copies; or it writes them straight into an object
store. A method that copies local files (hdfs put, scp, fsspec) later takes verified copies into
a private directory of its own worker with :func:`fetch_local`, the same as for the server-side
export's files; :func:`remove_staged` drops a kept run's staged files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer.core.common.checksums import Digests, file_digests
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.uris import check_hadoop_path, is_hadoop_uri, join
from airflow_provider_impala_transfer.core.errors import TransferError
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.methods import copy_stream


def stage_on_hdfs(manifest: Manifest, shell: HdfsShell, directory: str, *,
                  log: Callable[[str], None] = lambda message: None) -> Manifest:
    """Put the manifest's local files into ``directory`` (one ``hdfs dfs -put -f``: a retry
    replaces its own files), check each copy's CRC32C as the cluster computes it, and return the
    manifest naming the copies."""
    check_hadoop_path(directory, "output_path")
    local = [entry.local for entry in manifest.files]
    if None in local:
        raise TransferError(f"{manifest.label}: only local files can be staged, got {manifest.files[0].path}")
    shell.makedirs(directory)
    shell.run(shell.put_argv(local, directory, overwrite=True))  # type: ignore[arg-type]
    staged = [dataclasses.replace(entry, path=join(directory, entry.name)) for entry in manifest.files]
    found = shell.crc32c([entry.path for entry in staged if entry.bytes])
    for entry in staged:
        if entry.bytes and found[entry.path] != entry.crc32c:
            raise TransferError(f"{entry.path}: the staged copy has crc32c {found[entry.path]}, the file written "
                                f"has {entry.crc32c} (a corrupt upload; the task's retry stages it again)")
    log(f"{manifest.label}: staged {len(staged)} files, {manifest.bytes:,} bytes on {directory} (crc32c checked)")
    return dataclasses.replace(manifest, files=staged, output_path=directory)


def fetch_local(manifest: Manifest, shell: HdfsShell, directory: str, *,
                storage_options: dict[str, Any] | None = None) -> Manifest:
    """Local copies of staged files, for methods that copy from this machine (hdfs put, scp,
    fsspec), in a private ``directory``. Files on a Hadoop cluster come with one ``hdfs dfs -get``,
    each copy checked against the cluster's CRC32C; files on another store (an object store, with
    ``storage_options``) are streamed through fsspec and checked against the sha256 the extract
    computed while writing them."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    on_cluster = [entry.path for entry in manifest.files if is_hadoop_uri(entry.path)]
    if on_cluster:
        shell.run(shell.argv("-get", "-f", *on_cluster, f"file://{directory}/"))
    files = []
    for entry in manifest.files:
        local = os.path.join(directory, entry.name)
        if is_hadoop_uri(entry.path):
            digests = file_digests(LocalFileSystem(), local)
            expected, found, kind = entry.crc32c, digests.crc32c, "crc32c"
        else:
            digests = Digests()
            source_fs, source = fsspec.core.url_to_fs(entry.path, **(storage_options or {}))
            copy_stream(source_fs, source, LocalFileSystem(), local, digest=digests)
            expected, found, kind = entry.sha256, digests.sha256, "sha256"
        if expected is not None and found != expected:
            raise TransferError(f"{local}: fetched copy of {entry.path} has {kind} {found}, the manifest says "
                                f"{expected} (the staged file changed or was corrupted; re-run the chunk's extract)")
        files.append(dataclasses.replace(entry, path=f"file://{local}", sha256=digests.sha256))
    return dataclasses.replace(manifest, files=files)


def remove_staged(directory: str, shell: HdfsShell, *, storage_options: dict[str, Any] | None = None) -> None:
    """Remove a run's staged chunk files (``directory``) from the cluster or the object store."""
    if is_hadoop_uri(directory):
        shell.remove(directory, recursive=True)
        return
    fs, path = fsspec.core.url_to_fs(directory, **(storage_options or {}))
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass  # nothing staged (or already removed by an earlier attempt)
    except OSError as exc:
        raise TransferError(f"{directory}: could not remove the staged chunk files: {exc}") from exc
