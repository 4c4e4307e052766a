"""The publish lock: taken atomically on every store (or refused), broken only after its lease and
only by one run, and a run that lost it keeps nothing. Runs are told apart by DAG, run id and task
group; a run id of ``.`` names no directory shared with other runs.

Real parts: the local disk, HDFS (WebHDFS, and ``hdfs dfs`` on a ``file://`` target), S3 (moto).
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from hdfs import InsecureClient

from airflow_provider_impala_transfer.core.errors import ConfigError, PublishError
from airflow_provider_impala_transfer.core.staging import remove_staged
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
from airflow_provider_impala_transfer.core.transfer.destinations import Destination, FsspecDestination
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run, inside
from airflow_provider_impala_transfer.core.transfer.lock import PublishLock
from airflow_provider_impala_transfer.core.transfer.methods import FsspecMethod, HdfsPutMethod
from airflow_provider_impala_transfer.core.transfer.publish import commit, publish, roll_back
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata
from airflow_provider_impala_transfer.operators.impala_extract import run_directory
from tests.faults.test_publish_safety import published, sha256s
from tests.support.races import at_once
from tests.test_transfer_methods import hdfs_destination, make_chunk, names, unique_dir

DS = {"ds": "2026-12-07"}


@pytest.fixture(params=["local", "webhdfs", "s3"])
def store(request, tmp_path):
    """A factory of methods delivering to one fresh target root (several stand for several workers)."""
    if request.param == "local":
        root = str(tmp_path / "target")
        return lambda: FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=root))
    if request.param == "webhdfs":
        hadoop = request.getfixturevalue("hadoop_env")
        root = unique_dir("publish-locks")
        client = InsecureClient(f"http://{hadoop.target.webhdfs_address}", user=hadoop.user)
        return lambda: HdfsPutMethod(destination=hdfs_destination(root, metadata=WebHdfsMetadata(client)),
                                     runner=CommandRunner(timeout=120))
    s3 = request.getfixturevalue("s3")
    bucket = f"locks-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    fs = fsspec.filesystem("s3", **s3.storage_options())
    return lambda: FsspecMethod(destination=FsspecDestination(fs=fs, root=f"{bucket}/events"))


def age_lock(destination: Destination, run: Run, hours: float) -> None:
    """What a run that stopped ``hours`` ago left: its lock, written then."""
    then = (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat(timespec="seconds")
    lock = run.at(destination.root).lock_path
    destination.remove([lock])
    assert destination.create_exclusive(lock, f"{getattr(run, 'owner', run.key)} {run.key} worker-1 {then}")


def deliver(method, tmp_path: Path, run: Run, parts: int):
    manifest = make_chunk(tmp_path / f"{run.run_id}-{uuid.uuid4().hex[:4]}", parts=parts)
    deliver_chunk(method, manifest, run, overwrite=True, verify_mode="sha256")
    return manifest


def test_a_run_whose_lock_was_broken_after_its_lease_keeps_nothing_and_its_finalize_fails(store, tmp_path):
    """Run A published and then stalled past the lease (its finalize cleared the next day): run B
    broke A's lock, put back what A replaced and published. A's finalize must not keep anything."""
    method = store()
    destination = method.destination
    first, a, b = Run("scheduled__first", DS), Run("scheduled__a", DS), Run("manual__b", DS)
    old = deliver(method, tmp_path, first, 2)
    publish(destination, first, names(old), names(old))
    commit(destination, first)
    mine = deliver(method, tmp_path, a, 1)
    publish(destination, a, names(mine), names(mine))
    age_lock(destination, a, hours=25)
    theirs = deliver(method, tmp_path, b, 3)
    messages: list[str] = []
    publish(destination, b, names(theirs), names(theirs), log=messages.append)
    commit(destination, b)
    with pytest.raises(PublishError, match=r"the lock this run took when publishing is gone; another run may have "
                                           r"broken it after its lease \(24 h, publish_lock_lease\)"):
        commit(destination, a)
    assert any("past its lease" in m for m in messages)
    assert published(destination, b) == sha256s(theirs)
    assert sorted(destination.list_names(a.at(destination.root).staging_dir)) == names(mine)  # kept for a re-run
    assert not roll_back(destination, a)  # nothing of A's is published, and B's stays
    assert published(destination, b) == sha256s(theirs)


def test_of_two_runs_breaking_one_stale_lock_exactly_one_acts(store, tmp_path):
    """Both read the stale lock, then go at once: one breaks it, restores and publishes; the other
    changes nothing. The stale run's replaced files come back once and its own files are kept."""
    methods = [store(), store(), store()]
    destination = methods[0].destination
    first, gone = Run("scheduled__first", DS), Run("scheduled__gone", DS)
    racers = [Run("manual__x", DS), Run("manual__y", DS)]
    old = deliver(methods[0], tmp_path, first, 2)
    publish(destination, first, names(old), names(old))
    commit(destination, first)
    unconfirmed = deliver(methods[0], tmp_path, gone, 1)
    publish(destination, gone, names(unconfirmed), names(unconfirmed))
    age_lock(destination, gone, hours=48)
    files = [deliver(m, tmp_path, r, 2) for m, r in zip(methods[1:], racers)]
    barrier = threading.Barrier(2, timeout=120)
    for method in methods[1:]:
        lock_path = gone.at(method.destination.root).lock_path
        read = method.destination.read_text
        seen = {"lock": False}

        def read_at_barrier(path, read=read, lock_path=lock_path, seen=seen):
            text = read(path)
            if path == lock_path and not seen["lock"]:  # both have read the stale lock
                seen["lock"] = True
                barrier.wait()
            return text
        method.destination.read_text = read_at_barrier  # type: ignore[method-assign]
    outcomes = at_once([lambda i=i: publish(methods[i + 1].destination, racers[i], names(files[i]), names(files[i]))
                        for i in range(2)], expected=PublishError, timeout=300)
    failed = [i for i in range(2) if isinstance(outcomes.get(i), PublishError)]
    assert len(outcomes) == 2 and len(failed) == 1, outcomes
    winner = 1 - failed[0]
    assert published(destination, racers[winner]) == sha256s(files[winner])
    roll_back(destination, racers[winner])
    assert published(destination, first) == sha256s(old)  # what the gone run replaced, back once
    assert sorted(destination.list_names(gone.at(destination.root).staging_dir)) == names(unconfirmed)
    loser = racers[failed[0]]
    assert sorted(destination.list_names(loser.at(destination.root).staging_dir)) == names(files[failed[0]])


