"""Reading what a test wrote to the local HDFS clusters, through WebHDFS (no JVM per look):
``hdfs://cluster2/x`` URIs are answered by that cluster of a :class:`~tests.support.local_hdfs.LocalHadoop`.
A Kerberized cluster refuses those calls (they carry no ticket): :func:`hdfs_get` copies from it."""

from __future__ import annotations

import io
import urllib.error
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pyarrow.parquet as pq


def _cluster(hadoop, uri: str):
    return hadoop[urlsplit(uri).netloc]


def hdfs_names(hadoop, uri: str, *, hidden: bool = False) -> list[str] | None:
    """Names in an HDFS directory (None if it does not exist); ``.``/``_`` names only if ``hidden``."""
    try:
        status = _cluster(hadoop, uri).webhdfs("GET", urlsplit(uri).path, "LISTSTATUS")["FileStatuses"]["FileStatus"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    return sorted(s["pathSuffix"] for s in status if hidden or not s["pathSuffix"].startswith((".", "_")))


def hdfs_bytes(hadoop, uri: str) -> bytes:
    return _cluster(hadoop, uri).read_bytes(urlsplit(uri).path)


def hdfs_write(hadoop, uri: str, data: bytes) -> None:
    _cluster(hadoop, uri).put_bytes(urlsplit(uri).path, data)


def parquet_rows(hadoop, directory: str) -> int:
    """Rows in the Parquet files of an HDFS directory (from their footers)."""
    names = [n for n in hdfs_names(hadoop, directory) or [] if n.endswith(".parquet")]
    return sum(pq.ParquetFile(io.BytesIO(hdfs_bytes(hadoop, f"{directory}/{n}"))).metadata.num_rows for n in names)


def hdfs_get(hadoop, uri: str, local_dir: Path) -> Path:
    """A copy of an HDFS file or directory tree, made in ``local_dir`` by one ``hdfs dfs -get`` as the
    HDFS superuser (on a Kerberized cluster with the superuser's ticket); its local path."""
    local_dir.mkdir(parents=True, exist_ok=True)
    hadoop.hdfs("dfs", "-get", uri, str(local_dir), superuser=True, check=True)
    return local_dir / PurePosixPath(urlsplit(uri).path).name
