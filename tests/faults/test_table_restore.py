"""A table step killed right after it switched the table's location: the run's finalize switches
the table back, so the table never reads a directory the roll back removed.

Without a partition each run publishes into a directory of its own and the table step points the
table at it (``SET LOCATION``); a partition published under another root is moved the same way.
The step switches back by itself when a later statement fails, but a task killed with SIGKILL (or
whose worker dies) runs nothing more. The finalize task then rolls the run back, moving the run's
directory back to staging: unless it also switches the table back, the table reads nothing.

Real pieces: the local Spark Thrift Server (dialect ``hive``), HDFS cluster2 (hdfs put + WebHDFS)
or the local disk (fsspec), and the provider's operators, run one after the other as the scheduler
runs them; their XComs, JSON round-tripped, live in a small stand-in for the task instances. The
kill: the table step's connection sends its ``SET LOCATION`` and then refuses every statement, the
switch back included, as a killed process sends none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.error
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import google_crc32c
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from structlog.testing import capture_logs

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
from airflow_provider_impala_transfer.core.table.describe import parse_describe_formatted, same_location
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook
from airflow_provider_impala_transfer.operators.target_table import TargetTableOperator
from airflow_provider_impala_transfer.operators.transfer import (
    FinalizePublishOperator,
    PublishOperator,
    TransferOperator,
)

pytestmark = pytest.mark.server

SCHEMA = pa.schema([pa.field("id", pa.int64(), metadata={"impala_type": "BIGINT"})])


class TaskKilled(Exception):
    """What the table step's connection answers after its SET LOCATION: the process is gone."""


class KilledCursor:
    """The real cursor until a ``SET LOCATION`` went through; then no statement reaches the server."""

    def __init__(self, cursor):
        self._cursor = cursor
        self.dead = False

    def execute(self, sql, *args, **kwargs):
        if self.dead:
            raise TaskKilled(f"the table step was killed before it sent: {sql}")
        self._cursor.execute(sql, *args, **kwargs)
        if "SET LOCATION" in sql:
            self.dead = True

    def __getattr__(self, name):
        return getattr(self._cursor, name)


class KilledAfterSwitch(SourceConnector):
    def cursor(self, connection, **kwargs):
        return KilledCursor(super().cursor(connection, **kwargs))


@contextmanager
def killed_after_the_switch(monkeypatch):
    """The table step's hook hands out a connector whose session dies after SET LOCATION."""
    real = ImpalaTransferHook.connector
    with monkeypatch.context() as patch:
        patch.setattr(ImpalaTransferHook, "connector", lambda self: KilledAfterSwitch(
            **{f.name: getattr(c, f.name) for c in [real(self)] for f in dataclasses.fields(c)}))
        yield


class DagRun:
    """The XComs of one DAG run's task instances, JSON round-tripped as Airflow stores them."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.xcoms: dict[tuple[str, str], object] = {}

    def context(self, task_id: str) -> dict:
        def push(key, value):
            self.xcoms[(task_id, key)] = json.loads(json.dumps(value))

        def pull(task_ids, key="return_value", **_):
            return self.xcoms.get((task_ids, key))
        ti = SimpleNamespace(dag_id="table_restore", task_id=task_id, try_number=1, map_index=-1,
                             xcom_push=push, xcom_pull=pull)
        return {"run_id": self.run_id, "ti": ti}

    def run(self, operator):
        """``execute`` as a worker runs it: a returned value becomes the task's XCom."""
        value = operator.execute(self.context(operator.task_id))
        if value is not None:
            self.context(operator.task_id)["ti"].xcom_push("return_value", value)
        return value


