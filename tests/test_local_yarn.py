"""Specifications of the real Hadoop 3.5.0 YARN of the test bed (tests/support/local_yarn.py).

A ResourceManager, a NodeManager and the MapReduce JobHistory server on the session's two HDFS
clusters (the ``local_yarn`` fixture, started only for the tests that ask for it). ``local_hadoop``'s
own client configuration keeps DistCp on the local job runner; ``local_yarn.conf_dir`` is a second
client configuration, used with the SAME generated ``hadoop``/``yarn`` executables, that submits
DistCp's MapReduce job to YARN. One finished job (``yarn_copy``) serves several assertions: a job
costs ~20 s on 2 cores (AM and map JVMs), where the local runner takes ~2 s.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.support.local_hdfs import MiB
from tests.support.local_yarn import LocalYarn

COUNTER = re.compile(r"^\s+(?P<name>[A-Za-z][\w ]*?)=(?P<value>\d+)$", re.MULTILINE)
SUBMITTED = re.compile(r"INFO impl\.YarnClientImpl: Submitted application (application_\d+_\d+)$", re.MULTILINE)
RUNNING = re.compile(r"INFO mapreduce\.Job: Running job: (job_\d+_\d+)$", re.MULTILINE)
JOB_ID = re.compile(r"INFO tools\.DistCp: DistCp job-id: (job_\d+_\d+)$", re.MULTILINE)
FILES = {"/yarn/src/one.bin": os.urandom(3 * MiB), "/yarn/src/two.bin": os.urandom(2 * MiB)}


def counters(output: str) -> dict[str, int]:
    return {m["name"]: int(m["value"]) for m in COUNTER.finditer(output)}


@pytest.fixture(scope="module")
def yarn_copy(local_yarn: LocalYarn):
    """``hadoop distcp -update -pb -f hdfs://cluster1/yarn/listing hdfs://cluster2/yarn/dst`` with the
    YARN client configuration: (the finished process, its application id, its job id). ``-pb``: the
    files have cluster1's 1 MiB blocks, the client writes 2 MiB ones (see local_hdfs.py, (b))."""
    source = local_yarn.hadoop.source
    for path, data in FILES.items():
        source.put_bytes(path, data)
    source.put_bytes("/yarn/listing", "".join(f"hdfs://cluster1{p}\n" for p in FILES).encode())
    result = local_yarn.distcp("-update", "-pb", "-f", "hdfs://cluster1/yarn/listing", "hdfs://cluster2/yarn/dst")
    assert result.returncode == 0, f"{result.stderr[-4000:]}\n{local_yarn.log_tail()}"
    return result, SUBMITTED.search(result.stderr)[1], RUNNING.search(result.stderr)[1]


def test_distcp_runs_as_a_mapreduce_job_on_yarn_and_prints_its_counters(local_yarn, yarn_copy):
    result, app_id, job_id = yarn_copy

    assert app_id.removeprefix("application_") == job_id.removeprefix("job_")  # one id, two names
    assert "job_local" not in result.stderr
    assert "DistCp Counters" in result.stderr
    assert counters(result.stderr)["Files Copied"] == 2
    assert counters(result.stderr)["Bytes Copied"] == sum(map(len, FILES.values()))
    assert counters(result.stderr)["Launched map tasks"] == 2  # one map per file, each its container
    app = local_yarn.app(app_id)
    assert (app["state"], app["finalStatus"], app["progress"]) == ("FINISHED", "SUCCEEDED", 100.0)
    assert (app["name"], app["applicationType"], app["queue"]) == ("distcp", "MAPREDUCE", "root.default")
    assert app["startedTime"] <= app["launchTime"] <= app["finishedTime"]
    for path, data in FILES.items():
        assert local_yarn.hadoop.target.read_bytes(path.replace("/src/", "/dst/")) == data


def test_the_jobhistory_server_serves_a_finished_jobs_counters(local_yarn, yarn_copy):
    _, _, job_id = yarn_copy

    job = local_yarn.job(job_id)
    counter_groups = local_yarn.job_counters(job_id)

    assert (job["state"], job["mapsTotal"], job["mapsCompleted"]) == ("SUCCEEDED", 2, 2)
    # The group the client prints as "DistCp Counters" is the enum's class name over REST.
    distcp = counter_groups["org.apache.hadoop.tools.mapred.CopyMapper$Counter"]
    assert distcp["COPY"] == 2
    assert distcp["BYTESCOPIED"] == distcp["BYTESEXPECTED"] == sum(map(len, FILES.values()))
    assert counter_groups["org.apache.hadoop.mapreduce.JobCounter"]["TOTAL_LAUNCHED_MAPS"] == 2
    tasks = local_yarn.job_tasks(job_id)
    assert [(t["type"], t["state"]) for t in tasks] == [("MAP", "SUCCEEDED")] * 2


