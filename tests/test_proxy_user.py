"""Impersonation (issue 19 §2): ``proxy_user=`` in DAG code (``--proxy-user`` in the CLI) makes the
Hadoop clients act for that user (``HADOOP_PROXY_USER``), and the cluster decides whether the
workers' identity may: the local clusters let the client user impersonate ``etl-proxied`` only
(``hadoop.proxyuser.<user>.hosts/users``, tests/support/local_hdfs.py). A connection can no longer
set it (docs/errors.md ``hadoop-connection-proxy-user``)."""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_impala_transfer.core.errors import CommandFailed
from airflow_provider_impala_transfer.hooks.hadoop import HadoopCliHook
from tests.support.local_hdfs import PROXIED_USER

pytestmark = pytest.mark.server


def test_proxy_user_makes_the_hadoop_clients_act_for_that_user(hadoop_env):
    directory = f"/proxy-{uuid.uuid4().hex[:8]}"
    HadoopCliHook(proxy_user=PROXIED_USER).hdfs_shell(print).makedirs(f"hdfs://cluster2{directory}")
    status = hadoop_env.target.webhdfs("GET", directory, "GETFILESTATUS")["FileStatus"]
    assert status["owner"] == PROXIED_USER


def test_a_user_the_cluster_does_not_let_the_workers_impersonate_is_refused_by_the_namenode(hadoop_env):
    with pytest.raises(CommandFailed, match=r"is not allowed to impersonate hdfs"):
        HadoopCliHook(proxy_user="hdfs").hdfs_shell(print).makedirs(f"hdfs://cluster2/proxy-{uuid.uuid4().hex[:8]}")
