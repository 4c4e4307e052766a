"""Kerberized HDFS (issue 19 §1): the two local clusters in Hadoop secure mode, each in its own
realm with a cross-realm trust (tests/support/local_hdfs.py with ``kdc=``, the session's
``kerberized_hadoop``). Real parts only: the MIT KDC, the Hadoop 3.5.0 daemons, the generated
``hdfs``/``hadoop`` clients (real FsShell, real DistCp on the local job runner), WebHDFS with
SPNEGO through ``requests-kerberos`` and the ``hdfs`` package's ``KerberosClient`` (what the hdfs
provider uses). A user's ticket comes from ``kinit -kt`` of its keytab into a private FILE: cache
that ``KRB5CCNAME`` names; the clients find the realms' krb5.conf through ``KRB5_CONFIG``."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from requests_kerberos import OPTIONAL, HTTPKerberosAuth

from tests.support.local_hdfs import MiB, LocalHdfsCluster, crc32c
from tests.support.processes import free_port

pytestmark = pytest.mark.server


@dataclass
class Ticket:
    principal: str
    ccache: Path

    @property
    def short_name(self) -> str:
        return self.principal.split("@")[0]

    @property
    def env(self) -> dict[str, str]:
        return {"KRB5CCNAME": f"FILE:{self.ccache}"}


def ticket_for(kdc, directory: Path, realm: str | None = None) -> Ticket:
    """A new user principal of ``realm`` (default: the first), its keytab, its ticket in its own cache."""
    name = f"etl{uuid.uuid4().hex[:6]}"
    principal = kdc.add_principal(f"{name}@{realm or kdc.realm}", directory / f"{name}.keytab")
    kdc.kinit(principal, directory / f"{name}.keytab", directory / f"{name}.ccache")
    return Ticket(principal, directory / f"{name}.ccache")


@pytest.fixture
def ticket(kerberized_hadoop, kdc, tmp_path) -> Ticket:
    """A user of the first realm (IMPALA-TRANSFER.TEST) with its ticket (the clusters started first)."""
    return ticket_for(kdc, tmp_path)


def test_the_two_clusters_are_in_two_realms_that_trust_each_other(kerberized_hadoop, kdc):
    source, target = kerberized_hadoop.source.kerberos, kerberized_hadoop.target.kerberos
    assert (source.realm, source.principal("nn")) == (kdc.realm, f"nn/localhost@{kdc.realm}")
    assert target.realm == f"TARGET.{kdc.realm}" != source.realm
    assert target.principal("nn") == f"nn/cluster2.target.impala-transfer.test@{target.realm}"
    for database_realm in (source.realm, target.realm):
        listed = kdc.kadmin("listprincs", "krbtgt/*", realm=database_realm).split()
        assert {f"krbtgt/{target.realm}@{source.realm}", f"krbtgt/{source.realm}@{target.realm}"} <= set(listed)


def test_a_ticket_of_the_first_realm_gets_a_service_ticket_of_the_second_through_the_trust(
        kerberized_hadoop, kdc, ticket):
    target = kerberized_hadoop.target.kerberos
    kvno = subprocess.run(["kvno", target.principal("nn")], env={**os.environ, **kdc.env(ticket.ccache)},
                          capture_output=True, text=True, timeout=30, check=False)
    assert kvno.returncode == 0, kvno.stderr
    shown = subprocess.run(["klist"], env={**os.environ, **kdc.env(ticket.ccache)}, capture_output=True, text=True,
                           timeout=30, check=True).stdout
    assert f"krbtgt/{target.realm}@{kdc.realm}" in shown and target.principal("nn") in shown


def test_a_user_with_a_ticket_writes_and_reads_on_both_clusters_and_owns_the_files_by_short_name(
        kerberized_hadoop, ticket, tmp_path):
    local = tmp_path / "part-0.csv"
    local.write_text("id,name\n1,a\n")
    directories = [f"hdfs://{cluster}/tmp/{ticket.short_name}" for cluster in ("cluster1", "cluster2")]
    files = [f"{directory}/part-0.csv" for directory in directories]
    kerberized_hadoop.hdfs("dfs", "-mkdir", "-p", *directories, env=ticket.env, check=True)
    for uri in files:
        kerberized_hadoop.hdfs("dfs", "-put", str(local), uri, env=ticket.env, check=True)
    assert kerberized_hadoop.hdfs("dfs", "-cat", *files, env=ticket.env, check=True).stdout == "id,name\n1,a\n" * 2
    # Each NameNode maps user@REALM to its short name (hadoop.security.auth_to_local).
    owners = kerberized_hadoop.hdfs("dfs", "-stat", "%u", *files, env=ticket.env, check=True).stdout.split()
    assert owners == [ticket.short_name] * 2


def test_a_user_of_the_target_realm_is_known_by_its_short_name_on_the_source_cluster_too(
        kerberized_hadoop, kdc, tmp_path):
    target_user = ticket_for(kdc, tmp_path, realm=kerberized_hadoop.target.kerberos.realm)
    assert target_user.principal.endswith("@TARGET.IMPALA-TRANSFER.TEST")
    directory = f"hdfs://cluster1/tmp/{target_user.short_name}"
    kerberized_hadoop.hdfs("dfs", "-mkdir", directory, env=target_user.env, check=True)
    assert kerberized_hadoop.hdfs("dfs", "-stat", "%u", directory, env=target_user.env,
                                  check=True).stdout.strip() == target_user.short_name


def test_without_a_ticket_every_call_is_refused_within_seconds_and_a_user_name_is_no_identity(
        kerberized_hadoop, tmp_path):
    no_ticket = {"KRB5CCNAME": f"FILE:{tmp_path / 'no-such-cache'}"}
    for cluster in ("cluster1", "cluster2"):
        started = time.monotonic()
        result = kerberized_hadoop.hdfs("dfs", "-ls", f"hdfs://{cluster}/", env=no_ticket)
        elapsed = time.monotonic() - started
        assert result.returncode == 1
        assert "Client cannot authenticate via:[TOKEN, KERBEROS]" in result.stderr
        assert elapsed < 15, f"{cluster}: {elapsed:.1f}s"
    # HADOOP_USER_NAME names the user only under simple authentication: here it changes nothing.
    as_superuser = kerberized_hadoop.hdfs("dfs", "-ls", "hdfs://cluster1/",
                                          env={**no_ticket, "HADOOP_USER_NAME": "hdfs"})
    assert as_superuser.returncode == 1 and "Client cannot authenticate" in as_superuser.stderr


def test_the_superusers_ticket_administers_both_clusters_and_a_users_ticket_does_not(kerberized_hadoop, ticket):
    directory = f"/tmp/{ticket.short_name}-quota"
    kerberized_hadoop.hdfs("dfs", "-mkdir", f"hdfs://cluster2{directory}", env=ticket.env, check=True)
    # hdfs@IMPALA-TRANSFER.TEST is "hdfs", cluster2's superuser, across the trust (auth_to_local).
    kerberized_hadoop.hdfs("dfsadmin", "-fs", "hdfs://cluster2", "-setQuota", "100", directory, superuser=True,
                           check=True)
    refused = kerberized_hadoop.hdfs("dfsadmin", "-fs", "hdfs://cluster2", "-clrQuota", directory, env=ticket.env)
    assert refused.returncode != 0
    assert f"Access denied for user {ticket.short_name}. Superuser privilege is required" in refused.stderr


def test_the_clients_read_the_krb5_conf_that_krb5_config_names(kerberized_hadoop, kdc, ticket, tmp_path):
    elsewhere = tmp_path / "krb5.conf"  # the same realms, their KDC on a port where nothing listens
    elsewhere.write_text(kdc.krb5_conf.read_text().replace(f":{kdc.port}", f":{free_port()}"))
    started = time.monotonic()
    result = kerberized_hadoop.hdfs("dfs", "-ls", "hdfs://cluster1/",
                                    env={**ticket.env, "KRB5_CONFIG": str(elsewhere)})
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    # The ticket-granting ticket is in the cache, but the service ticket needs the KDC:
    assert "GSS initiate failed [Caused by GSSException: No valid credentials provided (Mechanism level: " \
           "Connection refused)]" in result.stderr
    assert elapsed < 15, f"{elapsed:.1f}s"  # one SASL retry (ipc.client.connect.max.retries.on.sasl=1)
    assert kerberized_hadoop.hdfs("dfs", "-ls", "hdfs://cluster1/", env=ticket.env).returncode == 0


def test_distcp_copies_across_the_realms_with_the_users_ticket_and_the_crcs_match(
        kerberized_hadoop, ticket, tmp_path):
    data = os.urandom(2 * MiB + 123_457)  # three 1 MiB blocks on cluster1, two 2 MiB blocks on cluster2
    local = tmp_path / "chunk-0.bin"
    local.write_bytes(data)
    source = f"hdfs://cluster1/tmp/{ticket.short_name}/chunk-0.bin"
    target = f"hdfs://cluster2/tmp/{ticket.short_name}/copy/chunk-0.bin"  # a new path: the copy is named so
    kerberized_hadoop.hdfs("dfs", "-mkdir", "-p", source.rsplit("/", 1)[0], env=ticket.env, check=True)
    kerberized_hadoop.hdfs("dfs", "-Ddfs.blocksize=1048576", "-put", str(local), source, env=ticket.env,
                           check=True)
    copied = kerberized_hadoop.hadoop("distcp", "-Ddfs.checksum.combine.mode=COMPOSITE_CRC", source, target,
                                      env=ticket.env, timeout=180)
    # With Kerberos, DistCp asks for delegation tokens of both clusters naming the ResourceManager's
    # principal as renewer (TokenCache -> Master.getMasterPrincipal -> YarnClientUtils.getRmPrincipal,
    # even on the local job runner): a client without hadoop-yarn-client cannot run distcp at all.
    assert "NoClassDefFoundError: org/apache/hadoop/yarn/client/util/YarnClientUtils" not in copied.stderr, (
        "the Hadoop client lacks hadoop-yarn-client-3.5.0.jar: tests/support/hadoop/pom.xml must fetch it")
    assert copied.returncode == 0, copied.stderr[-3000:]
    assert "Files Copied=1" in copied.stderr

    sums = kerberized_hadoop.hdfs("dfs", "-Ddfs.checksum.combine.mode=COMPOSITE_CRC", "-checksum", source, target,
                                  env=ticket.env, check=True).stdout.splitlines()
    assert [line.split("\t")[1:] for line in sums] == [["COMPOSITE-CRC32C", f"{crc32c(data):08x}"]] * 2
    assert kerberized_hadoop.hdfs("dfs", "-stat", "%u %b", target, env=ticket.env, check=True).stdout.split() \
        == [ticket.short_name, str(len(data))]


def spnego(cluster: LocalHdfsCluster) -> HTTPKerberosAuth:
    """SPNEGO for ``HTTP/<the cluster's service host>``: the URL says 127.0.0.1, the principal's host
    (and through krb5.conf's [domain_realm], its realm) is the cluster's."""
    return HTTPKerberosAuth(mutual_authentication=OPTIONAL, hostname_override=cluster.kerberos.host)


@pytest.mark.parametrize("name", ["cluster1", "cluster2"])
def test_webhdfs_answers_a_spnego_request_with_a_ticket_and_401_without(
        kerberized_hadoop, kdc, ticket, tmp_path, monkeypatch, name):
    cluster = kerberized_hadoop[name]
    url = f"http://{cluster.webhdfs_address}/webhdfs/v1/tmp?op=GETFILESTATUS"
    monkeypatch.setenv("KRB5_CONFIG", str(kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-such-cache'}")
    assert requests.get(url, timeout=30).status_code == 401  # no Authorization header
    assert requests.get(url, auth=spnego(cluster), timeout=30).status_code == 401  # no ticket to offer
    assert requests.get(f"{url}&user.name=hdfs", timeout=30).status_code == 401  # simple auth is off

    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ticket.ccache}")
    answer = requests.get(url, auth=spnego(cluster), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["FileStatus"]["permission"] == "1777"


def test_the_hdfs_packages_kerberos_client_writes_and_reads_through_webhdfs_across_the_realm(
        kerberized_hadoop, kdc, ticket, monkeypatch):
    from hdfs.ext.kerberos import KerberosClient

    monkeypatch.setenv("KRB5_CONFIG", str(kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ticket.ccache}")
    target = kerberized_hadoop.target
    client = KerberosClient(f"http://{target.webhdfs_address}", hostname_override=target.kerberos.host)
    path = f"/tmp/{ticket.short_name}/webhdfs.txt"
    client.write(path, data=b"through SPNEGO\n", overwrite=True)  # the DataNode step uses a delegation token
    with client.read(path) as reader:
        assert reader.read() == b"through SPNEGO\n"
    assert client.status(path)["owner"] == ticket.short_name
