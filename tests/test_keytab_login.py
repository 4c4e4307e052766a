"""Tickets from a keytab (issue 19 §2): a connection's (or the CLI's) ``principal`` + ``keytab`` make
the task ``kinit -kt`` into a private ticket cache that its Impala session and Hadoop clients use,
kept fresh while the task runs and removed when it ends. Against real parts: an MIT KDC
(tests/support/local_kdc.py) and a Spark Thrift Server that accepts only GSSAPI sessions.

Every test starts with a ``KRB5CCNAME`` that names no cache: a session that works got its ticket
from the keytab, not from anything the test process had."""

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

from airflow_provider_impala_transfer.core.common import kerberos
from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.common.kerberos import KerberosError, KeytabLogin, TicketCache
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.hooks.hadoop import HadoopCliHook
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook

pytestmark = pytest.mark.server

SCRIPT = str(Path(sys.executable).parent / "impala-transfer")


@pytest.fixture
def no_ticket(kdc, tmp_path, monkeypatch) -> Path:
    """The realm's krb5.conf, and a KRB5CCNAME that names a cache nobody made; private temp dir."""
    for name, value in kdc.env(tmp_path / "no-such-cache").items():
        monkeypatch.setenv(name, value)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr("tempfile.tempdir", None)  # mkdtemp reads TMPDIR again
    yield temp
    kerberos.close_tickets()


@pytest.fixture
def etl(kdc, tmp_path) -> KeytabLogin:
    """A user principal and its keytab (0600)."""
    keytab = tmp_path / "etl.keytab"
    principal = kdc.add_principal(f"etl{uuid.uuid4().hex[:6]}", keytab)
    return KeytabLogin(principal, str(keytab))


def private_caches(temp: Path) -> list[Path]:
    return sorted(temp.glob("impala-transfer-krb5-*"))


def test_a_connection_with_a_keytab_opens_its_session_as_that_principal_and_the_ticket_goes_with_the_task(
        kerberized_hiveserver, no_ticket, etl, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_KEYTAB", json.dumps({
        "conn_type": "impala_transfer", "host": "localhost", "port": kerberized_hiveserver.port,
        "extra": {"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive",
                  "principal": etl.principal, "keytab": etl.keytab}}))
    connector = ImpalaTransferHook(impala_conn_id="impala_keytab").connector()

    @kerberos.closes_tickets
    def execute():  # as an operator's execute
        with connector.session() as cursor:
            cursor.execute("SELECT current_user()")
            user = cursor.fetchall()
        (cache,) = private_caches(no_ticket)
        assert oct(cache.stat().st_mode & 0o777) == "0o700"
        return user

    assert execute() == [(etl.principal.split("@")[0],)]
    assert private_caches(no_ticket) == []  # removed when the task ended
    assert os.environ["KRB5CCNAME"].endswith("no-such-cache")  # the process's own setting is back


def test_the_hadoop_clients_of_a_connection_with_a_keytab_act_as_its_principal(no_ticket, etl, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HADOOP_KEYTAB", json.dumps({
        "conn_type": "hadoop_cli", "extra": {"principal": etl.principal, "keytab": etl.keytab}}))
    hook = HadoopCliHook("hadoop_keytab")
    klist = subprocess.run(["klist"], env={**os.environ, **hook.env}, capture_output=True, text=True, check=True)
    assert f"Default principal: {etl.principal}" in klist.stdout
    assert "no-such-cache" not in hook.env["KRB5CCNAME"]
    kerberos.close_tickets()
    assert private_caches(no_ticket) == []


