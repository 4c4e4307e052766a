"""Publishing never loses the previous good data and never mixes two runs: a re-run that fails
after the swap puts the previous partition back byte for byte; of two runs publishing one
partition at once exactly one wins and the other changes nothing; a crash between the renames is
repaired by the run's next attempt. On every kind of destination, each a real server: HDFS (through
``hdfs dfs`` and through WebHDFS), the local filesystem, S3 (moto) and an ssh host (sshd)."""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from hdfs import InsecureClient

from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.errors import PublishError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
from airflow_provider_impala_transfer.core.transfer.destinations import (
    Destination,
    FsspecDestination,
    HdfsDestination,
    SshDestination,
)
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.methods import FsspecMethod, HdfsPutMethod, TransferMethod
from airflow_provider_impala_transfer.core.transfer.publish import commit, publish, roll_back
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata
from tests.support.races import at_once
from tests.test_transfer_methods import hdfs_destination, make_chunk, names, scp_method, unique_dir

STORES = ["webhdfs", "local", "s3", "ssh"]  # + "hdfs dfs" where its own lock and renames matter
DS = {"ds": "2026-11-24"}


@pytest.fixture
def store(request, tmp_path) -> Callable[[], TransferMethod]:
    """A factory of methods delivering to one fresh target root of the kind ``request.param``
    (several methods to one root stand for several workers)."""
    kind = request.param
    if kind in ("hdfs dfs", "webhdfs"):
        hadoop = request.getfixturevalue("hadoop_env")
        root = unique_dir("publish-safety")

        def make():
            metadata = None
            if kind == "webhdfs":
                metadata = WebHdfsMetadata(InsecureClient(f"http://{hadoop.target.webhdfs_address}", user=hadoop.user))
            return HdfsPutMethod(destination=hdfs_destination(root, metadata=metadata), runner=CommandRunner(timeout=120))
        return make
    if kind == "local":
        root = str(tmp_path / "target")
        return lambda: FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=root))
    if kind == "s3":
        s3 = request.getfixturevalue("s3")
        bucket = f"publish-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(bucket)
        fs = fsspec.filesystem("s3", **s3.storage_options())
        return lambda: FsspecMethod(destination=FsspecDestination(fs=fs, root=f"{bucket}/events"))
    sshd = request.getfixturevalue("sshd")
    return lambda: scp_method(sshd, tmp_path / "remote")


