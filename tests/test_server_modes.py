"""The other HiveServer2 modes users meet: no SASL at all, and HTTP transport (Impala's port 28000)."""

from decimal import Decimal

import pytest

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, extract_chunk, plan_chunks
from tests.support.local_hiveserver import LocalHiveServer
from tests.support.processes import free_port
from tests.conftest import read_files

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.mark.parametrize("transport_mode,authentication", [("binary", "NOSASL"), ("http", "NONE")])
def test_extract_over_each_server_mode(tmp_path, transport_mode, authentication):
    server = LocalHiveServer(workdir=tmp_path / "hs2", port=free_port(), transport_mode=transport_mode,
                             authentication=authentication, driver_memory="1g")
    with server:
        server.execute("CREATE TABLE t USING parquet AS SELECT id, CAST(id AS DECIMAL(10,3)) / 8 AS d FROM range(5000)")
        kwargs = server.connect_kwargs()
        connector = SourceConnector(host=kwargs.pop("host"), port=kwargs.pop("port"), options=kwargs)
        spec = ExtractSpec.build(table="t", split_by="id", chunk_size=2000)
        chunks = plan_chunks(connector, spec)
        files = [f.path for c in chunks for f in extract_chunk(connector, spec, c, str(tmp_path / "out")).files]
    table = read_files(files)
    assert sorted(table["id"].to_pylist()) == list(range(5000))
    assert all(row["d"] == Decimal(row["id"]) / 8 for row in table.to_pylist())  # exact decimals