def test_the_lease_is_a_setting_and_a_lock_within_it_is_never_broken(tmp_path):
    method = FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=str(tmp_path / "t")))
    destination = method.destination
    slow, next_day = Run("scheduled__slow", DS), Run("scheduled__next", DS)
    mine = deliver(method, tmp_path, slow, 1)
    publish(destination, slow, names(mine), names(mine))
    age_lock(destination, slow, hours=30)
    theirs = deliver(method, tmp_path, next_day, 1)
    with pytest.raises(PublishError, match="is being published by run scheduled__slow"):
        publish(destination, next_day, names(theirs), names(theirs), lock=PublishLock(lease=timedelta(hours=48)))
    commit(destination, slow, lock=PublishLock(lease=timedelta(hours=48)))  # still its own: kept
    assert published(destination, slow) == sha256s(mine)
    with pytest.raises(ConfigError, match="publish_lock_lease: "):
        PublishLock(lease=0)
    with pytest.raises(ConfigError, match="publish_lock: 'optimistic' is not a lock mode"):
        PublishLock(mode="optimistic")


def test_commit_and_roll_back_fail_loudly_when_the_lock_is_not_the_runs(tmp_path):
    method = FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=str(tmp_path / "t")))
    destination = method.destination
    run = Run("scheduled__r", DS)
    files = deliver(method, tmp_path, run, 1)
    publish(destination, run, names(files), names(files))
    os.remove(run.at(destination.root).lock_path)  # someone "cleaned up" by hand
    with pytest.raises(PublishError, match="the lock this run took when publishing is gone"):
        commit(destination, run)
    with pytest.raises(PublishError, match="the lock this run took when publishing is gone"):
        roll_back(destination, run)


def test_a_file_target_through_hdfs_dfs_takes_its_lock_only_if_absent(hadoop_env, tmp_path):
    """Hadoop's local filesystem renames over an existing file: a lock must not be taken that way."""
    lock = f"file://{tmp_path}/lock"
    shell = HdfsShell(runner=CommandRunner(timeout=120))
    assert shell.create_exclusive(lock, "first")
    assert not shell.create_exclusive(lock, "second")
    assert (tmp_path / "lock").read_text() == "first"


class IgnoresIfNoneMatch:
    """An S3-compatible store that takes every write, "only if absent" or not."""

    def __init__(self, fs):
        self._fs = fs

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        return self._fs.pipe_file(path, value, **kwargs)