def test_yarn_application_kill_stops_a_running_distcp_job(local_yarn):
    local_yarn.hadoop.source.put_bytes("/yarn/slow/big.bin", os.urandom(16 * MiB))

    started = time.monotonic()
    submitted = local_yarn.distcp("-async", "-bandwidth", "1", "hdfs://cluster1/yarn/slow/big.bin",
                                  "hdfs://cluster2/yarn/slow-copy")  # 1 MB/s: ~16 s of copying
    submit_seconds = time.monotonic() - started

    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert submit_seconds < 30  # returns once submitted, not when the job ends
    app_id = SUBMITTED.search(submitted.stderr)[1]
    assert JOB_ID.search(submitted.stderr)[1] == app_id.replace("application_", "job_")
    assert "Running job" not in submitted.stderr  # -async: no progress monitoring
    running = wait_for_a_running_map(local_yarn, app_id)

    killed = local_yarn.yarn("application", "-kill", app_id)
    started = time.monotonic()

    assert killed.returncode == 0, killed.stderr[-3000:]
    assert killed.stdout == f"Killing application {app_id}\n"
    app = local_yarn.wait_app(app_id, states=("KILLED", "FINISHED", "FAILED"), timeout=10)
    assert time.monotonic() - started < 10
    assert (app["state"], app["finalStatus"]) == ("KILLED", "KILLED"), (running, app)
    assert app["diagnostics"] == f"Application {app_id} was killed by user {local_yarn.hadoop.user} at 127.0.0.1"
    status = local_yarn.yarn("application", "-status", app_id, check=True)
    assert "\tState : KILLED\n" in status.stdout and "\tFinal-State : KILLED\n" in status.stdout
    with pytest.raises(urllib.error.HTTPError) as missing:
        local_yarn.hadoop.target.file_status("/yarn/slow-copy")  # killed before its rename into place
    assert missing.value.code == 404


def wait_for_a_running_map(local_yarn: LocalYarn, app_id: str, timeout: float = 90.0) -> dict:
    """The RM's record once the application runs its AM and a map container (bounded)."""
    deadline = time.monotonic() + timeout
    app: dict = {}
    while time.monotonic() < deadline:
        app = local_yarn.app(app_id)
        if app["state"] == "RUNNING" and app.get("runningContainers", 0) >= 2:
            return app
        assert app["state"] in ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"), app
        time.sleep(0.3)
    raise AssertionError(f"{app_id}: no map running within {timeout:.0f}s: {app}\n{local_yarn.log_tail()}")


def test_only_hadoop_and_yarn_take_the_yarn_jars_and_hadoop_only_with_a_yarn_configuration(local_hadoop,
                                                                                             local_yarn):
    yarn_dir = str(local_yarn.conf_dir)
    plain = local_hadoop.hadoop("classpath", check=True).stdout
    on_yarn = local_hadoop.hadoop("classpath", check=True, env={"HADOOP_CONF_DIR": yarn_dir}).stdout
    yarn_cli = local_hadoop.run("yarn", "classpath", check=True, env={"HADOOP_CONF_DIR": yarn_dir}).stdout

    assert "/.hadoop/yarn/" not in plain
    assert "hadoop-mapreduce-client-jobclient" in on_yarn and "hadoop-mapreduce-client-jobclient" in yarn_cli
    assert on_yarn.startswith(plain.rsplit(":", 1)[0])  # lib's jars first, unchanged: the class archive applies
    assert "/.hadoop/yarn/" not in (local_hadoop.bin_dir / "hdfs").read_text()


def test_on_kerberized_yarn_distcp_copies_across_the_realms_as_the_users_principal(kerberized_yarn, kdc,
                                                                                     tmp_path):
    hadoop = kerberized_yarn.hadoop
    principal = kdc.add_principal("etl-yarn", tmp_path / "etl-yarn.keytab")
    kdc.kinit(principal, tmp_path / "etl-yarn.keytab", tmp_path / "etl-yarn.ccache")
    ticket = {"KRB5CCNAME": f"FILE:{tmp_path / 'etl-yarn.ccache'}"}
    local = tmp_path / "part-0.bin"
    local.write_bytes(os.urandom(3 * MiB))
    hadoop.hdfs("dfs", "-mkdir", "-p", "hdfs://cluster1/tmp/etl-yarn", env=ticket, check=True)
    hadoop.hdfs("dfs", "-put", str(local), "hdfs://cluster1/tmp/etl-yarn/part-0.bin", env=ticket, check=True)

    copied = kerberized_yarn.distcp("-pb", "hdfs://cluster1/tmp/etl-yarn/part-0.bin",
                                    "hdfs://cluster2/tmp/etl-yarn-copy.bin", env=ticket)

    assert copied.returncode == 0, f"{copied.stderr[-4000:]}\n{kerberized_yarn.log_tail()}"
    # Delegation tokens of both clusters (cluster2 is in the other realm), renewer: the RM's short name.
    for cluster in ("cluster1", "cluster2"):
        assert re.search(rf"Kind: HDFS_DELEGATION_TOKEN, Service: ha-hdfs:{cluster}, Ident: \(token for etl-yarn: "
                         rf"HDFS_DELEGATION_TOKEN owner=etl-yarn@{kdc.realm}, renewer=rm,", copied.stderr)
    app = kerberized_yarn.app(SUBMITTED.search(copied.stderr)[1])  # through SPNEGO
    assert (app["user"], app["state"], app["finalStatus"]) == ("etl-yarn", "FINISHED", "SUCCEEDED")
    assert counters(copied.stderr)["Bytes Copied"] == 3 * MiB
    owner = hadoop.hdfs("dfs", "-stat", "%u", "hdfs://cluster2/tmp/etl-yarn-copy.bin", env=ticket, check=True)
    assert owner.stdout.strip() == "etl-yarn"
    with pytest.raises(urllib.error.HTTPError) as refused:  # no SPNEGO: the RM's REST API refuses
        urllib.request.urlopen(f"{kerberized_yarn.rm_web_url}/ws/v1/cluster/apps/{app['id']}", timeout=10)
    assert refused.value.code == 401
