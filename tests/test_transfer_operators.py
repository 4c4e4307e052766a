"""Operators and hooks of the transfer step: bad input fails when the DAG is parsed, connections
become method settings without secrets on any command line, and the task group's shape."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from airflow.sdk import DAG

from airflow_provider_impala_transfer import get_provider_info
from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
from airflow_provider_impala_transfer.core.errors import CommandFailed, ConfigError
from airflow_provider_impala_transfer.hooks.fsspec import FsspecHook
from airflow_provider_impala_transfer.hooks.hadoop import CONNECTION_ENV, HadoopCliHook
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
    # one route per run, before the plan; every method is its direct child, so the scheduler reads its skips
    route = tasks["g.route"]
    assert route.upstream_task_ids == set() and route.inherits_from_skipmixin
    assert {t.task_id for t in route.downstream_list} == {
        "g.plan", "g.deliver.distcp", "g.deliver.hdfs_put", "g.deliver.hdfs_cp", "g.deliver.scp", "g.deliver.fsspec"}
    assert tasks["g.deliver.hdfs_put"].upstream_task_ids == {"g.extract", "g.route", "g.deliver.distcp"}
    assert tasks["g.deliver.scp"].trigger_rule == "all_done"
    assert tasks["g.deliver.distcp"].trigger_rule == "all_success"
    assert tasks["g.deliver.delivered"].trigger_rule == "all_done"
    assert tasks["g.deliver.scp"].skip_if_delivered_by == ["g.deliver.distcp", "g.deliver.hdfs_put", "g.deliver.hdfs_cp"]
    # a method that delivered has the scheduler skip the later ones of its chunk
    assert tasks["g.deliver.distcp"].later_methods == ["g.deliver.hdfs_put", "g.deliver.hdfs_cp", "g.deliver.scp"]
    assert tasks["g.deliver.scp"].later_methods == tasks["g.deliver.fsspec"].later_methods == []
    # counts are checked before anything is replaced; the finalize leaf decides the run's state
    assert tasks["g.reconcile"].upstream_task_ids == {"g.extract", "g.deliver.delivered"}
    assert tasks["g.publish"].upstream_task_ids == {"g.deliver.delivered", "g.reconcile"}
    assert tasks["g.finalize"].upstream_task_ids == {"g.publish", "g.target_table"}
    assert tasks["g.finalize"].trigger_rule == "all_done" and tasks["g.finalize"].check_task_ids == ["g.target_table"]
    assert [t.task_id for t in dag.tasks if not t.downstream_list] == ["g.finalize"]


def test_scp_hook_reads_an_ssh_connection_and_refuses_passwords(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_EDGE", json.dumps({
        "conn_type": "ssh", "host": "edge.example.com", "port": 2222, "login": "etl",
        "extra": {"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
                  "host_key": "ssh-ed25519 AAAAC3Nza", "target_path": "/data/in", "bandwidth_kbit": "4000"}}))
    with ScpHook("edge") as hook:
        target = hook.target()
        assert (target.host, target.port, target.user, target.remote_path) == ("edge.example.com", 2222, "etl", "/data/in")
        argv = target.scp_argv(["/x"], "/data/in")
        assert "-----BEGIN" not in " ".join(argv)  # the key travels as a 0600 file, never as an argument
        with open(target.key_file) as key:
            assert key.read().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        with open(target.known_hosts) as known:
            assert known.read() == "[edge.example.com]:2222 ssh-ed25519 AAAAC3Nza\n"
        assert {oct(os.stat(p).st_mode & 0o777) for p in (target.key_file, target.known_hosts)} == {"0o600"}
        assert oct(os.stat(hook.private_dir).st_mode & 0o777) == "0o700"
    assert not os.path.exists(target.key_file) and not os.path.exists(os.path.dirname(target.key_file))
    monkeypatch.setenv("AIRFLOW_CONN_PW", json.dumps({"conn_type": "ssh", "host": "h", "login": "u", "password": "s3cret"}))
    with pytest.raises(ConfigError, match="ssh_conn_id: connection 'pw' has a password and no key"):
        ScpHook("pw").target(remote_path="/x")


def test_fsspec_hook_builds_the_filesystem_from_connection_extras(monkeypatch, s3):
    s3.create_bucket("hooked")
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", s3.airflow_connection_json())
    destination = FsspecHook("lake").destination("s3://hooked/events")
    destination.makedirs("hooked/events")
    destination.fs.pipe("hooked/events/probe", b"x")
    assert destination.fs.cat("hooked/events/probe") == b"x"
    with pytest.raises(ConfigError, match="target_path: 'gs://b/x' is gs:// but connection 'lake' is for s3://"):
        FsspecHook("lake").destination("gs://b/x")


def ssh_connection(monkeypatch, conn_id: str, **extra) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "ssh", "host": "edge.example.com", "login": "etl", "extra": {"target_path": "/data/in", **extra}}))
    return conn_id


def test_ssh_connection_extras_mean_what_they_mean_to_the_ssh_provider(monkeypatch):
    def option(target, name):
        argv = target.ssh_argv("true")
        return next(o.split("=", 1)[1] for o in argv if o.startswith(f"{name}="))

    with ScpHook(ssh_connection(monkeypatch, "plain")) as hook:
        assert option(hook.target(), "StrictHostKeyChecking") == "yes"  # unset: checked (SSHHook: not checked)
        assert option(hook.target(), "ConnectTimeout") == "20"
    with ScpHook(ssh_connection(monkeypatch, "tofu", no_host_key_check="true", conn_timeout="7")) as hook:
        target = hook.target()
        assert option(target, "StrictHostKeyChecking") == "accept-new"  # never "no"
        assert option(target, "ConnectTimeout") == "7"
    with ScpHook(ssh_connection(monkeypatch, "pinned", no_host_key_check=False, host_key="ssh-ed25519 AAAAC3Nza",
                                connect_timeout=7, conn_timeout=7)) as hook:
        assert option(hook.target(), "StrictHostKeyChecking") == "yes"

    refused = {
        "private_key_passphrase": (dict(private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE "
                                        "KEY-----", private_key_passphrase="pass phrase"),
                                   r"^private_key_passphrase: is set in connection 'refused', but OpenSSH's scp reads a "
                                   r"passphrase only from a terminal.*\(use an unencrypted deploy key.*ssh-agent.*"
                                   r"SSH_AUTH_SOCK"),
        "host_key with no_host_key_check": (dict(host_key="ssh-ed25519 AAAA", no_host_key_check="true"),
                                            r"^no_host_key_check: is true although host_key is given"),
        "both keys": (dict(key_file="/k", private_key="x"), r"^private_key: .* has both key_file and private_key"),
        "contradiction": (dict(no_host_key_check="true", strict_host_key_checking="yes"),
                          r"^strict_host_key_checking: 'yes' contradicts no_host_key_check \('accept-new'\)"),
        "StrictHostKeyChecking=no": (dict(strict_host_key_checking="no"), r"^strict_host_key_checking: 'no' is not allowed"),
        "allow_host_key_change": (dict(allow_host_key_change="true"), r"^allow_host_key_change: is true"),
        "two timeouts": (dict(conn_timeout=5, connect_timeout=9), r"^conn_timeout: 5 differs from connect_timeout 9"),
        "host_key lines": (dict(host_key="ssh-ed25519 AAAA\n* ssh-ed25519 BBBB"), r"^host_key: is not one public key"),
    }
    for case, (extra, message) in refused.items():
        with ScpHook(ssh_connection(monkeypatch, "refused", **extra)) as hook:
            with pytest.raises(ConfigError, match=message):
                hook.target()
            assert hook.private_dir is None, case  # refused before any key was written


# --- hadoop_cli connections: the environment, never the program -----------------------------------

def recording_tool(directory: Path, name: str) -> tuple[str, Path]:
    """An executable that writes its arguments and environment to a file and fails."""
    record = directory / f"{name}.ran"
    tool = directory / name
    tool.write_text(f"#!/bin/sh\n{{ echo \"argv=$*\"; env; }} > '{record}'\necho 'refused on purpose' >&2\nexit 1\n")
    tool.chmod(0o755)
    return str(tool), record


def hadoop_connection(monkeypatch, conn_id: str, extra: dict) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "hadoop_cli", "extra": extra}))
    return conn_id


def hdfs_put(tmp_path: Path, **arguments) -> TransferOperator:
    extract = tmp_path / "extract" / "chunk-00000-part-00000.parquet"
    extract.parent.mkdir(exist_ok=True)
    extract.write_bytes(b"x")
    manifest = Manifest(files=[FileEntry(path=f"file://{extract}", rows=1, bytes=1, sha256=hashlib.sha256(b"x").hexdigest(),
                                         chunk=0, part=0)], schema=pa.schema([("x", pa.int64())]), chunks=[Chunk(index=0)])
    return TransferOperator(task_id="put", method="hdfs_put", manifest=manifest.to_dict(),
                            target_path=f"file://{tmp_path / 'target'}", **arguments)


CONTEXT = {"run_id": "manual__2026-11-24", "ti": SimpleNamespace(dag_id="d", try_number=1, map_index=-1,
                                                                 xcom_pull=lambda **k: None, xcom_push=lambda **k: None)}


def test_a_hadoop_cli_connection_cannot_choose_the_program_or_load_code(monkeypatch, tmp_path):
    tool, ran = recording_tool(tmp_path, "evil-hdfs")
    for name in ("hdfs_bin", "hadoop_bin"):
        conn_id = hadoop_connection(monkeypatch, "hadoop_edit", {name: tool})
        with pytest.raises(ConfigError, match=rf"^{name}: is set in the extras of connection 'hadoop_edit', but a "
                                              rf"connection cannot choose the program a worker runs \(pass {name}="):
            hdfs_put(tmp_path, hadoop_conn_id=conn_id).execute(CONTEXT)
    for variable in ("LD_PRELOAD", "PATH", "JAVA_HOME", "HADOOP_CLIENT_OPTS", "HADOOP_OPTS", "CLASSPATH"):
        conn_id = hadoop_connection(monkeypatch, "hadoop_env_edit",
                                    {"env": {"HADOOP_CONF_DIR": str(tmp_path), variable: str(tmp_path / "x")}})
        with pytest.raises(ConfigError, match=rf"^env: {variable} in the env extra of connection 'hadoop_env_edit' is "
                                              rf"not allowed: a connection may set only HADOOP_CONF_DIR, "
                                              rf"HADOOP_USER_NAME, .*LC_ALL \(set other variables with the operator "
                                              rf"argument hadoop_env="):
            hdfs_put(tmp_path, hadoop_conn_id=conn_id, hdfs_bin=tool).execute(CONTEXT)
    assert not ran.exists()  # refused before anything ran
    assert HadoopCliHook(hadoop_connection(monkeypatch, "ui_form", {"hdfs_bin": "", "hadoop_bin": None, "env": None})) \
        .hdfs_bin == "hdfs"  # a UI form's empty fields are not settings


def test_dag_code_and_the_airflow_config_choose_the_hadoop_clients_and_any_environment(monkeypatch, tmp_path):
    tool, ran = recording_tool(tmp_path, "hdfs-from-dag")
    allowed = {name: f"value-of-{name}" for name in CONNECTION_ENV}
    conn_id = hadoop_connection(monkeypatch, "hadoop_ok", {"env": allowed})
    operator = hdfs_put(tmp_path, hadoop_conn_id=conn_id, hdfs_bin=tool,
                        hadoop_env={"HADOOP_CLIENT_OPTS": "-Xmx1g", "JAVA_HOME": "/opt/jdk", "TZ": "UTC"})
    with pytest.raises(CommandFailed, match="refused on purpose"):
        operator.execute(CONTEXT)
    env = dict(line.split("=", 1) for line in ran.read_text().splitlines()[1:] if "=" in line)
    assert ran.read_text().startswith("argv=dfs -mkdir -p file://")
    assert env["HADOOP_CLIENT_OPTS"] == "-Xmx1g" and env["JAVA_HOME"] == "/opt/jdk"  # DAG code: any variable
    assert env["TZ"] == "UTC" and env["HADOOP_CONF_DIR"] == "value-of-HADOOP_CONF_DIR"  # the DAG's value wins

    config_tool, config_ran = recording_tool(tmp_path, "hdfs-from-config")
    monkeypatch.setenv("AIRFLOW__IMPALA_TRANSFER__HDFS_BIN", config_tool)
    monkeypatch.setenv("AIRFLOW__IMPALA_TRANSFER__HADOOP_BIN", "/opt/hadoop/bin/hadoop")
    hook = HadoopCliHook(conn_id)
    assert (hook.hdfs_bin, hook.hadoop_bin) == (config_tool, "/opt/hadoop/bin/hadoop")
    assert HadoopCliHook(conn_id, hdfs_bin="/dag/hdfs").hdfs_bin == "/dag/hdfs"  # the task's argument first
    with pytest.raises(CommandFailed, match="refused on purpose"):
        hdfs_put(tmp_path, hadoop_conn_id=conn_id).execute(CONTEXT)
    assert config_ran.exists()

    [hadoop_cli] = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "hadoop_cli"]
    # a keytab login (a path, no key), and where the distcp job queues, how big it is, where its RM answers
    assert set(hadoop_cli["conn-fields"]) == {"env", "principal", "keytab", "yarn_queue", "distcp_conf", "yarn_rm_url"}
    assert all(name in hadoop_cli["conn-fields"]["env"]["description"] for name in CONNECTION_ENV)
    assert set(get_provider_info()["config"]["impala_transfer"]["options"]) == {"hadoop_bin", "hdfs_bin",
                                                                                "default_deferrable"}


@pytest.mark.parametrize(("argument", "message"), [
    ({"chunk_size": 0}, "chunk_size: 0 is not > 0 (give a whole number > 0)"),
    ({"output_format": "orc"}, "output_format: 'orc'"),
    ({"split_by": "id; DROP TABLE x"}, "split_by: "),
    ({"partition": {"ds": "2024/01"}}, "partition: "),
    ({"use_distcp": "maybe"}, "use_distcp: "),
    ({"command_timeout": -5}, "command_timeout: -5 is not a number of seconds > 0"),
])
def test_a_literal_bad_argument_fails_when_the_dag_is_parsed(argument, message):
    args = dict(target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1", **argument)
    with pytest.raises(ConfigError, match=re.escape(message)):
        with DAG("parse_time", schedule=None):
            impala_transfer_group("g", **args)


def test_every_operator_argument_reaches_a_step_through_default_args_and_step_kwargs():
    from datetime import timedelta
    with DAG("steps", schedule=None) as dag:
        impala_transfer_group(
            "g", target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1", target_table="db.t",
            max_active_chunks=3, default_args={"owner": "etl", "retries": 4, "queue": "default"},
            step_kwargs={"extract": {"pool": "impala", "execution_timeout": timedelta(hours=2)},
                         "transfer": {"queue": "hadoop_edge"}, "fsspec": {"queue": "default"},
                         "publish": {"retries": 0, "priority_weight": 10}})
    tasks = dag.task_dict
    assert {t.owner for t in tasks.values()} == {"etl"}  # the group's default_args reach every task
    assert tasks["g.extract"].pool == "impala" and tasks["g.extract"].execution_timeout == timedelta(hours=2)
    assert {tasks[f"g.deliver.{m}"].queue for m in ("distcp", "hdfs_put", "hdfs_cp", "scp")} == {"hadoop_edge"}
    assert tasks["g.deliver.fsspec"].queue == tasks["g.plan"].queue == "default"  # one method over all of them
    # retries: default_args' where a retry can help, step_kwargs' over both; none for the methods (the next
    # method is the retry); the group gives the plan and the reconcile none (a syntax error stays one)
    assert tasks["g.extract"].retries == tasks["g.finalize"].retries == 4 and tasks["g.publish"].retries == 0
    assert tasks["g.plan"].retries == tasks["g.reconcile"].retries == 4  # from default_args, not from the group
    assert tasks["g.deliver.distcp"].retries == 0 and tasks["g.publish"].priority_weight == 10
    # bounded fan-out: at most max_active_chunks chunks extract, and take each method, at once
    assert tasks["g.extract"].max_active_tis_per_dagrun == tasks["g.deliver.hdfs_put"].max_active_tis_per_dagrun == 3
    with DAG("retries", schedule=None) as plain:
        impala_transfer_group("g", target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1")
    assert plain.task_dict["g.extract"].retries == plain.task_dict["g.publish"].retries == 1
    assert plain.task_dict["g.plan"].retries == plain.task_dict["g.reconcile"].retries == 0
    with pytest.raises(ConfigError, match=r"^step_kwargs\['extract'\]: colour: not an argument of Airflow's BaseOperator"):
        with DAG("bad_step", schedule=None):
            impala_transfer_group("g", target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1",
                                  step_kwargs={"extract": {"colour": "red"}})
    with pytest.raises(ConfigError, match=r"^step_kwargs\['plan'\]: is not a dict of operator arguments"):
        with DAG("bad_step_value", schedule=None):
            impala_transfer_group("g", target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1",
                                  step_kwargs={"plan": "impala"})


def test_the_plan_reads_how_many_mapped_tasks_airflow_expands(monkeypatch):
    from airflow_provider_impala_transfer.operators.impala_extract import ImpalaChunkPlanOperator
    plan = ImpalaChunkPlanOperator(task_id="plan", sql="SELECT 1", split_by="id")
    assert plan.build_spec().max_chunks == 1024  # Airflow's default [core] max_map_length
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    assert plan.build_spec().max_chunks == 3


def test_server_mode_replaces_plan_and_extract_by_one_export_task():
    with DAG("server_shape", schedule=None) as dag:
        impala_transfer_group("g", target_path="hdfs://nn2/x", output_path="/tmp/x", sql="SELECT 1",
                              extract_mode="server", source_hdfs_path="hdfs://nn1/staging",
                              source_webhdfs_conn_id="nn1_webhdfs", target_table="db.t")
    tasks = dag.task_dict
    assert "g.plan" not in tasks and "g.extract" not in tasks
    assert tasks["g.export"].upstream_task_ids == {"g.route"}
    assert tasks["g.finalize"].export_task_id == "g.export"
    with pytest.raises(ConfigError, match="extract_mode: 'server' needs source_hdfs_path"):
        with DAG("server_incomplete", schedule=None):
            impala_transfer_group("g", target_path="hdfs://nn2/x", output_path="/tmp/x", sql="SELECT 1",
                                  extract_mode="server")


def test_two_groups_publishing_one_literal_directory_are_refused_when_the_dag_is_parsed():
    common = dict(output_path="/tmp/x", sql="SELECT 1")
    with DAG("two_groups_literal", schedule=None):
        impala_transfer_group("orders", target_path="hdfs://nn:8020/data/x/", partition={"ds": "2026-12-07"}, **common)
        impala_transfer_group("by_day", target_path="hdfs://nn:8020/data/x", partition={"ds": "2026-12-08"}, **common)
        impala_transfer_group("by_template", target_path="{{ params.target }}", **common)  # checked in the run
        with pytest.raises(ConfigError, match=r"^target_path: the task groups 'orders' and 'refunds' of DAG "
                                              r"'two_groups_literal' both publish hdfs://nn:8020/data/x \(ds=2026-12-07\), "
                                              r"so in each run one would replace the other's files \(give each group its "
                                              r"own target_path or partition\)$"):
            impala_transfer_group("refunds", target_path="/data/x", target_cluster="nn:8020",
                                  partition={"ds": "2026-12-07"}, **common)