def test_an_s3_endpoint_that_ignores_if_none_match_is_refused_before_anything_moves(s3, tmp_path):
    bucket = f"ignores-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    fs = IgnoresIfNoneMatch(fsspec.filesystem("s3", **s3.storage_options()))
    method = FsspecMethod(destination=FsspecDestination(fs=fs, root=f"{bucket}/events"))  # type: ignore[arg-type]
    run = Run("manual__r", DS)
    files = deliver(method, tmp_path, run, 1)
    with pytest.raises(ConfigError, match=r"^publish_lock: s3://ignores-.*/events/_impala_transfer_locks/ds=2026-12-07: "
                                          r"this endpoint ignores If-None-Match \(it wrote a probe file twice\), so "
                                          r"two runs publishing this target at once could both take its lock"):
        publish(method.destination, run, names(files), names(files))
    assert published(method.destination, run) == {}
    publish(method.destination, run, names(files), names(files), lock=PublishLock(mode="none"))  # asked for
    assert published(method.destination, run) == sha256s(files)


def test_a_store_without_an_exclusive_create_is_refused_unless_no_lock_is_asked_for(hadoop_env, tmp_path):
    """fsspec's WebHDFS filesystem only checks, then writes: two runs could both take the lock."""
    fs = fsspec.filesystem("webhdfs", host=hadoop_env.target.webhdfs_address.split(":")[0],
                           port=int(hadoop_env.target.webhdfs_address.split(":")[1]), user=hadoop_env.user)
    root = unique_dir("no-exclusive-create").removeprefix("hdfs://cluster2")
    method = FsspecMethod(destination=FsspecDestination(fs=fs, root=root))
    run = Run("manual__r", DS)
    files = deliver(method, tmp_path, run, 1)
    with pytest.raises(ConfigError, match=r"publish_lock: .* cannot create a file only if it is absent in one step, so "
                                          r"two runs publishing this target at once could both take its lock"):
        publish(method.destination, run, names(files), names(files))
    publish(method.destination, run, names(files), names(files), lock=PublishLock(mode="none"))
    commit(method.destination, run, lock=PublishLock(mode="none"))
    assert published(method.destination, run) == sha256s(files)


def test_a_run_id_of_dot_names_only_its_own_directories(tmp_path):
    """Airflow accepts "." as a manual run id; ``<dir>/.`` would be every run's directory."""
    for run_id in (".", "..", "", "_hidden", "-rf"):
        run = Run(run_id, dag_id="d")
        assert run.key not in (".", "..", "") and run.key[0].isalnum(), run.key
        assert Run(run_id).key[0].isalnum()
    output = tmp_path / "chunks"
    other = Path(run_directory(str(output), "d", "manual__other"))
    other.mkdir(parents=True)
    (other / "chunk-00000-part-00000.parquet").write_bytes(b"another run's chunk")
    mine = run_directory(str(output), "d", ".")
    Path(mine).mkdir(parents=True)
    remove_staged(inside(f"file://{mine}", f"file://{output}"), HdfsShell(runner=CommandRunner(timeout=60)))
    assert (other / "chunk-00000-part-00000.parquet").exists() and not Path(mine).exists()


@pytest.mark.parametrize("partition", [DS, None], ids=["same partition", "no partition"])
def test_two_groups_of_one_run_stage_apart_and_the_second_to_publish_one_directory_is_refused(store, partition,
                                                                                              tmp_path):
    method = store()
    destination = method.destination
    orders, refunds = (Run("scheduled__2026-12-07", partition, dag_id="daily", group_id=g) for g in ("orders", "refunds"))
    assert orders.staging_name != refunds.staging_name and orders.owner != refunds.owner
    assert orders.at(destination.root).final_dir == refunds.at(destination.root).final_dir  # one run, one directory
    mine, theirs = deliver(method, tmp_path, orders, 2), deliver(method, tmp_path, refunds, 1)
    publish(destination, orders, names(mine), names(mine))
    with pytest.raises(PublishError, match=r"is being published by another task group of this run \(.*\); nothing "
                                           r"was changed \(give each group its own target_path or partition\)"):
        publish(destination, refunds, names(theirs), names(theirs))
    commit(destination, orders)
    with pytest.raises(PublishError, match=r"was published by another task group of this run \(.*\); nothing was "
                                           r"changed \(give each group its own target_path or partition\)"):
        publish(destination, refunds, names(theirs), names(theirs))
    assert published(destination, orders) == sha256s(mine)
    assert sorted(destination.list_names(refunds.at(destination.root).staging_dir)) == names(theirs)
    # a re-run of the same group replaces its own files, as any re-run does
    again = deliver(method, tmp_path, orders, 1)
    publish(destination, orders, names(again), names(again))
    commit(destination, orders)
    assert published(destination, orders) == sha256s(again)
