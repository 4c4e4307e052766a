"""The transfer example DAG on a distributed Airflow: PostgreSQL, Redis, CeleryExecutor and two
workers with their own hostnames and private temp dirs (tests/support/airflow_deployment.py),
triggered through the REST API as the UI's Trigger button does, on the Kerberized stack: each worker
has Airflow's ticket renewer (``airflow kerberos``) beside it, with a ticket cache of its own, and
the workers' principal gets tickets of 40 seconds, shorter than the run."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import EVENTS_ROWS, TICKET_LIFETIME
from tests.support.hdfs_files import hdfs_get

pytestmark = [pytest.mark.slow, pytest.mark.server]

DAG_ID = "impala_transfer_example"
LOOPBACK = {"127.0.0.1", "::1"}


def published_ids(hadoop, directory: str, local_dir: Path) -> list[int]:
    """The ``id`` of every row in the Parquet files of a published partition (copied into ``local_dir``)."""
    copy = hdfs_get(hadoop, directory, local_dir)
    return [value for path in sorted(copy.glob("*.parquet")) if not path.name.startswith((".", "_"))
            for value in pq.read_table(path, columns=["id"]).column("id").to_pylist()]


def tmpfs_at(pid: int | str, directory: Path) -> str | None:
    """The device of the tmpfs mounted at ``directory`` as process ``pid`` sees it, if any."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(directory) and fields[fields.index("-") + 1] == "tmpfs":
            return fields[2]
    return None


class ListenerWatch:
    """Samples the deployment's listening sockets in the background, task processes included."""

    def __init__(self, deployment, interval: float = 2.0) -> None:
        self.deployment, self.interval = deployment, interval
        self.seen: set = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.seen.update(self.deployment.listening_addresses())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> ListenerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def renewals(deployment, worker: str) -> int:
    """How often the worker's ``airflow kerberos`` has re-initialised its cache so far."""
    return deployment.log_tail(deployment.renewer(worker), 100_000).count("Re-initialising kerberos from keytab")


@pytest.mark.timeout(900)
def test_a_triggered_transfer_spreads_its_chunks_over_both_workers_delivers_every_row_once_on_loopback_only(
        airflow_deployment, kerberized_hadoop, tmp_path):
    deployment, hadoop = airflow_deployment, kerberized_hadoop
    target = f"hdfs://cluster2/celery/{uuid.uuid4().hex[:8]}"
    run_id = f"celery_{uuid.uuid4().hex[:8]}"
    deployment.wait_for_dag(DAG_ID)
    deployment.unpause(DAG_ID)
    before = {name: renewals(deployment, name) for name in deployment.workers}
    with ListenerWatch(deployment) as watch:
        started = time.monotonic()
        deployment.trigger(DAG_ID, {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": 5000,
                                    "method": "distcp", "target_path": target},
                           run_id=run_id, logical_date="2026-05-01T00:00:00+00:00")
        run = deployment.wait_for_run(DAG_ID, run_id, timeout=600)
        took = time.monotonic() - started
    after = {name: renewals(deployment, name) for name in deployment.workers}
    instances = deployment.task_instances(DAG_ID, run_id)
    not_ok = [(ti["task_id"], ti["map_index"], ti["state"], ti["hostname"]) for ti in instances
              if ti["state"] not in ("success", "skipped")]
    assert run["state"] == "success", (not_ok, deployment.log_tail("worker-1"), deployment.log_tail("worker-2"))

    ran_on = {ti["hostname"] for ti in instances if ti["state"] == "success"}
    assert ran_on <= {"worker-1", "worker-2"}  # every task ran on a Celery worker
    per_chunk = {ti["hostname"] for ti in instances if ti["map_index"] >= 0 and ti["state"] == "success"}
    assert per_chunk == {"worker-1", "worker-2"}  # the chunks were shared out, handed over through HDFS
    distcp = [ti["state"] for ti in instances if ti["task_id"] == "events.deliver.distcp"]
    assert distcp == ["success"] * 4  # each chunk by its first method, from the files staged on cluster1
    # and a chunk started on a worker only its extract, distcp and the join: the scheduler marked the
    # methods it did not need skipped without sending them to Celery
    started = sorted((ti["map_index"], ti["task_id"].rsplit(".", 1)[-1])
                     for ti in instances if ti["map_index"] >= 0 and ti["hostname"])
    assert started == [(i, task) for i in range(4) for task in ("delivered", "distcp", "extract")]

    published = f"{target}/ds=2026-05-01"
    ids = published_ids(hadoop, published, tmp_path)
    assert len(ids) == EVENTS_ROWS and set(ids) == set(range(EVENTS_ROWS))  # every row, exactly once
    # written on cluster2 as the workers' principal (its short name, through the cross-realm trust)
    owners = hadoop.hdfs("dfs", "-stat", "%u", f"{published}/*", superuser=True, check=True).stdout.split()
    assert owners and set(owners) == {deployment.principal.split("@")[0]}
    # the run outlived the tickets it started with: each worker's renewer re-initialised its cache meanwhile
    assert took > TICKET_LIFETIME and all(after[name] > before[name] for name in deployment.workers), \
        (took, before, after)

    # each worker has a tmpfs of its own over the shared temp path, with its ticket cache; this process sees neither
    pids = deployment.pids()
    devices = [tmpfs_at(pids[name], deployment.worker_tmp) for name in ("worker-1", "worker-2")]
    assert None not in devices and len(set(devices)) == 2 and tmpfs_at("self", deployment.worker_tmp) is None
    assert all(Path(f"/proc/{pids[name]}/root{deployment.ccache}").is_file() for name in ("worker-1", "worker-2"))
    assert not deployment.ccache.exists()

    watch.seen.update(deployment.listening_addresses())
    assert {listener.component for listener in watch.seen} >= {"postgres", "redis", "api-server"}
    assert [listener for listener in watch.seen if listener.address not in LOOPBACK] == []
