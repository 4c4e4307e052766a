"""distcp as a real MapReduce job on the session's YARN (tests/support/local_yarn.py): named, queued,
killed with its client or task, and deferred while it copies.

Each test sends its jobs to YARN through the YARN client configuration (``HADOOP_CONF_DIR`` =
``local_yarn.conf_dir``), as a worker whose Hadoop configuration says
``mapreduce.framework.name=yarn`` does; what YARN did is read from the ResourceManager's REST API,
never from what the client believes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_impala_transfer.core.errors import TransferError
from airflow_provider_impala_transfer.core.transfer.distcp import DistcpOptions
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets
from tests.conftest import repo_root
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.processes import wait_for
from tests.test_transfer_methods import make_chunk, unique_dir

pytestmark = [pytest.mark.slow, pytest.mark.server]


def distcp_method(local_yarn, target: str, log=lambda message: None, **options):
    """The method a task builds, with a worker's YARN client configuration."""
    targets = TransferTargets(hdfs_root=target, source_hdfs_path=source_of(target),
                              hadoop_env={"HADOOP_CONF_DIR": str(local_yarn.conf_dir)},
                              distcp=DistcpOptions(**options), command_timeout=300)
    return targets.method("distcp", targets.runner(log=log))


def source_of(target: str) -> str:
    """Where distcp stages a test's local chunk files: cluster1, beside nothing else."""
    return target.replace("hdfs://cluster2/", "hdfs://cluster1/", 1) + "-staging"


def our_apps(local_yarn, name: str) -> list[dict]:
    """The applications of a job called ``name`` (DistCp calls it ``distcp: <name>``)."""
    return [app for app in local_yarn.apps() if app["name"] == f"distcp: {name}"]


def test_a_chunks_distcp_runs_on_yarn_under_its_name_in_the_users_queue(local_yarn, hadoop_env, tmp_path):
    """The job is an application of the ResourceManager, named after the run and chunk, in the queue
    asked for; the method returns the job's counters and the files arrive; the staged copies on
    the source cluster are gone."""
    target = unique_dir("yarn")
    manifest = make_chunk(tmp_path / "extract", chunk=2, parts=2)
    logged: list[str] = []
    method = distcp_method(local_yarn, target, logged.append, yarn_queue="default", maps=2)
    run = Run("yarn_named", dag_id="sales")
    counters = method.deliver(manifest.files, run, overwrite=False)
    (app,) = our_apps(local_yarn, "impala-transfer:sales:yarn_named:chunk-00002")
    assert (app["state"], app["finalStatus"], app["queue"]) == ("FINISHED", "SUCCEEDED", "root.default")
    assert counters["Bytes Copied"] == sum(f.bytes for f in manifest.files)
    assert any(app["id"] in line for line in logged)  # the task log names the application
    staged = method.source_staging_dir(run, manifest.files)
    assert hadoop_env.hdfs("dfs", "-test", "-e", staged).returncode == 1


def test_a_job_the_queue_refuses_fails_the_method_with_the_rms_reason(local_yarn, hadoop_env, tmp_path):
    """Queue ACLs and unknown queues refuse a job when it is submitted: the method fails with the
    ResourceManager's reason in the first line (the fallback chain's summary and the grid show it).
    Hadoop 3.5.0's client prints it as ``java.io.IOException: ...YarnException: Failed to submit
    application_... to YARN : Application application_... submitted by user rootApplication
    application_... submitted by user root to unknown queue: nope`` (the RM repeats its first words)."""
    target = unique_dir("yarn-queue")
    manifest = make_chunk(tmp_path / "extract", parts=1, size=1000)
    method = distcp_method(local_yarn, target, yarn_queue="nope")
    with pytest.raises(TransferError) as failed:
        method.deliver(manifest.files, Run("yarn_refused"), overwrite=False)
    assert re.fullmatch(r"distcp: YARN refused application_\d+_\d+: Application application_\d+_\d+ submitted by "
                        r"user \S+ to unknown queue: nope", str(failed.value).splitlines()[0]), str(failed.value)


def stop_mid_copy(yarn, method, run: Run, manifest, name: str, hdfs) -> dict:
    """Deliver in a thread, stop the method's runner (what ``on_kill`` does) once the job copies;
    return the application as the RM then says. Asserts the method failed, the RM said KILLED within
    10 s, and nothing changed in the target directory afterwards."""
    failure: list[BaseException] = []

    def deliver():
        try:
            method.deliver(manifest.files, run, overwrite=False)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            failure.append(exc)

    thread = threading.Thread(target=deliver)
    thread.start()
    try:
        wait_for(lambda: any(a["state"] == "RUNNING" and a["progress"] > 0 for a in our_apps(yarn, name)), 120,
                 "the job copying")
        time.sleep(2)
        stopped = time.monotonic()
        method.runner.stop()
        thread.join(60)
        (app,) = our_apps(yarn, name)
        assert app["state"] == "KILLED", app
        assert time.monotonic() - stopped < 10
    finally:
        method.runner.stop()
        thread.join(60)
    assert failure, "the method returned as if it had delivered"
    listing = hdfs("dfs", "-ls", "-R", method.target_dir(run)).stdout
    time.sleep(3)
    assert hdfs("dfs", "-ls", "-R", method.target_dir(run)).stdout == listing
    return app


