"""The source server dies in the middle of an extract. Real processes: a Spark Thrift Server of this
module's own (the session's ``hiveserver`` serves other tests and must stay up) is killed with
SIGKILL by its PID while a chunk's rows are streaming into files, then started again on the same
metastore and warehouse."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.common.records import Chunk
from airflow_provider_impala_transfer.core.errors import SourceError
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec, Progress, extract_chunk
from tests.support.local_hiveserver import LocalHiveServer
from tests.support.processes import free_port

pytestmark = pytest.mark.server

ROWS = 300_000  # a few seconds of fetching on 2 cores: the kill lands in the middle
FILE_ROWS = 60_000  # rows per file, so finished parts exist when the kill lands
KILL_AFTER_ROWS = 150_000  # two parts done, the third being written


@pytest.fixture(scope="module")
def own_server(tmp_path_factory) -> LocalHiveServer:
    """A dedicated server (own Derby metastore, local warehouse) this module may kill."""
    server = LocalHiveServer(workdir=tmp_path_factory.mktemp("hs2-killed"), port=free_port(), driver_memory="1g")
    server.start()
    try:
        server.seed_range_table("default.big", ROWS)
        yield server
    finally:
        server.stop()


def connector_of(server: LocalHiveServer) -> SourceConnector:
    kwargs = server.connect_kwargs()
    return SourceConnector(host=kwargs.pop("host"), port=kwargs.pop("port"), connect_timeout=20, rpc_timeout=60,
                           options=kwargs)


class KillServerAt(Progress):
    """Progress hook: SIGKILL the server once ``rows`` rows are written, and note what the output
    directory held at that moment (the kill is real; only its timing is taken from the extract)."""

    def __init__(self, server: LocalHiveServer, rows: int, directory: Path):
        super().__init__(label="chunk 0")
        self.server, self.rows, self.directory = server, rows, directory
        self.killed_at: int | None = None
        self.seen_at_kill: list[str] = []

    def update(self, rows: int, written: int, *, final: bool = False) -> None:
        if self.killed_at is None and rows >= self.rows:
            self.seen_at_kill = sorted(p.name for p in self.directory.iterdir())
            os.kill(self.server.pid, signal.SIGKILL)
            os.waitpid(self.server.pid, 0)  # reaped: the process is gone, its port closed
            self.server.pid = None
            self.killed_at = rows


def snapshot(manifest) -> list[tuple[str, str, int, int]]:
    return [(f.name, f.sha256, f.bytes, f.rows) for f in manifest.files]


def test_a_source_killed_mid_fetch_fails_the_chunk_naming_the_server_and_leaves_no_finished_looking_file(
        own_server, tmp_path):
    """SIGKILL while part 2 of the chunk is being written (parts 0 and 1 already renamed to their
    final names). A crashed source must not leave files that read as a complete, shorter chunk; the
    error must say which server and what to do; and after a restart on the same metastore and
    warehouse, the re-run writes exactly the files an undisturbed run writes."""
    connector = connector_of(own_server)
    spec = ExtractSpec.build(table="default.big", chunk_size=FILE_ROWS, order_by="id")
    clean = extract_chunk(connector, spec, Chunk(0), str(tmp_path / "clean"))
    assert clean.rows == ROWS and len(clean.files) == ROWS // FILE_ROWS

    out = tmp_path / "out"
    killer = KillServerAt(own_server, KILL_AFTER_ROWS, out)
    with pytest.raises(SourceError) as failure:
        extract_chunk(connector, spec, Chunk(0), str(out), progress=killer)
    assert killer.killed_at is not None and killer.killed_at < ROWS, "the kill did not land mid-fetch"
    finished_then = [name for name in killer.seen_at_kill if not name.startswith(".")]
    assert finished_then and any(name.endswith(".inprogress") for name in killer.seen_at_kill), killer.seen_at_kill
    message = str(failure.value)
    assert message.startswith(f"chunk 0 fetch failed on 127.0.0.1:{own_server.port}: "), message
    assert "the connection to the server was lost in the middle of the result" in message  # closed or reset
    assert f"re-run chunk 0 once 127.0.0.1:{own_server.port} answers again" in message
    left = sorted(p.name for p in out.iterdir())
    assert [name for name in left if not name.startswith(".")] == [], f"finished-looking files left: {left}"
    assert left == [], f"temporaries left: {left}"  # the .inprogress file is removed too

    own_server.start()  # same workdir: same metastore and warehouse
    again = extract_chunk(connector, spec, Chunk(0), str(out))
    assert snapshot(again) == snapshot(clean)
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in clean.files]
    assert sum(pq.ParquetFile(f.local).metadata.num_rows for f in again.files) == ROWS
