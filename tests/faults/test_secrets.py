"""No secret in a child's environment or command line, and one masking rule for URLs."""

from __future__ import annotations

import pytest

from airflow_provider_impala_transfer.core.common.secrets import Redactor, mask_secrets
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner

SECRET = "s3cr3t-Zq81x/p@ss"


@pytest.mark.parametrize("url, shown", [
    (f"sftp://etl:{SECRET}@edge1:22/data", "sftp://etl:***@edge1:22/data"),
    ("sftp://etl:pw@edge1", "sftp://etl:***@edge1"),
    ("hdfs://nn:8020/data/a@b", "hdfs://nn:8020/data/a@b"),  # a port, not a password
    ("s3://bucket/key", "s3://bucket/key"),
])
def test_a_password_in_a_url_is_hidden_whole(url, shown):
    assert mask_secrets(url) == shown
    assert SECRET not in Redactor()(f"cannot reach {url}: refused")


def test_a_tool_sees_neither_the_impala_password_nor_airflows_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPALA_PASSWORD", SECRET)
    monkeypatch.setenv("ETL_PW", SECRET)
    monkeypatch.setenv("AIRFLOW_CONN_IMPALA_DEFAULT", f"impala://etl:{SECRET}@impalad:21050")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"postgresql://airflow:{SECRET}@db/airflow")
    monkeypatch.setenv("KRB5CCNAME", "/tmp/krb5cc_etl")
    runner = CommandRunner(env={"HADOOP_CONF_DIR": "/etc/hadoop/conf"}, withhold=("ETL_PW",))
    environ = runner.run(["env"], capture=True).stdout.decode()
    assert SECRET not in environ
    assert "KRB5CCNAME=/tmp/krb5cc_etl" in environ and "HADOOP_CONF_DIR=/etc/hadoop/conf" in environ
