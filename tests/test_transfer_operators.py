"""Operators and hooks of the transfer step: bad input fails when the DAG is parsed, connections
become method settings without secrets on any command line, and the task group's shape."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import DAG

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.hooks.fsspec import FsspecHook
from airflow_provider_impala_transfer.hooks.scp import ScpHook
from airflow_provider_impala_transfer.operators.target_table import TargetTableOperator
from airflow_provider_impala_transfer.operators.transfer import TransferOperator
from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group


def test_unknown_method_and_bad_options_fail_at_parse_time():
    with pytest.raises(ConfigError, match="method: 'ftp' is not a transfer method"):
        TransferOperator(task_id="t", method="ftp", manifest={}, target_path="hdfs://nn/x")
    with pytest.raises(ConfigError, match="verify: 'md5'"):
        TransferOperator(task_id="t", method="hdfs_put", manifest={}, target_path="hdfs://nn/x", verify="md5")
    with pytest.raises(ConfigError, match="distcp_maps"):
        TransferOperator(task_id="t", method="distcp", manifest={}, target_path="hdfs://nn/x", distcp_maps=0)
    with pytest.raises(ConfigError, match="target_table"):
        TargetTableOperator(task_id="t", target_table="db.t; DROP TABLE x", target_path="hdfs://nn/x",
                            manifests=[], published={})
    with DAG("parse_errors", schedule=None):
        with pytest.raises(ConfigError, match="use_distcp: is false but method is 'distcp'"):
            impala_transfer_group(target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1",
                                  method="distcp", use_distcp=False)
        with pytest.raises(ConfigError, match="scp_port: unknown argument"):
            impala_transfer_group(target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1", scp_port=22)


def test_group_wires_the_chain_inside_the_mapped_group():
    with DAG("shape", schedule=None) as dag:
        impala_transfer_group("g", target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1",
                              target_table="db.t", partition={"ds": "{{ ds }}"})
    tasks = dag.task_dict
    route = tasks["g.deliver.route"]
    assert {t.task_id for t in route.downstream_list} == {
        "g.deliver.distcp", "g.deliver.hdfs_put", "g.deliver.hdfs_cp", "g.deliver.scp", "g.deliver.fsspec"}
    assert tasks["g.deliver.hdfs_put"].upstream_task_ids == {"g.extract", "g.deliver.route", "g.deliver.distcp"}
    assert tasks["g.deliver.scp"].trigger_rule == "all_done"
    assert tasks["g.deliver.distcp"].trigger_rule == "all_success"
    assert tasks["g.deliver.delivered"].trigger_rule == "all_done"
    assert tasks["g.deliver.scp"].skip_if_delivered_by == ["g.deliver.distcp", "g.deliver.hdfs_put", "g.deliver.hdfs_cp"]
    assert "g.deliver.delivered" in tasks["g.publish"].upstream_task_ids
    assert [t.task_id for t in tasks["g.reconcile"].upstream_list if t.task_id == "g.target_table"]
    assert not tasks["g.reconcile"].downstream_list  # the leaf decides the run's state


def test_scp_hook_reads_an_ssh_connection_and_refuses_passwords(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_EDGE", json.dumps({
        "conn_type": "ssh", "host": "edge.example.com", "port": 2222, "login": "etl",
        "extra": {"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
                  "host_key": "ssh-ed25519 AAAAC3Nza", "target_path": "/data/in", "bandwidth_kbit": "4000"}}))
    hook = ScpHook("edge")
    target = hook.target()
    try:
        assert (target.host, target.port, target.user, target.remote_path) == ("edge.example.com", 2222, "etl", "/data/in")
        argv = target.scp_argv(["/x"], "/data/in")
        assert "-----BEGIN" not in " ".join(argv)  # the key travels as a 0600 file, never as an argument
        with open(target.key_file) as key:
            assert key.read().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        with open(target.known_hosts) as known:
            assert known.read() == "[edge.example.com]:2222 ssh-ed25519 AAAAC3Nza\n"
    finally:
        hook.close()
    monkeypatch.setenv("AIRFLOW_CONN_PW", json.dumps({"conn_type": "ssh", "host": "h", "login": "u", "password": "s3cret"}))
    with pytest.raises(ConfigError, match="ssh_conn_id: connection 'pw' has a password and no key"):
        ScpHook("pw").target(remote_path="/x")


def test_fsspec_hook_builds_the_filesystem_from_connection_extras(monkeypatch, s3):
    s3.create_bucket("hooked")
    options = s3.storage_options()
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({
        "conn_type": "fsspec", "login": options["key"], "password": options["secret"],
        "extra": {"protocol": "s3", "client_kwargs": options["client_kwargs"]}}))
    destination = FsspecHook("lake").destination("s3://hooked/events")
    destination.makedirs("hooked/events")
    destination.fs.pipe("hooked/events/probe", b"x")
    assert destination.fs.cat("hooked/events/probe") == b"x"
    with pytest.raises(ConfigError, match="target_path: 'gs://b/x' is gs:// but connection 'lake' is for s3://"):
        FsspecHook("lake").destination("gs://b/x")