def test_the_test_buttons_say_who_each_connection_is(kerberized_hiveserver, hadoop_env, no_ticket, etl,
                                                     monkeypatch):
    extras = {"principal": etl.principal, "keytab": etl.keytab}
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_KEYTAB", json.dumps({
        "conn_type": "impala_transfer", "host": "localhost", "port": kerberized_hiveserver.port,
        "extra": {"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive", **extras}}))
    monkeypatch.setenv("AIRFLOW_CONN_HADOOP_KEYTAB", json.dumps({"conn_type": "hadoop_cli", "extra": extras}))
    ok, message = ImpalaTransferHook(impala_conn_id="impala_keytab").test_connection()
    assert ok, message
    assert re.fullmatch(rf"localhost:\d+ answered SELECT 1 \(auth GSSAPI, as {etl.principal}, ticket until .+\)",
                        message)
    ok, message = HadoopCliHook("hadoop_keytab").test_connection()
    assert ok, message
    assert re.fullmatch(rf"hdfs dfs reached the default filesystem, as {etl.principal}, ticket until .+", message)
    assert private_caches(no_ticket) == []


def test_the_cli_with_principal_and_keytab_delivers_by_distcp_across_the_realms_and_leaves_no_ticket(
        kerberized_hiveserver, kerberized_hadoop, no_ticket, etl, tmp_path, monkeypatch):
    """Its own ticket for everything the run does: the GSSAPI session, hdfs dfs, DistCp from the
    Kerberized cluster1 to cluster2 (the other realm), the checks, the publish, the table step."""
    for name, value in kerberized_hadoop.env().items():
        monkeypatch.setenv(name, value)
    key = uuid.uuid4().hex[:8]
    target = f"hdfs://cluster2/cli-kerberos/{key}"
    common = ["--source-host", "localhost", "--source-port", str(kerberized_hiveserver.port),
              "--auth-mechanism", "GSSAPI", "--kerberos-service-name", "hive",
              "--principal", etl.principal, "--keytab", etl.keytab, "--target-hdfs-path", target,
              "--source-hdfs-path", f"hdfs://cluster1/cli-kerberos-staging/{key}"]
    env = {**os.environ, "TMPDIR": str(no_ticket)}
    checked = subprocess.run([SCRIPT, *common, "--query", "SELECT 1", "--test-connection"],
                             env=env, capture_output=True, text=True, timeout=180)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"kerberos: {etl.principal}, ticket until " in checked.stdout
    table = f"default.cli_kerberos_{key}"
    result = subprocess.run([SCRIPT, *common, "--query", "SELECT id FROM range(300)", "--split-by", "id",
                             "--chunk-size", "150", "--method", "distcp", "--target-table", table,
                             "--table-dialect", "hive", "--run-id", "k1", "--temp-dir", str(tmp_path / "work")],
                            env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "counts: source 300, files 300, delivered 300, published 300, target_table 300" in result.stdout
    published = f"{target}/{table.split('.')[1]}/k1"
    owners = kerberized_hadoop.hdfs("dfs", "-stat", "%u", f"{published}/*", superuser=True, check=True).stdout
    assert set(owners.split()) == {etl.principal.split("@")[0]}  # written as the keytab's principal
    assert private_caches(no_ticket) == []


def test_the_cli_server_mode_reads_and_removes_what_the_engine_wrote_as_its_own_user(
        kerberized_hiveserver, kerberized_hadoop, no_ticket, etl, tmp_path, monkeypatch):
    """``--extract-mode server`` on the Kerberized stack: the engine writes the export as its own user
    (``hive``, as Impala writes as ``impala``); the run, as the keytab's principal, groups, delivers and
    finally removes those files through the default ACL an administrator put on source_hdfs_path
    (README, Kerberos)."""
    for name, value in kerberized_hadoop.env().items():
        monkeypatch.setenv(name, value)
    key = uuid.uuid4().hex[:8]
    user = etl.principal.split("@")[0]
    # The engine may write into the export root; what it writes there is the run's user's by the
    # default ACL (without it the run is refused: docs/errors.md, export-written-as-the-engines-user).
    exports = kerberized_hadoop.export_root(f"hdfs://cluster1/cli-kerberos-export/{key}", user)
    hdfs = kerberized_hadoop.hdfs
    webhdfs = f"http://localhost:{kerberized_hadoop.source.webhdfs_address.split(':')[1]}"
    target = f"hdfs://cluster2/cli-kerberos-server/{key}"
    table = f"default.cli_kerberos_server_{key}"
    argv = [SCRIPT, "--source-host", "localhost", "--source-port", str(kerberized_hiveserver.port),
            "--auth-mechanism", "GSSAPI", "--kerberos-service-name", "hive",
            "--principal", etl.principal, "--keytab", etl.keytab, "--target-hdfs-path", target,
            "--source-hdfs-path", exports, "--source-webhdfs-url", webhdfs,
            "--extract-mode", "server", "--export-dialect", "hive",
            "--query", "SELECT id FROM range(300)", "--chunk-size", "150", "--method", "distcp",
            "--target-table", table, "--table-dialect", "hive", "--temp-dir", str(tmp_path / "work")]
    env = {**os.environ, "TMPDIR": str(no_ticket)}
    result = subprocess.run([*argv, "--run-id", "k1"], env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "counts: source 300, files 300, delivered 300, published 300, target_table 300" in result.stdout
    owners = hdfs("dfs", "-stat", "%u", f"{target}/{table.split('.')[1]}/k1/*", superuser=True, check=True).stdout
    assert set(owners.split()) == {user}
    assert hdfs("dfs", "-ls", "-R", exports, superuser=True, check=True).stdout.split("\n")[1:] == [""]
    assert private_caches(no_ticket) == []


def test_a_ticket_shorter_than_the_task_is_renewed_from_the_keytab_while_the_task_runs(
        kerberized_hiveserver, kdc, no_ticket, tmp_path):
    keytab = tmp_path / "short.keytab"
    principal = kdc.add_principal(f"short{uuid.uuid4().hex[:6]}", keytab, max_life=8)
    login = KeytabLogin(principal, str(keytab))
    connector = SourceConnector(host="localhost", port=kerberized_hiveserver.port, login=login,
                                options={"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive"})
    cache = kerberos.ticket_cache(login)
    first = cache.expires
    assert cache.refresh_after == 5.0  # half of 8 s, but never more often than every 5 s
    time.sleep(9)  # the first ticket has expired: a session can only open with a renewed one
    with connector.session() as cursor:
        cursor.execute("SELECT current_user()")
        assert cursor.fetchall() == [(principal.split("@")[0],)]
    assert cache.expires != first


# --- bad settings and faults: refused before anything runs, or a message that says what to do ----------

def test_a_keytab_others_may_read_is_refused_naming_chmod(etl):
    os.chmod(etl.keytab, 0o640)
    with pytest.raises(ConfigError, match=rf"keytab: {etl.keytab} may be read by its group or others \(mode 0640\)"
                                          rf".*\(chmod 600 {etl.keytab}"):
        TicketCache(etl).open()


def test_half_a_login_and_a_relative_keytab_path_are_refused():
    with pytest.raises(ConfigError, match=r"keytab: principal is set in connection 'c' but keytab is not"):
        KeytabLogin.from_settings("etl@R", "", "connection 'c'")
    with pytest.raises(ConfigError, match=r"keytab: 'etl.keytab' in connection 'c' is not an absolute path"):
        KeytabLogin.from_settings("etl@R", "etl.keytab", "connection 'c'")
    with pytest.raises(ConfigError, match=r"principal: a principal and keytab are set but auth_mechanism is PLAIN"):
        SourceConnector(host="h", login=KeytabLogin("etl@R", "/k"), options={"auth_mechanism": "PLAIN"})


def test_a_keytab_without_the_principal_names_both_and_how_to_list_it(kdc, etl, no_ticket):
    other = kdc.add_principal(f"other{uuid.uuid4().hex[:6]}")
    with pytest.raises(ConfigError, match=rf"principal: {etl.keytab} holds no key for {other} .*klist -kt"):
        TicketCache(KeytabLogin(other, etl.keytab)).open()
    assert private_caches(no_ticket) == []


def test_a_keytab_whose_keys_were_changed_since_says_to_export_a_fresh_one(kdc, etl, no_ticket):
    kdc.kadmin("cpw", "-randkey", etl.principal)
    with pytest.raises(KerberosError, match=r"the key in .* is not the principal's current key.*export a fresh"):
        TicketCache(etl).open()


def test_an_unreachable_kdc_fails_within_the_bound_naming_krb5_conf(kdc, etl, no_ticket, tmp_path, closed_port,
                                                                     silent_server):
    refused = tmp_path / "krb5-refused.conf"
    refused.write_text(kdc.krb5_conf.read_text().replace(f":{kdc.port}", f":{closed_port}"))
    with pytest.raises(KerberosError, match=r"no KDC of its realm answered .*krb5.conf"):
        TicketCache(etl, env={**os.environ, "KRB5_CONFIG": str(refused)}).open()
    hung = tmp_path / "krb5-silent.conf"  # a KDC port that accepts and never answers
    hung.write_text(kdc.krb5_conf.read_text().replace(f":{kdc.port}", f":{silent_server}"))
    started = time.monotonic()
    with pytest.raises(KerberosError, match=r"got no answer within 3s: the KDC of its realm is unreachable"):
        TicketCache(etl, timeout=3, env={**os.environ, "KRB5_CONFIG": str(hung)}).open()
    assert time.monotonic() - started < 10
    assert private_caches(no_ticket) == []


def test_the_clis_source_webhdfs_authenticates_by_spnego_with_the_runs_ticket_and_a_user_name_does_not(
        kerberized_hadoop, kdc, no_ticket, etl, monkeypatch):
    """``--source-webhdfs-url`` under Kerberos (``--webhdfs-auth kerberos``): the server-side export's
    listing and footer reads on a NameNode behind SPNEGO (cluster1, ``HTTP/localhost``)."""
    from airflow_provider_impala_transfer.cli.job import source_webhdfs
    from airflow_provider_impala_transfer.core.errors import TransferError

    directory = f"/tmp/{etl.principal.split('@')[0]}-webhdfs"
    kerberized_hadoop.hdfs("dfs", "-mkdir", "-p", f"hdfs://cluster1{directory}/seen", superuser=True, check=True)
    url = f"http://localhost:{kerberized_hadoop.source.webhdfs_address.split(':')[1]}"
    with TicketCache(etl) as cache, kerberos.in_environ(cache):
        assert source_webhdfs(url, kerberos=True).list_names(f"hdfs://cluster1{directory}") == ["seen"]
        with pytest.raises(TransferError, match=r"Authentication failure"):
            source_webhdfs(url).list_names(f"hdfs://cluster1{directory}")  # user.name=... is no identity here
    with pytest.raises(TransferError, match=r"WebHDFS list \S+: no Kerberos ticket \(.*\): get one before the task runs"):
        source_webhdfs(url, kerberos=True).list_names(f"hdfs://cluster1{directory}")  # the test's cache is empty


def test_kinit_sees_only_the_kerberos_part_of_the_tasks_environment(etl, no_ticket, tmp_path, monkeypatch):
    """A task's environment holds connection URIs with passwords: none of it reaches kinit/klist."""
    secret = "pw-kinit-never-sees-it"
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_DEFAULT", f"impala://etl:{secret}@impalad:21050")
    monkeypatch.setenv("IMPALA_PASSWORD", secret)
    seen = tmp_path / "kinit.env"
    observer = tmp_path / "kinit"  # records its environment, then is the real kinit
    observer.write_text(f"#!/bin/sh\nenv > '{seen}'\nexec kinit \"$@\"\n")
    observer.chmod(0o700)
    with TicketCache(etl, kinit=str(observer)):
        pass
    names = {line.split("=", 1)[0] for line in seen.read_text().splitlines()}
    assert secret not in seen.read_text()
    assert names <= {*kerberos.KRB5_ENVIRONMENT, "LC_ALL", "PWD", "SHLVL", "_"}  # the last three: sh's own


# --- a caller's ticket (no keytab, no renewer) that ends: the run fails saying so ---------------------------------

EXPIRED = (r"the Kerberos ticket expired \([^\n]*\): renew it \(Airflow's ticket renewer, airflow kerberos, keeps it "
           r"fresh\) or kinit again")


def test_a_callers_ticket_that_expires_during_the_run_without_a_renewer_fails_it_saying_so_and_publishes_nothing(
        kerberized_hiveserver, kerberized_hadoop, kdc, no_ticket, etl, tmp_path, monkeypatch):
    """The CLI with ``--auth-mechanism GSSAPI`` and the caller's ticket (``KRB5CCNAME``, no keytab), which
    ends 10 s after kinit: enough to open the first session, far too little for the run (dozens of
    Hadoop JVMs, two DistCp jobs, the Spark queries). Whichever step runs first after the end, an
    Impala session (MIT krb5: "Ticket expired") or hdfs dfs/hadoop distcp (Java: "Client cannot
    authenticate via:[TOKEN, KERBEROS]", the cache then read by klist), fails saying the ticket
    expired and what to do. The ticket cannot be renewed, as one past its renew-until time: a
    renewable one Hadoop's Java client renews by itself from the cache, even after its end."""
    for name, value in kerberized_hadoop.env().items():
        monkeypatch.setenv(name, value)
    keytab = tmp_path / "caller.keytab"  # only for the kinit below: the run is given no keytab
    principal = kdc.add_principal(f"caller{uuid.uuid4().hex[:6]}", keytab, max_life=10)
    kdc.kadmin("modprinc", "-maxrenewlife", "0 seconds", principal)
    cache = tmp_path / "caller.ccache"
    kdc.kinit(principal, keytab, cache)
    key = uuid.uuid4().hex[:8]
    target, name = f"hdfs://cluster2/cli-expiry/{key}", f"cli_expiry_{key}"
    result = subprocess.run(
        [SCRIPT, "--source-host", "localhost", "--source-port", str(kerberized_hiveserver.port),
         "--auth-mechanism", "GSSAPI", "--kerberos-service-name", "hive", "--target-hdfs-path", target,
         "--source-hdfs-path", f"hdfs://cluster1/cli-expiry-staging/{key}", "--query", "SELECT id FROM range(300)",
         "--split-by", "id", "--chunk-size", "150", "--method", "distcp", "--target-table", f"default.{name}",
         "--table-dialect", "hive", "--run-id", "k1", "--temp-dir", str(tmp_path / "work")],
        env={**os.environ, "TMPDIR": str(no_ticket), "KRB5CCNAME": f"FILE:{cache}"},
        capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert re.search(EXPIRED, output), output
    assert "published hdfs://" not in output

    # Nothing at the target but what waits in the run's staging directory for a retry, read as hdfs.
    listed = kerberized_hadoop.hdfs("dfs", "-ls", "-R", target, superuser=True).stdout
    files = [line.split()[-1] for line in listed.splitlines() if line.startswith("-")]
    assert [f for f in files if "/_impala_transfer_staging/" not in f] == [], listed
    assert kerberized_hadoop.hdfs("dfs", "-test", "-e", f"{target}/{name}/k1", superuser=True).returncode == 1
    connector = SourceConnector(host="localhost", port=kerberized_hiveserver.port, login=etl,
                                options={"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive"})
    with connector.session() as cursor:  # the target table was not created
        cursor.execute(f"SHOW TABLES IN default LIKE '{name}'")
        assert cursor.fetchall() == []


def test_the_hadoop_clients_without_a_ticket_say_there_is_none_where_hdfs_dfs_test_would_answer_no(
        kerberized_hadoop, no_ticket, monkeypatch):
    """FsShell exits 1 when it cannot authenticate, the exit code of ``-test``'s "no": the Test button
    of a ``hadoop_cli`` connection said it "reached the default filesystem" without a ticket."""
    for name, value in kerberized_hadoop.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_HADOOP_NO_TICKET", json.dumps({"conn_type": "hadoop_cli"}))
    ok, message = HadoopCliHook("hadoop_no_ticket").test_connection()
    assert not ok
    assert message.startswith(
        "hdfs dfs -test: no Kerberos ticket (Client cannot authenticate via:[TOKEN, KERBEROS]; klist: No credentials "
        f"cache found (filename: {os.environ['KRB5CCNAME'].removeprefix('FILE:')})): get one before the task runs "
        "(Airflow's ticket renewer, airflow kerberos, with [kerberos] principal and keytab; or kinit -kt <keytab> "
        "<principal>) and point KRB5CCNAME at its cache\n"), message
