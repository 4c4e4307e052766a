"""Impala sessions authenticated by Kerberos (issue 19), against real parts: an MIT KDC
(tests/support/local_kdc.py) and a HiveServer2-protocol server that accepts only GSSAPI
(``hive.server2.authentication=KERBEROS``, tests/support/local_hiveserver.py). Each client ticket
is got with ``kinit -kt`` from a keytab into a private cache that ``KRB5CCNAME`` names."""

from __future__ import annotations

import json
import sys
import uuid

import pyarrow.parquet as pq
import pytest

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.common.records import Manifest
from airflow_provider_impala_transfer.core.common.uris import local_path
from airflow_provider_impala_transfer.core.errors import ConfigError, SourceError
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, extract_chunk, plan_chunks
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook

pytestmark = pytest.mark.server


@pytest.fixture
def ticket(kdc, tmp_path, monkeypatch):
    """A user principal's ticket, got from its keytab into this test's own cache."""
    principal = kdc.add_principal(f"etl{uuid.uuid4().hex[:6]}", tmp_path / "etl.keytab")
    kdc.kinit(principal, tmp_path / "etl.keytab", tmp_path / "ccache")
    for name, value in kdc.env(tmp_path / "ccache").items():
        monkeypatch.setenv(name, value)
    return principal


def gssapi(**extra) -> dict:
    return {"auth_mechanism": "GSSAPI", "kerberos_service_name": "hive", **extra}


def test_a_gssapi_connection_opens_its_session_as_the_principal_of_the_ticket(
        kerberized_hiveserver, ticket, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_KERBEROS", json.dumps({
        "conn_type": "impala_transfer", "host": "localhost", "port": kerberized_hiveserver.port,
        "extra": gssapi()}))
    connector = ImpalaTransferHook(impala_conn_id="impala_kerberos").connector()
    with connector.session() as cursor:
        cursor.execute("SELECT current_user()")
        assert cursor.fetchall() == [(ticket.split("@")[0],)]


def test_an_extract_reads_every_row_through_a_kerberized_session(kerberized_hiveserver, ticket, tmp_path):
    connector = SourceConnector(host="localhost", port=kerberized_hiveserver.port, options=gssapi())
    spec = ExtractSpec.build(sql="SELECT id, id * 2 AS twice FROM range(1000)", split_by="id", chunk_size=400)
    chunks = plan_chunks(connector, spec)
    manifest = Manifest.merge(extract_chunk(connector, spec, chunk, str(tmp_path / "out")) for chunk in chunks)
    ids = sorted(i for f in manifest.files for i in pq.read_table(local_path(f.path)).column("id").to_pylist())
    assert len(chunks) == 3 and ids == list(range(1000))


def test_through_an_address_krb_host_names_the_host_of_the_servers_principal(kerberized_hiveserver, ticket):
    through_ip = SourceConnector(host="127.0.0.1", port=kerberized_hiveserver.port,
                                 options=gssapi(krb_host="localhost"))
    with through_ip.session() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == [(1,)]
    without = SourceConnector(host="127.0.0.1", port=kerberized_hiveserver.port, options=gssapi())
    with pytest.raises(SourceError, match=r"the KDC knows no service principal hive/127.0.0.1 .*set "
                                          r"kerberos_service_name \(now 'hive'\) and krb_host \(now "
                                          r"'127.0.0.1'\)"):
        with without.session():
            pass


def test_without_a_ticket_the_error_says_how_to_get_one(kerberized_hiveserver, kdc, tmp_path, monkeypatch):
    for name, value in kdc.env(tmp_path / "no-such-cache").items():
        monkeypatch.setenv(name, value)
    connector = SourceConnector(host="localhost", port=kerberized_hiveserver.port,
                                options=gssapi())
    with pytest.raises(SourceError, match=r"no Kerberos ticket .*airflow kerberos.*kinit -kt .*KRB5CCNAME"):
        with connector.session():
            pass


def test_without_the_kerberos_module_gssapi_is_refused_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "kerberos", None)  # as if never installed: import raises ImportError
    connector = SourceConnector(host="impala1", options={"auth_mechanism": "GSSAPI"})
    with pytest.raises(ConfigError, match=r"auth_mechanism: GSSAPI needs the Python module kerberos.*"
                                          r"airflow-provider-impala-transfer\[kerberos\]"):
        connector.connect()
