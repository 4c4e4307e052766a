"""HDFS metadata over WebHDFS: exists, list, sizes, mkdir, rename and delete as HTTP calls to the
NameNode, where ``hdfs dfs`` would start a JVM per call (~0.5 s each).

The client is an HdfsCLI ``hdfs.Client`` (``InsecureClient`` or ``KerberosClient``), e.g. what the
hdfs provider's ``WebHDFSHook.get_conn()`` returns: this module takes any object with HdfsCLI's
``status``/``list``/``makedirs``/``rename``/``delete`` and imports neither Airflow nor hdfs.

Checksums stay with ``hdfs dfs -checksum``: the DataNodes' WebHDFS handler always answers
MD5-of-MD5-of-CRC32C (it ignores ``dfs.checksum.combine.mode``), which depends on block sizes and
cannot be compared with the manifest's CRC32C. The WebHDFS client talks to ONE cluster: paths
are the URI's path on that cluster (its scheme and authority are the Hadoop client's business).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_impala_transfer.core.errors import TransferError

T = TypeVar("T")


@dataclass
class WebHdfsMetadata:
    client: Any  # hdfs.Client

    @staticmethod
    def path(uri: str) -> str:
        return urlsplit(uri).path or "/"

    def _call(self, what: str, uri: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as exc:  # HdfsError, requests' errors: a failure of this method either way
            raise TransferError(f"WebHDFS {what} {uri}: {exc}") from exc

    def is_dir(self, uri: str) -> bool:
        status = self._call("status", uri, lambda: self.client.status(self.path(uri), strict=False))
        return bool(status) and status.get("type") == "DIRECTORY"

    def makedirs(self, uri: str) -> None:
        self._call("mkdir", uri, lambda: self.client.makedirs(self.path(uri)))

    def list_names(self, uri: str) -> list[str]:
        return list(self._call("list", uri, lambda: self.client.list(self.path(uri))))

    def sizes(self, uris: Sequence[str]) -> dict[str, int]:
        """One LISTSTATUS per directory, not one call per file."""
        sizes: dict[str, int] = {}
        by_dir: dict[str, list[str]] = {}
        for uri in uris:
            by_dir.setdefault(uri.rsplit("/", 1)[0], []).append(uri)
        for directory, members in by_dir.items():
            listed = dict(self._call("list", directory, lambda: self.client.list(self.path(directory), status=True)))
            for uri in members:
                status = listed.get(uri.rsplit("/", 1)[1])
                if status is None or status.get("type") != "FILE":
                    raise TransferError(f"{uri} is missing")
                sizes[uri] = int(status["length"])
        return sizes

    def move(self, source: str, target: str) -> None:
        self._call("rename", source, lambda: self.client.rename(self.path(source), self.path(target)))

    def remove(self, uris: Sequence[str], *, recursive: bool = False) -> None:
        for uri in uris:
            self._call("delete", uri, lambda: self.client.delete(self.path(uri), recursive=recursive))
