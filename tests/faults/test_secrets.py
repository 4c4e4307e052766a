"""No secret in a child's environment or command line, and one masking rule for URLs."""

from __future__ import annotations

import os

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


def test_distcps_listing_is_written_privately_and_never_through_a_planted_link(tmp_path):
    """Another local user could plant a link where the listing goes; it must not be followed."""
    import hashlib

    import pyarrow as pa

    from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
    from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk
    from airflow_provider_impala_transfer.core.transfer.destinations import HdfsDestination
    from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
    from airflow_provider_impala_transfer.core.transfer.layout import Run
    from airflow_provider_impala_transfer.core.transfer.distcp import DistcpMethod, DistcpOptions, private_dir

    assert os.stat(private_dir()).st_mode & 0o777 == 0o700
    data = tmp_path / "chunk-00000-part-00000.parquet"
    data.write_bytes(b"x")
    manifest = Manifest([FileEntry(path=f"file://{data}", bytes=1, sha256=hashlib.sha256(b"x").hexdigest(),
                                   chunk=0, part=0)], pa.schema([("x", pa.int8())]), [Chunk(0)])
    runner = CommandRunner(timeout=30)
    method = DistcpMethod(destination=HdfsDestination(root="hdfs://cluster2/t", shell=HdfsShell(runner=runner)),
                          source_shell=HdfsShell(runner=runner), runner=runner,
                          source_hdfs_path="hdfs://cluster1/staging", options=DistcpOptions(hadoop_bin="true"),
                          listing_dir=str(tmp_path / "lists"))
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "lists").mkdir()
    os.symlink(victim, method.listing_path(Run("r1"), manifest.files))
    with pytest.raises(FileExistsError):
        deliver_chunk(method, manifest, Run("r1"), overwrite=False)
    assert victim.read_text() == "precious\n"
