"""The example DAG on the Kerberized stack (issue 19 §4), the Airflow way: ``[core] security =
kerberos`` and Airflow's own ticket renewer (``airflow kerberos``) keep one ticket cache fresh, and
every part of the run authenticates with it: the GSSAPI sessions to the Kerberos-only Spark Thrift
Server (whose warehouse is on the Kerberized cluster1), ``hdfs dfs`` and ``hadoop distcp`` from
cluster1 (realm IMPALA-TRANSFER.TEST) to cluster2 (realm TARGET.IMPALA-TRANSFER.TEST, trusted both
ways), the CRC32C checks, the publish and the target table.

The workers' principal gets tickets of 40 seconds, shorter than the run: it can only succeed if the
renewer renews the cache while the run goes on (a task whose ticket expired fails saying so:
docs/errors.md ``gssapi-ticket-expired``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import EVENTS_ROWS, TICKET_LIFETIME, repo_root
from tests.support.airflow_runs import latest_run
from tests.support.airflow_runs import run_airflow as airflow
from tests.support.processes import stop_process_group, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.server]

DAG_ID = "impala_transfer_example"


def test_the_example_dag_under_airflows_ticket_renewer_delivers_by_distcp_across_the_realms(
        kerberized_events, kerberized_hadoop, kdc, tmp_path):
    """Client mode, then the same date again in server mode (the engine exports on cluster1 as
    ``hive``; the workers' principal reads, delivers and removes it through the export root's
    default ACL, its listing and footers over WebHDFS with SPNEGO): the rerun replaces the partition."""
    server, hadoop = kerberized_events, kerberized_hadoop
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / f"{DAG_ID}.py").symlink_to(repo_root() / "dags_examples" / f"{DAG_ID}.py")
    name = f"airflow{uuid.uuid4().hex[:6]}"
    keytab = tmp_path / "airflow.keytab"
    principal = kdc.add_principal(name, keytab, max_life=TICKET_LIFETIME)
    ccache = tmp_path / "airflow.ccache"
    impala = json.dumps({"conn_type": "impala_transfer", "host": "localhost", "port": server.port,
                         "extra": {"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive"}})
    target = f"hdfs://cluster2/dags/kerberos-{uuid.uuid4().hex[:8]}"
    staging = hadoop.export_root(f"hdfs://cluster1/dag-staging/{uuid.uuid4().hex[:8]}", name)
    source_webhdfs = json.dumps({"conn_type": "webhdfs", "host": "localhost",  # the host of HTTP/localhost
                                 "port": int(hadoop.source.webhdfs_address.split(":")[1])})
    env = {**os.environ, **hadoop.env(), **kdc.env()}
    env.pop("KRB5CCNAME", None)  # Airflow sets it from [kerberos] ccache
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__SECURITY="kerberos",
        AIRFLOW__KERBEROS__PRINCIPAL=principal,
        AIRFLOW__KERBEROS__KEYTAB=str(keytab),
        AIRFLOW__KERBEROS__CCACHE=str(ccache),
        AIRFLOW__KERBEROS__REINIT_FREQUENCY="10",
        AIRFLOW__KERBEROS__INCLUDE_IP="False",
        AIRFLOW_CONN_IMPALA_DEFAULT=impala,
        AIRFLOW_CONN_IMPALA_TARGET=impala,
        IMPALA_TRANSFER_OUTPUT_DIR="",  # the chunks go through cluster1, staged by the extract
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=staging,
        AIRFLOW_CONN_SOURCE_WEBHDFS=source_webhdfs,
        IMPALA_TRANSFER_SOURCE_WEBHDFS_CONN_ID="source_webhdfs",
        IMPALA_TRANSFER_EXPORT_DIALECT="hive",
        IMPALA_TRANSFER_WEBHDFS_CONN_ID="",
        IMPALA_TRANSFER_SSH_CONN_ID="",
        IMPALA_TRANSFER_TABLE_DIALECT="hive",
        IMPALA_TRANSFER_TARGET_TABLE="default.events_kerberized",
        IMPALA_TRANSFER_MAX_WORKERS="2",
    )
    airflow(env, "db", "migrate")
    renewer_log = tmp_path / "renewer.log"
    with open(renewer_log, "wb") as log:
        renewer = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "kerberos"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for(lambda: ccache.exists() or renewer.poll() is not None, 60, "the renewer's first ticket", 0.2)
        assert renewer.poll() is None, renewer_log.read_text()[-3000:]
        started = time.monotonic()
        conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": 5000,
                "extract_mode": "client", "method": "distcp", "target_path": target}
        result = airflow(env, "dags", "test", DAG_ID, "2026-05-01", "-c", json.dumps(conf), check=False)
        took = time.monotonic() - started
        rerun = airflow(env, "dags", "test", DAG_ID, "2026-05-01", "-c",
                        json.dumps({**conf, "extract_mode": "server"}), check=False)
    finally:
        stop_process_group(renewer.pid, 10)
    output = result.stdout + result.stderr
    run_state, states = latest_run(home / "airflow.db", DAG_ID)
    assert run_state == "success", output[-5000:]
    assert [states[("events.deliver.distcp", i)] for i in range(4)] == ["success"] * 4
    assert "counts: source 20,000, files 20,000, delivered 20,000, published 20,000, target_table 20,000" in output
    assert len(re.findall(r"verified hdfs://cluster2/.*?\.parquet: [\d,]+ bytes, crc32c [0-9a-f]{8}", output)) >= 4
    # The run outlived its first ticket: the renewer's fresh ones carried it.
    renewals = renewer_log.read_text().count("Re-initialising kerberos from keytab")
    assert took > TICKET_LIFETIME and renewals >= 2, (took, renewals)
    # Written on cluster2 as the workers' principal (its short name, through the cross-realm trust)
    published = f"{target}/ds=2026-05-01"
    owners = hadoop.hdfs("dfs", "-stat", "%u", f"{published}/*", superuser=True, check=True).stdout.split()
    assert owners and set(owners) == {name}
    assert server.query("SELECT COUNT(*) FROM default.events_kerberized") == [(EVENTS_ROWS,)]

    output = rerun.stdout + rerun.stderr
    run_state, states = latest_run(home / "airflow.db", DAG_ID)
    assert run_state == "success", output[-5000:]
    assert states[("events.export", -1)] == "success" and states[("events.plan", -1)] == "skipped", states
    assert "counts: source 20,000, files 20,000, delivered 20,000, published 20,000, target_table 20,000" in output
    assert set(hadoop.hdfs("dfs", "-stat", "%u", f"{published}/*", superuser=True, check=True).stdout.split()) == {name}
    assert server.query("SELECT COUNT(*) FROM default.events_kerberized") == [(EVENTS_ROWS,)]  # replaced, not added
    assert hadoop.hdfs("dfs", "-ls", f"{staging}/_impala_transfer_export", superuser=True,
                       check=True).stdout.strip() == ""  # the engine's export removed by the workers' principal
