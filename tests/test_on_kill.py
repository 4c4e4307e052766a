"""A killed task's query stops on the server.

Airflow kills a task by SIGTERM (then SIGKILL 5 s later), and its handler calls the operator's
``on_kill``. Without a cancel the query runs on: Impala keeps a dead client's query until the
session times out, and the Spark Thrift Server (the local server) finishes a running job even
after its client is gone. What the server does is read from Spark's own REST API (running jobs),
not from anything the client believes.

The server here is one of this module's own with its web UI on 127.0.0.1 (the session's
``hiveserver`` runs without it); the query needs no table: a cross join of two ranges, no row in
its result, minutes of work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_impala_transfer.core.common.connection import RunningQueries, SourceConnector, run_server_call
from airflow_provider_impala_transfer.core.errors import SourceError
from tests.conftest import repo_root
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.local_hiveserver import LocalHiveServer
from tests.support.processes import descendants_running, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.server]

CROSS_JOIN_COUNT = "SELECT COUNT(*) FROM range(200000) a CROSS JOIN range(200000) b"  # minutes of work


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalHiveServer(workdir=tmp_path_factory.mktemp("hs2-ui"), port=free_port(), ui_port=free_port(),
                         driver_memory="1g") as started:
        yield started


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, server):
    home = tmp_path_factory.mktemp("airflow-kill")
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"), IMPALA_TRANSFER_OUTPUT_DIR=str(home / "out"),
               AIRFLOW_CONN_IMPALA_DEFAULT=server.airflow_connection_json())
    (home / "dags").mkdir()
    for dag in ("long_query.py", "long_reconcile.py"):
        (home / "dags" / dag).symlink_to(repo_root() / "tests" / "dags" / dag)
    airflow(env, "db", "migrate")
    return {"env": env, "home": home}


@pytest.mark.parametrize("dag, task", [("long_query", "extract"), ("long_query", "plan"),
                                       ("long_reconcile", "reconcile")])
def test_sigterm_to_a_running_task_cancels_its_query_on_the_server(airflow_home, server, dag, task):
    """extract: the job runs inside the fetches of a finished statement (Spark's incremental
    collect), which only closing the operation stops; plan: the MIN/MAX/COUNT statement is still
    executing; reconcile: so is the source's COUNT(*). Either way the server's job ends within
    seconds of the signal, while the task process is still alive, and the task fails saying why."""
    assert server.running_jobs() == []
    log_path = airflow_home["home"] / f"{task}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "tasks", "test", dag, task],
                                env=airflow_home["env"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(server.running_jobs, 120, "the query's Spark job started", interval=0.2)
        time.sleep(1)  # mid-way
        proc.send_signal(signal.SIGTERM)  # what Airflow's supervisor sends a task it kills
        signalled = time.monotonic()
        wait_for(lambda: server.running_jobs() == [], 15, "the server's job ended", interval=0.2)
        stopped_after = time.monotonic() - signalled
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log_path.read_text()
    assert stopped_after < 5, output[-3000:]  # before Airflow's SIGKILL would have come
    assert "cancelled the running query on 127.0.0.1:" in output
    assert f"the query on 127.0.0.1:{server.port} was cancelled because the task was stopped" in output
    assert "new_state=failed" in output


def test_a_cancel_from_another_thread_stops_the_query_and_no_new_one_starts(server):
    """``on_kill`` may also come from another thread; the session then fails, and the same task's
    next session is refused instead of starting a new query."""
    running = RunningQueries()
    kwargs = server.connect_kwargs()
    connector = SourceConnector(host=kwargs.pop("host"), port=kwargs.pop("port"), options=kwargs, running=running)
    cancelled: list[int] = []
    said: list[str] = []

    def kill_when_running():
        wait_for(server.running_jobs, 60, "the query's Spark job started", interval=0.2)
        cancelled.append(running.cancel(log=said.append))

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    started = time.monotonic()
    with pytest.raises(SourceError, match="was cancelled because the task was stopped"):
        with connector.session() as cursor:
            run_server_call(connector, "the cross join", lambda: cursor.execute(CROSS_JOIN_COUNT))
            cursor.fetchall()
    killer.join()
    assert cancelled == [1] and time.monotonic() - started < 60, said
    wait_for(lambda: server.running_jobs() == [], 10, "the server's job ended", interval=0.2)
    with pytest.raises(SourceError, match="no new query on .*: the task was stopped"):
        with connector.session():
            pass


def test_on_kill_of_the_extract_also_stops_the_hadoop_command_staging_its_chunk(tmp_path):
    """The extract's own child (``hdfs dfs -put`` of its chunk) stops with its process group: a
    killed task leaves no tool running."""
    import psutil

    from airflow_provider_impala_transfer.core.errors import TransferError
    from airflow_provider_impala_transfer.operators.impala_extract import ImpalaExtractOperator

    stalling = tmp_path / "hdfs"
    stalling.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(300)\n")
    stalling.chmod(0o755)
    operator = ImpalaExtractOperator(task_id="extract", sql="SELECT 1", output_path="hdfs://cluster1/x")
    shell = operator.hdfs_shell(None, str(stalling))
    failed: list[BaseException] = []

    def put():
        try:
            shell.run(shell.argv("-put", "-f", "file:///nonexistent", "hdfs://cluster1/x/"))
        except TransferError as exc:
            failed.append(exc)

    runner = threading.Thread(target=put)
    runner.start()
    tool = wait_for(lambda: descendants_running(str(stalling)), 30, "the stalling hdfs started", interval=0.1)[0]
    operator.on_kill()
    runner.join(timeout=15)
    assert not runner.is_alive() and failed
    _, still_running = psutil.wait_procs([tool], timeout=5)
    assert not still_running
