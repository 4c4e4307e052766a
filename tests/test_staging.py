"""Chunk files handed from the extract to the transfer tasks through shared storage (core/staging.py).

On HDFS the hand-off is tested under the real Airflow CLI (tests/test_transfer_dags.py) and by
the server-side export (tests/test_export.py); this module holds what an object store adds, on
moto's S3 server: a transfer task's private copy is checked against the sha256 the extract
computed while writing, and a kept run's staged objects are removed.
"""

from __future__ import annotations

import hashlib
import os
import uuid

import fsspec
import pyarrow as pa
import pytest

from airflow_provider_impala_transfer.core.common.records import FileEntry, Manifest
from airflow_provider_impala_transfer.core.errors import TransferError
from airflow_provider_impala_transfer.core.staging import fetch_local, remove_staged
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets

PAYLOAD = b"PAR1" + bytes(range(256)) * 512


def staged(s3) -> tuple[fsspec.AbstractFileSystem, str, Manifest]:
    bucket = s3.create_bucket(f"staging-{uuid.uuid4().hex[:8]}")
    directory = f"s3://{bucket}/chunks/dag/run"
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options())
    fs.pipe(f"{directory}/chunk-00000-part-00000.parquet", PAYLOAD)
    entry = FileEntry(path=f"{directory}/chunk-00000-part-00000.parquet", bytes=len(PAYLOAD),
                      sha256=hashlib.sha256(PAYLOAD).hexdigest(), rows=10, chunk=0, part=0)
    return fs, directory, Manifest(files=[entry], schema=pa.schema([("id", pa.int64())]), output_path=directory)


def no_shell() -> HdfsShell:
    return HdfsShell(hdfs_bin="/nonexistent/hdfs", runner=CommandRunner(timeout=10))  # never run for S3


def test_a_chunk_staged_on_an_object_store_is_fetched_as_a_verified_private_copy(s3, tmp_path):
    _, _, manifest = staged(s3)
    local = fetch_local(manifest, no_shell(), str(tmp_path / "private"), storage_options=s3.storage_options())
    [entry] = local.files
    assert entry.local == str(tmp_path / "private" / "chunk-00000-part-00000.parquet")
    assert open(entry.local, "rb").read() == PAYLOAD and entry.rows == 10
    assert oct(os.stat(tmp_path / "private").st_mode & 0o777) == "0o700"


def test_a_staged_object_that_changed_after_the_extract_fails_the_fetch_naming_it(s3, tmp_path):
    fs, directory, manifest = staged(s3)
    fs.pipe(f"{directory}/chunk-00000-part-00000.parquet", PAYLOAD[:-1] + b"x")
    with pytest.raises(TransferError, match=r"fetched copy of s3://.*chunk-00000-part-00000\.parquet has sha256 "
                                            r"[0-9a-f]{64}, the manifest says [0-9a-f]{64} .*re-run the chunk's extract"):
        fetch_local(manifest, no_shell(), str(tmp_path / "private"), storage_options=s3.storage_options())


def test_a_kept_runs_staged_objects_are_removed_and_removing_twice_is_harmless(s3):
    fs, directory, _ = staged(s3)
    remove_staged(directory, no_shell(), storage_options=s3.storage_options())
    fs.invalidate_cache()
    assert not fs.exists(directory)
    remove_staged(directory, no_shell(), storage_options=s3.storage_options())  # a retried finalize


def test_only_files_on_a_hadoop_cluster_go_to_distcp_and_hdfs_cp_as_they_are():
    """distcp and hdfs cp read hdfs:// sources themselves; an object store's files (which the
    cluster may have no credentials for) are fetched first, as for hdfs put and scp."""
    targets = TransferTargets(hdfs_root="hdfs://cluster2/data", source_hdfs_path="hdfs://cluster1/staging")
    runner = CommandRunner(timeout=10)
    on = {scheme: [FileEntry(path=f"{scheme}://b/x/f.parquet", bytes=1, sha256="0" * 64)] for scheme in ("hdfs", "s3")}
    local = [FileEntry(path="file:///tmp/f.parquet", bytes=1, sha256="0" * 64)]
    needs = {name: {where: targets.method(name, runner).needs_local_copies(files)
                    for where, files in (*on.items(), ("local", local))}
             for name in ("distcp", "hdfs_cp", "hdfs_put")}
    assert needs == {"distcp": {"hdfs": False, "s3": True, "local": False},
                     "hdfs_cp": {"hdfs": False, "s3": True, "local": False},
                     "hdfs_put": {"hdfs": True, "s3": True, "local": False}}
