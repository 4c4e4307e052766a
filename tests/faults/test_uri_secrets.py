"""A password inside a URL (``sftp://etl:pw@edge1/x``, ``http://etl:pw@nn:9870``) reaches no output:
one redaction rule for URIs (:func:`~airflow_provider_impala_transfer.core.common.secrets.redact_uri`)
on everything shown (the CLI, errors, lineage, asset events and their log line, XCom), and a task
registers such passwords with Airflow's secret masker, which hides them in its logs."""

from __future__ import annotations

import shutil
from collections import defaultdict
from types import SimpleNamespace

import pyarrow as pa
import pytest

from airflow_provider_impala_transfer.core.common.records import FileEntry, Manifest
from airflow_provider_impala_transfer.core.common.uris import normalize_uri
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.records import DeliveredFile, DeliveryRecord, PublishResult
from tests.support.cli import run_cli

PW = "Tgt-pw-Zq81x"  # of the target URL
PW2 = "Nn-pw-Qv27y"  # of the WebHDFS URL
SLASHED = "sl/ash@Kp93"  # unencoded '/' and '@', as people write them
ENCODED = "p%40ss%2Fw0rd-Hx55"  # percent-encoded: p@ss/w0rd-Hx55
DECODED = "p@ss/w0rd-Hx55"
EVERY_PASSWORD = (PW, PW2, SLASHED, ENCODED, DECODED)


def shows_no_password(text: object) -> bool:
    return not any(password in str(text) for password in EVERY_PASSWORD)


@pytest.mark.parametrize("text, shown", [
    (f"sftp://etl:{PW}@edge1/x", "sftp://etl:***@edge1/x"),
    (f"http://etl:{PW2}@nn:9870", "http://etl:***@nn:9870"),  # the port after the host stays
    (f"http://etl:{PW2}@nn:9870/webhdfs/v1", "http://etl:***@nn:9870/webhdfs/v1"),
    ("sftp://etl:8020@edge1/x", "sftp://etl:***@edge1/x"),  # digits before '@' are a password, not a port
    ("sftp://etl:123456789/x@edge1/y", "sftp://etl:***@edge1/y"),  # no port has 9 digits
    (f"sftp://etl:{SLASHED}@edge1:22/x", "sftp://etl:***@edge1:22/x"),
    (f"abfs://etl:{ENCODED}@container/x", "abfs://etl:***@container/x"),
    (f"git+ssh://:{PW}@h/x", "git+ssh://:***@h/x"),  # any scheme, an empty user
    (f"cannot reach 'SFTP://etl:{PW}@edge1/x' (refused)", "cannot reach 'SFTP://etl:***@edge1/x' (refused)"),
    ("hdfs://nn:8020/data/a@b", "hdfs://nn:8020/data/a@b"),  # a port and an '@' in the path
    ("abfs://container@account.dfs.core.windows.net/x", "abfs://container@account.dfs.core.windows.net/x"),
    ("etl@EXAMPLE.COM, hdfs://nn/x", "etl@EXAMPLE.COM, hdfs://nn/x"),
])
def test_one_rule_hides_the_password_of_any_url_in_any_text(text, shown):
    from airflow_provider_impala_transfer.core.common.secrets import redact_uri

    assert redact_uri(text) == shown
    assert redact_uri(shown) == shown


def test_show_config_never_prints_a_url_password():
    result = run_cli("--show-config", "--target-hdfs-path", f"sftp://etl:{PW}@edge1/x",
                     "--source-webhdfs-url", f"http://etl:{PW2}@nn:9870")
    assert result.returncode == 0, result.stderr
    assert shows_no_password(result.stdout + result.stderr)
    assert "sftp://etl:***@edge1/x" in result.stdout and "http://etl:***@nn:9870" in result.stdout


def test_the_cli_never_prints_a_url_password_in_what_it_reports(sshd, tmp_path, monkeypatch):
    """Whatever writes (plans, notes, progress, the summary, logs), the CLI's streams show URLs without passwords."""
    (tmp_path / ".ssh").mkdir(mode=0o700)
    shutil.copy(sshd.key_file, tmp_path / ".ssh" / "id_ed25519")  # where paramiko looks: the key logs in
    monkeypatch.setenv("HOME", str(tmp_path))
    target = f"sftp://{sshd.user}:{PW}@{sshd.host}:{sshd.port}/tmp/x"
    result = run_cli("--validate-config", "--query", "SELECT 1", "--source-host", "impala1", "--skip-table",
                     "--target-hdfs-path", target)
    assert result.returncode == 0, result.stderr
    assert "configuration is valid: sftp://" in result.stdout
    assert shows_no_password(result.stdout + result.stderr)


def test_the_cli_never_prints_a_url_password_in_an_error():
    result = run_cli("--query", "SELECT 1", "--source-host", "impala1",
                     "--target-hdfs-path", f"ftpx://etl:{PW}@edge1/x")
    assert result.returncode == 2
    assert "--target-hdfs-path: 'ftpx://etl:***@edge1/x' uses ftpx://" in result.stderr
    assert shows_no_password(result.stdout + result.stderr)


def test_config_errors_never_quote_a_url_password():
    with pytest.raises(ConfigError) as caught:
        normalize_uri(f"sftp://etl:{PW}@edge1/data/../x", "target_path")
    error = caught.value
    assert str(error) == ("target_path: 'sftp://etl:***@edge1/data/../x' contains a '.' or '..' segment "
                          "(give the location without relative segments)")
    made = ConfigError(f"url sftp://etl:{PW}@h/x", f"{f'http://etl:{SLASHED}@nn:9870'!r} is refused",
                       f"write sftp://etl:{ENCODED}@h/x without it")
    for shown in (str(made), repr(made), made.args, made.field, made.problem, made.fix, error.problem):
        assert shows_no_password(shown), shown


