"""Publishing on an object store survives a failure at any single copy or delete.

On S3 (moto's server) and the in-memory filesystem a directory "rename" is a copy and a delete per
object. A store that fails one request (a 503 SlowDown) half way through moving a partition must
not lose or mix anything: for every k, the k-th copy/delete/write of a publish and its roll back
fails once; after the failure, the retry, the roll back and a third run of the same partition, the
partition holds exactly one complete run's files, byte for byte, and the run that was rolled back
still has its files in staging for its next retry.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import fsspec
import pytest

from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.publish import commit, publish, roll_back

DS = {"ds": "2026-12-07"}
MUTATIONS = ("cp_file", "rm_file", "rm", "pipe_file", "mv", "copy", "put_file")


class SlowDown(OSError):
    """What s3fs raises for a 503 SlowDown once its own retries gave up."""


class FailingStore:
    """An fsspec filesystem whose ``fail_at``-th request that changes something fails once."""

    def __init__(self, fs: fsspec.AbstractFileSystem):
        self._fs = fs
        self.calls = 0
        self.fail_at: int | None = None

    def __getattr__(self, name: str):
        attribute = getattr(self._fs, name)
        if name not in MUTATIONS:
            return attribute

        def counted(*args, **kwargs):
            self.calls += 1
            if self.calls == self.fail_at:
                raise SlowDown(f"503 SlowDown: please reduce your request rate ({name} #{self.calls})")
            return attribute(*args, **kwargs)
        return counted


def contents(fs: fsspec.AbstractFileSystem, directory: str) -> dict[str, str]:
    """relative name -> sha256 of every object below ``directory``."""
    prefix = directory.rstrip("/") + "/"
    if not fs.exists(directory):
        return {}
    return {path[len(prefix):]: hashlib.sha256(fs.cat_file(path)).hexdigest() for path in fs.find(directory)}


@pytest.fixture(params=["memory", "s3"])
def object_store(request) -> Callable[[], tuple[fsspec.AbstractFileSystem, str]]:
    """A fresh (filesystem, root) of the kind ``request.param`` per call."""
    if request.param == "memory":
        fs = fsspec.filesystem("memory")
        return lambda: (fs, f"/publish-faults-{uuid.uuid4().hex[:8]}/events")
    s3 = request.getfixturevalue("s3")
    fs = fsspec.filesystem("s3", **s3.storage_options())
    bucket = f"publish-faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    return lambda: (fs, f"{bucket}/{uuid.uuid4().hex[:8]}/events")


def test_an_object_store_publish_failing_at_any_copy_or_delete_loses_and_mixes_nothing(object_store):
    files = {run: {f"chunk-00000-part-{p:05d}.parquet": f"{run} part {p} ".encode() * 100 for p in range(2)}
             for run in ("old", "new", "third")}
    expected = {run: {name: hashlib.sha256(data).hexdigest() for name, data in named.items()}
                for run, named in files.items()}
    new_run, third_run = Run("scheduled__new", DS), Run("scheduled__third", DS)

    def scenario(fail_at: int | None) -> int:
        fs, root = object_store()
        store = FailingStore(fs)
        destination = FsspecDestination(fs=store, root=root)  # type: ignore[arg-type]
        final = new_run.at(root).final_dir
        staging = {run.run_id: run.at(root).staging_dir for run in (new_run, third_run)}
        fs.pipe({f"{final}/{name}": data for name, data in files["old"].items()})  # published long ago
        fs.pipe({f"{staging[new_run.run_id]}/{name}": data for name, data in files["new"].items()})  # delivered
        new = sorted(files["new"])

        def partition() -> dict[str, str]:
            return contents(fs, final)

        def attempt(step: Callable[[], object]) -> bool:
            try:
                step()
            except SlowDown:
                return False
            return True

        store.fail_at = fail_at  # the fail_at-th change of the publish and its roll back fails, once
        if not attempt(lambda: publish(destination, new_run, new, new)):
            assert partition() == expected["old"], f"after a failed publish (fault #{fail_at})"
            assert contents(fs, staging[new_run.run_id]) == expected["new"]
            publish(destination, new_run, new, new)  # the retry
        assert partition() == expected["new"]
        if not attempt(lambda: roll_back(destination, new_run)):  # e.g. the table step refused
            roll_back(destination, new_run)  # the finalize task's retry
        assert partition() == expected["old"], f"after the roll back (fault #{fail_at})"
        assert contents(fs, staging[new_run.run_id]) == expected["new"], "the rolled back run's files wait for its retry"
        changes = store.calls

        fs.pipe({f"{staging[third_run.run_id]}/{name}": data for name, data in files["third"].items()})
        publish(destination, third_run, sorted(files["third"]), sorted(files["third"]))
        commit(destination, third_run)
        assert partition() == expected["third"]
        assert contents(fs, staging[new_run.run_id]) == expected["new"]
        layout = third_run.at(root)
        assert not fs.exists(layout.previous_dir) and not fs.exists(layout.lock_path)
        return changes

    changes = scenario(None)  # how many changes a publish and its roll back make
    assert changes >= 6  # at least: lock, record, two objects each way
    for fail_at in range(1, changes + 1):
        scenario(fail_at)