def test_a_stopped_distcp_client_kills_its_yarn_job_before_the_method_returns(local_yarn, hadoop_env, tmp_path):
    """What ``on_kill`` does (``runner.stop()``) while the job copies at 1 MB/s: the client's
    process group is stopped, then the application, which the ResourceManager reports KILLED within
    10 s; nothing changes in the target directory afterwards."""
    target = unique_dir("yarn-kill")
    manifest = make_chunk(tmp_path / "extract", parts=1, size=24 << 20)
    method = distcp_method(local_yarn, target, maps=1, bandwidth_mb=1)
    stop_mid_copy(local_yarn, method, Run("yarn_killed", dag_id="kill"), manifest,
                  "impala-transfer:kill:yarn_killed:chunk-00000", hadoop_env.hdfs)


def test_on_kerberized_yarn_a_stopped_client_kills_its_job_with_the_users_ticket(kerberized_yarn, kdc, tmp_path):
    """The same on the Kerberized stack: the job runs as the user's principal, and the kill goes to
    the SPNEGO-protected RM with the ticket the task's Hadoop clients were given (its KRB5CCNAME),
    not with this process's own."""
    hadoop = kerberized_yarn.hadoop
    principal = kdc.add_principal("etl-kill", tmp_path / "etl-kill.keytab")
    kdc.kinit(principal, tmp_path / "etl-kill.keytab", tmp_path / "etl-kill.ccache")
    ticket = {"KRB5CCNAME": f"FILE:{tmp_path / 'etl-kill.ccache'}", "KRB5_CONFIG": str(kdc.krb5_conf)}
    target = f"hdfs://cluster2/tmp/yarn-kill-{tmp_path.name}"
    targets = TransferTargets(hdfs_root=target, source_hdfs_path=f"hdfs://cluster1/tmp/yarn-kill-{tmp_path.name}",
                              hadoop_bin=str(hadoop.bin_dir / "hadoop"), hdfs_bin=str(hadoop.bin_dir / "hdfs"),
                              hadoop_env={"HADOOP_CONF_DIR": str(kerberized_yarn.conf_dir), **ticket},
                              distcp=DistcpOptions(maps=1, bandwidth_mb=1), command_timeout=300)
    method = targets.method("distcp", targets.runner())
    manifest = make_chunk(tmp_path / "extract", parts=1, size=24 << 20)
    app = stop_mid_copy(kerberized_yarn, method, Run("yarn_killed_kerberos", dag_id="kill"), manifest,
                        "impala-transfer:kill:yarn_killed_kerberos:chunk-00000",
                        lambda *args: hadoop.hdfs(*args, env=ticket))
    assert app["user"] == "etl-kill"
    assert "KRB5CCNAME" not in os.environ or os.environ["KRB5CCNAME"] != ticket["KRB5CCNAME"]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, local_yarn, local_hadoop):
    home = tmp_path_factory.mktemp("airflow-yarn")
    env = {**os.environ, **local_yarn.env()}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"))
    (home / "dags").mkdir()
    (home / "dags" / "long_distcp.py").symlink_to(repo_root() / "tests" / "dags" / "long_distcp.py")
    airflow(env, "db", "migrate")
    return {"env": env, "home": home}


def test_sigterm_to_a_distcp_task_kills_its_yarn_job_and_hdfs_put_then_delivers(airflow_home, local_yarn,
                                                                                  hadoop_env, tmp_path):
    """Airflow stops a task with SIGTERM (SIGKILL 5 s later); its handler calls ``on_kill``. The
    job is KILLED within 10 s of the signal, nothing in the run's staging directory changes after,
    and the chain's next method, hdfs put, delivers the chunk into that directory."""
    manifest = make_chunk(tmp_path / "extract", parts=1, size=24 << 20)
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest.to_dict()))
    target = unique_dir("yarn-sigterm")
    env = dict(airflow_home["env"], IMPALA_TRANSFER_TEST_MANIFEST=str(manifest_file), IMPALA_TRANSFER_TARGET=target,
               IMPALA_TRANSFER_SOURCE_HDFS_PATH=source_of(target))
    cli = str(Path(sys.executable).with_name("airflow"))
    log_path = tmp_path / "distcp.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([cli, "tasks", "test", "long_distcp", "distcp", "2026-01-05"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def copying():
            return [a for a in local_yarn.apps() if a["name"].startswith("distcp: impala-transfer:long_distcp:")
                    and a["state"] == "RUNNING" and a["progress"] > 0]
        (app,) = wait_for(copying, 180, "the task's job copying")
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        killed = local_yarn.wait_app(app["id"], timeout=10)
        assert killed["state"] == "KILLED", killed
        assert time.monotonic() - signalled < 10
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log_text = log_path.read_text()
    assert "new_state=failed" in log_text, log_text[-3000:]  # `airflow tasks test` itself exits 0
    assert f"killing YARN application {app['id']}" in log_text, log_text[-3000:]
    staging = f"{target}/_impala_transfer_staging"
    listing = hadoop_env.hdfs("dfs", "-ls", "-R", staging).stdout
    time.sleep(3)
    assert hadoop_env.hdfs("dfs", "-ls", "-R", staging).stdout == listing
    put = airflow(env, "tasks", "test", "long_distcp", "hdfs_put", "2026-01-05", check=False)
    assert put.returncode == 0, (put.stdout + put.stderr)[-3000:]
    delivered = hadoop_env.hdfs("dfs", "-ls", "-R", staging).stdout
    assert manifest.files[0].name in delivered and ".distcp.tmp" not in delivered