def test_lineage_and_asset_extras_hold_no_url_password():
    from airflow.sdk import Asset

    from airflow_provider_impala_transfer.operators.assets import record_published
    from airflow_provider_impala_transfer.operators.lineage import location_name, publish_lineage

    for uri in (f"sftp://etl:{PW}@edge1/data/x", f"sftp://etl:{SLASHED}@edge1/data/x"):
        namespace, name = location_name(uri)
        assert (namespace, name) == ("sftp://edge1", "data/x")  # named as Airflow names its Asset: no user info
    lineage = publish_lineage(f"s3://etl:{PW}@bucket/data/x", PublishResult(
        published={"fsspec": f"s3://etl:{PW}@bucket/data/x/ds=1"}, rows=1, bytes=1, files=1, methods={}))
    assert shows_no_password(lineage.outputs)

    outlet = Asset("sftp://edge1/data/elsewhere")
    logged: list[str] = []
    task = SimpleNamespace(target_path=f"sftp://etl:{PW}@edge1/data/x", target_cluster=None, partition={"ds": "1"},
                           outlets=[outlet], log=SimpleNamespace(warning=lambda message, *args: logged.append(message % args)))
    context = {"ti": SimpleNamespace(dag_id="d"), "run_id": "r1",
               "outlet_events": defaultdict(lambda: SimpleNamespace(extra=None))}
    result = PublishResult(published={"fsspec": f"sftp://etl:{PW}@edge1/data/x/ds=1"}, rows=1, bytes=1, files=1,
                           methods={"chunk 0": "fsspec"})
    extra = record_published(task, context, result)
    assert extra["target_path"] == "sftp://etl:***@edge1/data/x"
    assert extra["published"] == "sftp://etl:***@edge1/data/x/ds=1"
    assert context["outlet_events"][outlet].extra == extra
    assert len(logged) == 1 and "this run published under sftp://etl:***@edge1/data/x instead" in logged[0]
    assert shows_no_password(logged)


def test_xcom_values_hold_no_url_password():
    """What a task returns is shown in the UI: URIs in it are redacted. No later task reads a
    location's credentials from XCom: it rebuilds its target from its own arguments and connection."""
    record = DeliveryRecord(method="fsspec", destination="fsspec", root=f"sftp://etl:{PW}@edge1/x",
                            staging_dir=f"sftp://etl:{PW}@edge1/x/_impala_transfer_staging/r1", chunk="chunk 0",
                            files=[DeliveredFile(name="a.parquet", path=f"sftp://etl:{PW}@edge1/x/s/a.parquet",
                                                 bytes=1, sha256="0" * 64, crc32c=None, check="sha256")])
    result = PublishResult(published={"fsspec": f"sftp://etl:{PW}@edge1/x/r1"}, rows=1, bytes=1, files=1,
                           methods={"chunk 0": "fsspec"}, replaced={"fsspec": f"sftp://etl:{PW}@edge1/x/_prev"})
    manifest = Manifest([FileEntry(path="file:///tmp/a.parquet", bytes=1, sha256="0" * 64, chunk=0, part=0)],
                        pa.schema([("x", pa.int8())]), output_path=f"s3://key:{ENCODED}@bucket/chunks")
    for data in (record.to_dict(), result.to_dict(), manifest.to_dict()):
        assert shows_no_password(data), data
    assert result.to_dict()["final_dir"] == "sftp://etl:***@edge1/x/r1"
    assert DeliveryRecord.from_dict(record.to_dict()).files[0].name == "a.parquet"  # the publish reads names


def test_a_table_location_never_holds_a_url_password():
    """A table's LOCATION is in the metastore and in every statement logged: a URL with a password
    (or one redacted in XCom) is refused there, naming the fix."""
    from airflow_provider_impala_transfer.core.table.ddl import TableTarget

    for location in (f"s3a://key:{PW}@bucket/x", "s3a://key:***@bucket/x"):
        with pytest.raises(ConfigError, match=r"^target_path: 's3a://key:\*\*\*@bucket/x' holds a password") as caught:
            TableTarget(table="db.t", location=location)
        assert shows_no_password(caught.value)


@pytest.fixture
def masked(monkeypatch) -> list[str]:
    """What is registered with Airflow's secret masker (``airflow.sdk.log.mask_secret``)."""
    import airflow.sdk.log

    registered: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda secret, name=None: registered.append(secret))
    return registered


def test_a_task_registers_url_passwords_with_the_secret_masker(masked):
    from airflow_provider_impala_transfer.operators.impala_extract import ImpalaExtractOperator
    from airflow_provider_impala_transfer.operators.transfer import TransferOperator

    transfer = TransferOperator(task_id="t", method="fsspec", manifest={},
                                target_path=f"sftp://etl:{PW}@edge1/data/x")
    assert transfer._target_uri() == f"sftp://etl:{PW}@edge1/data/x"  # the task itself uses the real URI
    extract = ImpalaExtractOperator(task_id="e", sql="SELECT 1", output_path=f"s3://key:{ENCODED}@bucket/chunks",
                                    run_subdirectory=False)
    extract.output_directory({"run_id": "r1", "dag": SimpleNamespace(dag_id="d")})
    assert PW in masked
    assert ENCODED in masked and DECODED in masked  # as written, and as a client decodes it
    assert set(masked) == {PW, ENCODED, DECODED}  # the passwords, never whole URLs


def test_a_url_without_a_password_registers_nothing(masked):
    from airflow_provider_impala_transfer.operators.transfer import TransferOperator

    TransferOperator(task_id="t", method="hdfs_put", manifest={}, target_path="hdfs://nn:8020/data/a@b")._target_uri()
    assert masked == []
