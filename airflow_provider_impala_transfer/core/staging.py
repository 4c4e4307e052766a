"""Shared staging: what one task hands to the next lives where every worker can read it.

With Celery or Kubernetes workers the extract and the transfer of a chunk may run on different
machines, so a worker's local disk is no hand-off. The client extract therefore writes a chunk's
files into its own private temp directory, then :func:`stage_on_hdfs` puts them on the source
cluster (where distcp wants its sources anyway), each copy checked against the CRC32C computed
while writing, and the manifest names the HDFS copies. A method that copies local files (hdfs
put, scp, fsspec) later takes verified copies into a private directory of its own worker with
:func:`fetch_local`, the same as for the server-side export's files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer.core.common.checksums import file_digests
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.uris import check_hadoop_path, join, scheme_of
from airflow_provider_impala_transfer.core.errors import TransferError
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell

HADOOP_SCHEMES = ("hdfs", "viewfs")


def is_hadoop_uri(uri: str) -> bool:
    """A location the Hadoop shell addresses (the shared staging this module handles)."""
    return scheme_of(uri) in HADOOP_SCHEMES


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


def fetch_local(manifest: Manifest, shell: HdfsShell, directory: str) -> Manifest:
    """Local copies of files on HDFS, for methods that copy from this machine (hdfs put, scp,
    fsspec): one ``hdfs dfs -get`` into a private directory, each copy checked against the
    cluster's CRC32C while its sha256 is computed."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    shell.run(shell.argv("-get", "-f", *[f.path for f in manifest.files], f"file://{directory}/"))
    files = []
    for entry in manifest.files:
        local = os.path.join(directory, entry.name)
        digests = file_digests(LocalFileSystem(), local)
        if entry.crc32c is not None and digests.crc32c != entry.crc32c:
            raise TransferError(f"{local}: fetched copy of {entry.path} has crc32c {digests.crc32c}, the cluster "
                                f"says {entry.crc32c}")
        files.append(dataclasses.replace(entry, path=f"file://{local}", sha256=digests.sha256))
    return dataclasses.replace(manifest, files=files)
