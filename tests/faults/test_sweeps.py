"""The leftover sweeps act only on names the provider gives, and never outside the swept directory.

A shared staging root is writable by every run (and anyone with that access): entries named with
a newline (``x\\n0 ..`` parses as an entry ``..``, untouched since 1970), ``*``, ``?``, ``[a]``, a
leading ``-`` or a space, all last touched a month ago, are planted next to an old staging
directory of a run that never published (which the sweep must remove) and a fresh one of a run
still going (which it must keep). A successful publish afterwards removes the old one and
nothing else: none of the planted names, nothing of the root's published data, nothing outside
the root. On HDFS (``hdfs dfs`` and WebHDFS), a ``file://`` target through ``hdfs dfs``, the local
disk, an ssh host (sshd) and S3 (moto).
"""

from __future__ import annotations

import os
import posixpath
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from hdfs import InsecureClient

from airflow_provider_impala_transfer.core.transfer import sweep
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination
from airflow_provider_impala_transfer.core.transfer.layout import STAGING_DIR, Run
from airflow_provider_impala_transfer.core.transfer.methods import FsspecMethod, HdfsPutMethod, TransferMethod
from airflow_provider_impala_transfer.core.transfer.publish import commit, publish
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata
from tests.test_transfer_methods import hdfs_destination, make_chunk, names, scp_method, unique_dir

PLANTED = ["x\n0 ..", "*", "?", "[a]", "-rf", "a b", "x\n0 *"]
MONTH = 30 * 24 * 3600
DS = {"ds": "2026-12-07"}


@dataclass
class Target:
    """A target root of one kind, and how a test plants and reads entries there."""

    method: TransferMethod
    plant: Callable[[str, str, bool], bool]  # (directory under the root or "..", name, old) -> planted?
    exists: Callable[[str, str], bool]  # (directory, name) -> still there?
    ages: bool = True  # False: entries cannot be made old (an object keeps the time it was written)


def _posix(method: TransferMethod, base: Path) -> Target:
    def plant(directory: str, name: str, old: bool) -> bool:
        where = (base / directory).resolve() / name
        where.mkdir(parents=True)
        (where / "data").write_bytes(b"not the sweep's to remove")
        if old:
            then = time.time() - MONTH
            os.utime(where, (then, then))
        return True
    return Target(method, plant, lambda directory, name: ((base / directory).resolve() / name / "data").exists())


def _hdfs(method: TransferMethod, client: InsecureClient, base: str) -> Target:
    def place(directory: str, name: str) -> str:
        return f"{posixpath.normpath(f'{base}/{directory}')}/{name}"

    def plant(directory: str, name: str, old: bool) -> bool:
        where = place(directory, name)
        try:
            client.write(f"{where}/data", data=b"not the sweep's to remove")
        except Exception:  # noqa: BLE001 - a name HDFS itself refuses cannot be planted there
            return False
        if old:
            client.set_times(where, modification_time=int((time.time() - MONTH) * 1000))
        return True
    return Target(method, plant, lambda directory, name: client.status(f"{place(directory, name)}/data",
                                                                       strict=False) is not None)


@pytest.fixture(params=["hdfs dfs", "webhdfs", "file via hdfs dfs", "local", "ssh", "s3"])
def target(request, tmp_path, monkeypatch) -> Target:
    kind = request.param
    if kind in ("hdfs dfs", "webhdfs"):
        hadoop = request.getfixturevalue("hadoop_env")
        client = InsecureClient(f"http://{hadoop.target.webhdfs_address}", user=hadoop.user)
        root = unique_dir("sweeps") + "/root"
        metadata = WebHdfsMetadata(client) if kind == "webhdfs" else None
        method = HdfsPutMethod(destination=hdfs_destination(root, metadata=metadata), runner=CommandRunner(timeout=120))
        return _hdfs(method, client, urlsplit(root).path)
    base = tmp_path / "shared" / "root"
    if kind == "file via hdfs dfs":
        request.getfixturevalue("hadoop_env")
        method = HdfsPutMethod(destination=hdfs_destination(base), runner=CommandRunner(timeout=120))
        return _posix(method, base)
    if kind == "local":
        return _posix(FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=str(base))), base)
    if kind == "ssh":
        return _posix(scp_method(request.getfixturevalue("sshd"), base), base)
    s3 = request.getfixturevalue("s3")
    bucket = f"sweeps-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    fs = fsspec.filesystem("s3", **s3.storage_options())
    root = f"{bucket}/shared/root"
    # An object keeps the time it was written: the sweep reads the clock a month later instead.
    later = time.time() + MONTH
    monkeypatch.setattr(sweep, "_now", lambda: later)

    def place(directory: str, name: str) -> str:
        return f"{posixpath.normpath(f'{root}/{directory}')}/{name}/data"

    def plant(directory: str, name: str, old: bool) -> bool:
        try:
            fs.pipe_file(place(directory, name), b"not the sweep's to remove")
        except OSError:  # moto refuses a key with a newline (S3 itself takes it)
            return False
        return True
    return Target(FsspecMethod(destination=FsspecDestination(fs=fs, root=root)), plant,
                  lambda directory, name: fs.exists(place(directory, name)), ages=False)


def test_a_sweep_removes_only_old_staging_of_its_own_naming_and_nothing_outside_the_root(target, tmp_path):
    planted = [name for name in PLANTED if target.plant(STAGING_DIR, name, True)]
    assert {"*", "-rf"} <= set(planted), planted  # every store takes these
    never_published = Run("scheduled__gave_up", DS).staging_name  # a run that died a month ago
    still_going = Run("manual__still_going", DS).staging_name
    assert target.plant(STAGING_DIR, never_published, True)
    if target.ages:
        assert target.plant(STAGING_DIR, still_going, False)
    assert target.plant("..", "outside", True)  # next to the root: never the sweep's
    assert target.plant(".", "ds=2026-01-01", True)  # published data in the root

    run = Run("scheduled__sweeper", DS)
    manifest = make_chunk(tmp_path / "chunk", parts=1)
    deliver_chunk(target.method, manifest, run, overwrite=True, verify_mode="sha256")
    publish(target.method.destination, run, names(manifest), names(manifest))
    commit(target.method.destination, run)  # a successful publish sweeps

    assert not target.exists(STAGING_DIR, never_published)
    left = [name for name in planted if not target.exists(STAGING_DIR, name)]
    assert not left, f"the sweep removed planted entries {left!r}"
    if target.ages:
        assert target.exists(STAGING_DIR, still_going)
    assert target.exists("..", "outside") and target.exists(".", "ds=2026-01-01")