class Observed:
    """What a destination's store holds, as the test reads it for itself: not through the
    destination's own code, and without a JVM start (``hdfs dfs``) or an ssh login per look.
    HDFS over WebHDFS (the NameNode of the URI's cluster, from the client configuration in
    ``HADOOP_CONF_DIR``); the ssh host's files on this machine's disk (the test sshd listens on
    127.0.0.1, as this user); an fsspec store through its own filesystem."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.hdfs = _webhdfs_client(destination.root) if isinstance(destination, HdfsDestination) else None
        self.local = isinstance(destination, SshDestination)
        assert not self.local or destination.target.host == "127.0.0.1", destination.target

    def _path(self, path: str) -> str:
        return urlsplit(path).path if self.hdfs is not None else path

    def is_dir(self, path: str) -> bool:
        if self.hdfs is not None:
            status = self.hdfs.status(self._path(path), strict=False)
            return status is not None and status["type"] == "DIRECTORY"
        return os.path.isdir(path) if self.local else self.destination.is_dir(path)

    def names(self, directory: str) -> list[str]:
        """Visible names directly under ``directory``, sorted."""
        if self.hdfs is not None:
            listed = self.hdfs.list(self._path(directory))
        elif self.local:
            listed = os.listdir(directory)
        else:
            listed = self.destination.list_names(directory)
        return sorted(name for name in listed if not name.startswith((".", "_")))

    def sha256(self, path: str) -> str:
        if self.hdfs is not None:
            with self.hdfs.read(self._path(path)) as reader:
                return hashlib.sha256(reader.read()).hexdigest()
        if self.local:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
        [(_, digest)] = self.destination.file_info([path]).values()
        return digest

    def text(self, path: str) -> str | None:
        """The text of a small file (the ssh store's are symlinks), None if there is none."""
        if self.hdfs is not None:
            if self.hdfs.status(self._path(path), strict=False) is None:
                return None
            with self.hdfs.read(self._path(path), encoding="utf-8") as reader:
                return reader.read()
        if self.local:
            return os.readlink(path) if os.path.islink(path) else None
        return self.destination.read_text(path)


def _webhdfs_client(uri: str) -> InsecureClient:
    """A WebHDFS client of the NameNode of ``uri``'s nameservice (``hdfs-site.xml`` of ``HADOOP_CONF_DIR``)."""
    site = ElementTree.parse(Path(os.environ["HADOOP_CONF_DIR"]) / "hdfs-site.xml")
    conf = {prop.findtext("name"): prop.findtext("value") for prop in site.getroot().iter("property")}
    address = conf[f"dfs.namenode.http-address.{urlsplit(uri).netloc}.nn1"]
    return InsecureClient(f"http://{address}", user=os.environ.get("HADOOP_USER_NAME") or getpass.getuser())


def published(destination: Destination, run: Run) -> dict[str, str]:
    """name -> sha256 of the files in the run's final directory (read back from the store by the test)."""
    final = run.at(destination.root).final_dir
    store = Observed(destination)
    if not store.is_dir(final):
        return {}
    return {name: store.sha256(f"{final}/{name}") for name in store.names(final)}


def sha256s(manifest: Manifest) -> dict[str, str]:
    return {f.name: f.sha256 for f in manifest.files}


def deliver_and_publish(method: TransferMethod, manifest: Manifest, run: Run) -> str | None:
    deliver_chunk(method, manifest, run, overwrite=True, verify_mode="sha256")
    return publish(method.destination, run, names(manifest), names(manifest))


def staged(destination: Destination, run: Run) -> list[str]:
    """The visible names in the run's staging directory (read by the test), sorted."""
    return Observed(destination).names(run.at(destination.root).staging_dir)


def assert_no_leftovers(destination: Destination, run: Run) -> None:
    layout = run.at(destination.root)
    store = Observed(destination)
    assert not store.is_dir(layout.previous_dir)
    assert store.text(layout.lock_path) is None


@pytest.mark.parametrize("store", ["hdfs dfs", *STORES], indirect=True)
def test_a_rerun_that_fails_after_the_swap_puts_the_previous_partition_back_byte_for_byte(store, tmp_path):
    method = store()
    destination = method.destination
    run = Run("scheduled__2026-11-24T00:00:00+00:00", DS)
    first = make_chunk(tmp_path / "first", parts=2)
    deliver_and_publish(method, first, run)
    commit(destination, run)
    second = make_chunk(tmp_path / "second", parts=3)
    replaced = deliver_and_publish(method, second, run)
    assert replaced and published(destination, run) == sha256s(second)
    assert roll_back(destination, run)  # e.g. the table step refused
    assert published(destination, run) == sha256s(first)  # same names, same bytes: nothing nested or lost
    assert staged(destination, run) == names(second)  # kept for a retry
    assert_no_leftovers(destination, run)
    # the retry publishes without delivering again, and this time the run is confirmed
    assert publish(destination, run, names(second), names(second))
    commit(destination, run)
    assert published(destination, run) == sha256s(second)
    assert_no_leftovers(destination, run)


@pytest.mark.parametrize("store", ["webhdfs", "local"], indirect=True)
def test_a_first_publish_that_fails_later_leaves_no_partition_behind(store, tmp_path):
    method = store()
    run = Run("manual__first", DS)
    manifest = make_chunk(tmp_path / "a", parts=1)
    assert deliver_and_publish(method, manifest, run) is None  # nothing replaced
    assert roll_back(method.destination, run)
    assert published(method.destination, run) == {}
    assert_no_leftovers(method.destination, run)


@pytest.mark.parametrize("store", STORES, indirect=True)
def test_a_second_run_publishing_the_same_partition_fails_and_changes_nothing_in_either_order(store, tmp_path):
    a, b = Run("manual__a", DS), Run("manual__b", DS)
    files = {a.run_id: make_chunk(tmp_path / "a", parts=2), b.run_id: make_chunk(tmp_path / "b", parts=1)}
    for first, second in ((a, b), (b, a)):
        method = store()
        deliver_chunk(method, files[second.run_id], second, overwrite=True, verify_mode="sha256")
        deliver_and_publish(method, files[first.run_id], first)  # holds the partition until confirmed
        with pytest.raises(PublishError, match=rf"ds=2026-11-24 is being published by run {re.escape(first.key)} "
                                               r"\(.*\); nothing was changed \(wait for that run and retry; if it is "
                                               r"no longer running, remove .*_impala_transfer_locks/ds=2026-11-24"):
            publish(method.destination, second, names(files[second.run_id]), names(files[second.run_id]))
        assert published(method.destination, first) == sha256s(files[first.run_id])
        assert staged(method.destination, second) == names(files[second.run_id])
        commit(method.destination, first)
        # once the first run is confirmed, the second publishes and replaces it whole
        publish(method.destination, second, names(files[second.run_id]), names(files[second.run_id]))
        commit(method.destination, second)
        assert published(method.destination, second) == sha256s(files[second.run_id])
        assert_no_leftovers(method.destination, second)


@pytest.mark.parametrize("store", ["hdfs dfs", *STORES], indirect=True)
def test_of_two_runs_racing_to_publish_one_partition_exactly_one_wins(store, tmp_path):
    """Both stop at a barrier just before taking the partition's lock, then go at once."""
    runs = [Run("manual__x", DS), Run("manual__y", DS)]
    methods = [store(), store()]  # one each, as two workers
    manifests = [make_chunk(tmp_path / "x", parts=2), make_chunk(tmp_path / "y", parts=3)]
    barrier = threading.Barrier(2, timeout=60)
    for method, manifest, run in zip(methods, manifests, runs):
        deliver_chunk(method, manifest, run, overwrite=True, verify_mode="sha256")
        exclusive = method.destination.create_exclusive

        def at_barrier(path, text, exclusive=exclusive):
            barrier.wait()
            return exclusive(path, text)
        method.destination.create_exclusive = at_barrier  # type: ignore[method-assign]

    outcomes = at_once([lambda i=i: publish(methods[i].destination, runs[i], names(manifests[i]), names(manifests[i]))
                        for i in range(2)], expected=PublishError, timeout=180)
    failed = [i for i in range(2) if isinstance(outcomes.get(i), PublishError)]
    assert len(outcomes) == 2 and len(failed) == 1, outcomes
    winner = 1 - failed[0]
    assert "is being published by run" in str(outcomes[failed[0]])
    destination = methods[winner].destination
    assert published(destination, runs[winner]) == sha256s(manifests[winner])  # whole, not mixed or nested
    assert staged(destination, runs[failed[0]]) == names(manifests[failed[0]])


class Killed(BaseException):
    """The publishing process died (SIGKILL): nothing of it runs after this point."""


def kill_at(destination: Destination, method: str, call: int) -> Callable[[], None]:
    """From the ``call``-th call of ``destination.<method>`` on, every store operation of this
    process fails: what it left is what a SIGKILL leaves. Returns what revives the destination."""
    names = ("move", "remove", "makedirs", "write_text", "create_exclusive", "read_text", "is_dir", "directories", "list_names",
             "touch", "move_object", "objects", "modified", "file_info")
    originals = {name: getattr(destination, name) for name in names}
    count = {"calls": 0, "dead": False}

    def dead(*args, **kwargs):
        raise Killed()

    def counted(*args, **kwargs):
        count["calls"] += 1
        if count["calls"] >= call:
            for name in names:
                setattr(destination, name, dead)
            raise Killed()
        return originals[method](*args, **kwargs)
    setattr(destination, method, counted)
    return lambda: [setattr(destination, name, original) for name, original in originals.items()]


@pytest.mark.parametrize("store", ["webhdfs", "local", "s3"], indirect=True)
def test_a_publish_killed_between_the_two_moves_is_repaired_by_the_runs_next_attempt(store, tmp_path):
    """The publishing process died after moving the old partition aside and before moving the new
    one into place (SIGKILL: no clean-up ran): the partition is missing, the lock held, the publish
    record open. The run's retry takes its lock back, restores, then publishes; a failure after
    that still restores."""
    method = store()
    destination = method.destination
    run = Run("scheduled__crash", DS)
    old = make_chunk(tmp_path / "old", parts=2)
    deliver_and_publish(method, old, run)
    commit(destination, run)
    new = make_chunk(tmp_path / "new", parts=1)
    deliver_chunk(method, new, run, overwrite=True, verify_mode="sha256")
    layout = run.at(destination.root)
    moving = "move_object" if destination.moves_objects else "move"
    aside = len(names(old)) if destination.moves_objects else 1  # the old partition's own moves
    revive = kill_at(destination, moving, aside + 1)
    with pytest.raises(Killed):
        publish(destination, run, names(new), names(new))
    revive()
    # the crashed state: the old partition aside, the new one still in staging, the lock held
    assert not destination.is_dir(layout.final_dir) and destination.is_dir(layout.previous_dir)
    assert destination.read_text(layout.lock_path).startswith(run.owner + " ")
    messages: list[str] = []
    publish(destination, run, names(new), names(new), log=messages.append)
    assert any("an earlier attempt of this run did not finish" in m for m in messages)
    assert published(destination, run) == sha256s(new)
    roll_back(destination, run)
    assert published(destination, run) == sha256s(old)
    assert_no_leftovers(destination, run)


@pytest.mark.parametrize("store", ["webhdfs", "local"], indirect=True)
def test_a_lock_left_by_a_run_that_died_long_ago_is_broken_after_restoring_what_that_run_replaced(store, tmp_path):
    method = store()
    destination = method.destination
    gone, next_day = Run("scheduled__gone", DS), Run("scheduled__next", DS)
    old, unconfirmed, new = (make_chunk(tmp_path / n, parts=p) for n, p in (("old", 2), ("unconfirmed", 1), ("new", 3)))
    deliver_and_publish(method, old, gone)
    commit(destination, gone)
    deliver_and_publish(method, unconfirmed, gone)  # ...and the run died before its finalize
    layout = gone.at(destination.root)
    destination.remove([layout.lock_path])
    assert destination.create_exclusive(layout.lock_path, f"{gone.key} worker-1 2026-01-01T00:00:00+00:00")
    messages: list[str] = []
    deliver_chunk(method, new, next_day, overwrite=True, verify_mode="sha256")
    publish(destination, next_day, names(new), names(new), log=messages.append)
    assert any(f"the lock of run {gone.key} is from 2026-01-01T00:00:00+00:00" in m for m in messages)
    # what the dead run replaced came back first, so the new run's own roll back would restore it
    roll_back(destination, next_day)
    assert published(destination, next_day) == sha256s(old)
    assert staged(destination, gone) == names(unconfirmed)  # kept for its retry
    assert_no_leftovers(destination, next_day)


def test_staging_left_by_runs_that_never_published_is_removed_after_a_week(hadoop_env, tmp_path):
    """A failed run's delivered chunks wait in staging for its retry, but not forever: the next
    successful publish to the same target removes the ones untouched for 7 days. On HDFS (both
    ways of reading times) and on the local filesystem."""
    client = InsecureClient(f"http://{hadoop_env.target.webhdfs_address}", user=hadoop_env.user)
    week_ago = time.time() - 8 * 24 * 3600

    def on_hdfs(metadata):
        root = unique_dir("sweep")
        for name in ("failed-long-ago", "failed-yesterday"):
            client.makedirs(f"{urlsplit(root).path}/_impala_transfer_staging/{name}")
        client.set_times(f"{urlsplit(root).path}/_impala_transfer_staging/failed-long-ago",
                         modification_time=int(week_ago * 1000))
        destination = hdfs_destination(root, metadata=metadata)
        return HdfsPutMethod(destination=destination, runner=CommandRunner(timeout=120))

    def on_local():
        staging = tmp_path / "local" / "_impala_transfer_staging"
        for name in ("failed-long-ago", "failed-yesterday"):
            (staging / name).mkdir(parents=True)
        os.utime(staging / "failed-long-ago", (week_ago, week_ago))
        return FsspecMethod(destination=FsspecDestination(fs=LocalFileSystem(), root=str(tmp_path / "local")))

    for method in (on_hdfs(None), on_hdfs(WebHdfsMetadata(client)), on_local()):
        destination, run = method.destination, Run("manual__sweeper", DS)
        staging_root = f"{destination.root}/_impala_transfer_staging"
        assert sorted(destination.modified(staging_root)) == ["failed-long-ago", "failed-yesterday"]
        deliver_and_publish(method, make_chunk(tmp_path / "c", parts=1), run)
        commit(destination, run)
        assert sorted(destination.modified(staging_root)) == ["failed-yesterday"]
