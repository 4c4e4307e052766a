"""Packaging and Airflow integration: entry point, connection type, hook, templated fields."""

import importlib
import json
import re
from importlib.metadata import entry_points

import pytest


def test_provider_is_registered_through_its_entry_point():
    [ep] = [ep for ep in entry_points(group="apache_airflow_provider")
            if ep.value.startswith("airflow_provider_impala_transfer")]
    info = ep.load()()
    assert info["package-name"] == "airflow-provider-impala-transfer"
    conn_types = {c["connection-type"]: c for c in info["connection-types"]}
    assert sorted(conn_types) == ["fsspec", "hadoop_cli", "impala_transfer"]
    assert conn_types["impala_transfer"]["conn-fields"]["auth_mechanism"]["schema"]["enum"][0] == "NOSASL"
    for conn_type in conn_types.values():  # every declared hook class imports
        module, _, name = conn_type["hook-class-name"].rpartition(".")
        assert getattr(importlib.import_module(module), name).conn_type == conn_type["connection-type"]


def test_airflow_providers_manager_sees_the_connection_type():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-impala-transfer" in manager.providers
    assert {"impala_transfer", "hadoop_cli", "fsspec"} <= set(manager.hooks)


def _conn_env(monkeypatch, conn_id, conn):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.mark.server
def test_hook_connects_with_an_impala_connection_and_masks_the_password(hiveserver, monkeypatch):
    from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook

    _conn_env(monkeypatch, "impala_test", {
        "conn_type": "impala", "host": "127.0.0.1", "port": hiveserver.port, "login": "etl",
        "password": "pa55-word", "schema": "default",
        "extra": {"auth_mechanism": "PLAIN", "connect_timeout": 7,
                  "extra__impala_transfer__use_ssl": "false", "http_path": ""},
    })
    connector = ImpalaTransferHook(impala_conn_id="impala_test").connector()
    assert connector.connect_timeout == 7
    assert connector.options == {"auth_mechanism": "PLAIN", "use_ssl": False, "user": "etl",
                                 "password": "pa55-word", "database": "default"}
    assert "pa55-word" not in repr(connector)
    conn = ImpalaTransferHook(impala_conn_id="impala_test").get_conn()
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT COUNT(*) FROM sample_types")  # schema -> default database
        assert cursor.fetchone() == (6,)
    finally:
        conn.close()


def test_operator_templated_fields_cover_what_users_template():
    from airflow_provider_impala_transfer.operators.impala_extract import ImpalaExtractOperator

    fields = set(ImpalaExtractOperator.template_fields)
    assert {"sql", "table", "output_path", "chunk_size", "split_by", "chunk", "output_format"} <= fields
    assert ".sql" in ImpalaExtractOperator.template_ext


def test_run_directory_is_hadoop_safe():
    from airflow_provider_impala_transfer.operators.impala_extract import run_directory

    path = run_directory("hdfs://nn:8020/data/out/", "my_dag", "manual__2026-01-01T00:00:00+00:00")
    assert re.fullmatch(r"hdfs://nn:8020/data/out/my_dag/manual__2026-01-01T00_00_00_00_00-[0-9a-f]{12}", path)
    # injective: an id that needed no change keeps its name, one that did keeps a hash of itself
    assert run_directory("/o", "d", "manual__2026-01-01T00_00_00_00_00") != path.replace("hdfs://nn:8020/data/out", "/o")


def test_the_core_imports_without_airflow():
    import subprocess
    import sys

    code = ("import sys; import airflow_provider_impala_transfer.core.extract.extract, "
            "airflow_provider_impala_transfer.core.extract.prefetch; "
            "assert not [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')], 'airflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