def extract(directory: Path, first: int, rows: int) -> Manifest:
    """One chunk of real Parquet files holding ids first .. first+rows-1, as an extract writes it."""
    directory.mkdir(parents=True)
    files = []
    for part, (start, n) in enumerate([(first, rows // 2), (first + rows // 2, rows - rows // 2)]):
        path = directory / f"chunk-00000-part-{part:05d}.parquet"
        pq.write_table(pa.table({"id": pa.array(range(start, start + n), pa.int64())}, schema=SCHEMA), path)
        data = path.read_bytes()
        files.append(FileEntry(path=f"file://{path}", rows=n, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                               crc32c=f"{google_crc32c.value(data):08x}", chunk=0, part=part, format="parquet",
                               compression="snappy"))
    return Manifest(files=files, schema=SCHEMA, chunks=[Chunk(index=0)])


@dataclasses.dataclass
class Target:
    """Where the runs publish and how: each case's target, table and the arguments every task gets."""

    method: str
    table: str
    root: str
    partition: dict[str, str] | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def args(self, root: str | None = None) -> dict:
        return {"target_path": root or self.root, "partition": self.partition, **self.extra}


def run_to_the_table_step(target: Target, dag_run: DagRun, manifest: Manifest, root: str | None = None) -> dict:
    """transfer -> publish (held until finalized), as the group runs them; returns the publish's result."""
    args = target.args(root)
    delivered = dag_run.run(TransferOperator(task_id="deliver", method=target.method, manifest=manifest.to_dict(),
                                             **args))
    return dag_run.run(PublishOperator(task_id="publish", deliveries=[delivered], hold_until_finalized=True, **args))


def table_step(target: Target, manifest: Manifest, published: dict, root: str | None = None) -> TargetTableOperator:
    return TargetTableOperator(task_id="target_table", target_table=target.table, target_path=root or target.root,
                               manifests=[manifest.to_dict()], published=published, partition=target.partition,
                               target_impala_conn_id="impala_target", dialect="hive")


def finalize(target: Target, root: str | None = None, conn_id: str = "impala_target") -> FinalizePublishOperator:
    return FinalizePublishOperator(task_id="finalize", publish_task_id="publish", check_task_ids=["target_table"],
                                   target_table=target.table, target_impala_conn_id=conn_id, table_dialect="hive",
                                   **target.args(root))


def kept_run(hiveserver, target: Target, dag_run: DagRun, manifest: Manifest) -> str:
    """Run 1, kept: published, its table step done, finalized. Returns its final directory A,
    which the table (or partition) reads."""
    published = run_to_the_table_step(target, dag_run, manifest)
    dag_run.run(table_step(target, manifest, published))
    dag_run.run(finalize(target))
    assert same_location(location(hiveserver, target), published["final_dir"])
    return published["final_dir"]


def location(hiveserver, target: Target) -> str:
    """Where the server reads the table (or the target's partition) from."""
    sql = f"DESCRIBE FORMATTED {target.table}"
    if target.partition:
        sql += " PARTITION (" + ", ".join(f"{c}='{v}'" for c, v in target.partition.items()) + ")"
    return parse_describe_formatted(hiveserver.query(sql)).location


def exists(hadoop, uri: str) -> bool:
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://")).exists()
    try:
        hadoop.target.file_status(uri.removeprefix("hdfs://cluster2"))
        return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


@pytest.fixture
def connections(monkeypatch, hiveserver, local_hadoop, closed_port):
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_TARGET", hiveserver.airflow_connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_TARGET_WEBHDFS", local_hadoop.webhdfs_connection_json(local_hadoop.target))
    down = json.loads(hiveserver.airflow_connection_json()) | {"port": closed_port}
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_DOWN", json.dumps(down))


def test_a_plain_table_switched_by_a_killed_table_step_reads_its_previous_directory_after_the_finalize(
        hiveserver, hadoop_env, connections, monkeypatch, tmp_path):
    key = uuid.uuid4().hex[:8]
    target = Target(method="hdfs_put", table=f"default.restore_plain_{key}", root=f"hdfs://cluster2/tests/restore-{key}",
                    extra={"webhdfs_conn_id": "target_webhdfs"})
    hiveserver.execute(f"DROP TABLE IF EXISTS {target.table}")

    a = kept_run(hiveserver, target, DagRun("scheduled__2026-12-06"), extract(tmp_path / "run1", 1, 30))

    # Run 2's table step switches the table to B and is killed before anything else reaches the server.
    second, second_manifest = DagRun("scheduled__2026-12-07"), extract(tmp_path / "run2", 1000, 12)
    b = run_to_the_table_step(target, second, second_manifest)["final_dir"]
    with killed_after_the_switch(monkeypatch), pytest.raises(TaskKilled):
        second.run(table_step(target, second_manifest, second.xcoms[("publish", "return_value")]))
    assert same_location(location(hiveserver, target), b), "the kill left the table on B"

    # Its finalize rolls the run back (B goes back to staging) and switches the table back to A.
    with capture_logs() as logs, pytest.raises(AirflowFailException, match="the run failed at target_table: .*"
                                                                            f"switched {target.table} back"):
        second.run(finalize(target))
    assert not exists(hadoop_env, b), "the roll back moved B away"
    assert same_location(location(hiveserver, target), a)
    assert hiveserver.query(f"SELECT COUNT(*), MIN(id), MAX(id) FROM {target.table}") == [(30, 1, 30)]
    assert any(e["event"].startswith(f"switched {target.table} back from {b} to ") for e in logs)

    # The finalize again (a retry): the table already reads A and stays there.
    with pytest.raises(AirflowFailException, match="the run failed at target_table"):
        second.run(finalize(target))
    assert same_location(location(hiveserver, target), a)
    assert hiveserver.query(f"SELECT COUNT(*) FROM {target.table}") == [(30,)]


def test_a_partition_moved_by_a_killed_table_step_is_moved_back_and_a_finalize_that_cannot_reach_the_table_says_how(
        hiveserver, local_hadoop, connections, monkeypatch, tmp_path):
    key = uuid.uuid4().hex[:8]
    target = Target(method="fsspec", table=f"default.restore_part_{key}", root=f"file://{tmp_path}/old",
                    partition={"ds": "2026-12-07"})
    new_root = f"file://{tmp_path}/new"
    hiveserver.execute(f"DROP TABLE IF EXISTS {target.table}")

    a = kept_run(hiveserver, target, DagRun("scheduled__2026-12-07"), extract(tmp_path / "run1", 1, 8))

    # Run 2 publishes the same date under a new root; its table step moves the partition there, then dies.
    second, second_manifest = DagRun("manual__2026-12-07"), extract(tmp_path / "run2", 500, 5)
    b = run_to_the_table_step(target, second, second_manifest, root=new_root)["final_dir"]
    with killed_after_the_switch(monkeypatch), pytest.raises(TaskKilled):
        second.run(table_step(target, second_manifest, second.xcoms[("publish", "return_value")], root=new_root))
    assert same_location(location(hiveserver, target), b)

    # The finalize cannot reach the table: it says what to run by hand, and the verdict stays the run's.
    with capture_logs() as logs, pytest.raises(AirflowFailException, match="the run failed at target_table"):
        second.run(finalize(target, root=new_root, conn_id="impala_down"))
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert any(f"could not switch {target.table} partition ds=2026-12-07 back to " in w
               and f"(run it by hand: ALTER TABLE `default`.`restore_part_{key}` PARTITION (`ds`='2026-12-07') "
                   "SET LOCATION '" in w for w in warnings), warnings
    assert not exists(local_hadoop, b)

    # Its retry reaches it: the partition reads A again, with A's rows.
    with pytest.raises(AirflowFailException, match=f"switched {target.table} partition ds=2026-12-07 back"):
        second.run(finalize(target, root=new_root))
    assert same_location(location(hiveserver, target), a)
    assert hiveserver.query(f"SELECT ds, COUNT(*), MIN(id), MAX(id) FROM {target.table} GROUP BY ds") == [
        ("2026-12-07", 8, 1, 8)]
