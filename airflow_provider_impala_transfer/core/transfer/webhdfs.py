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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_impala_transfer.core.common import kerberos
from airflow_provider_impala_transfer.core.errors import TransferError

T = TypeVar("T")
SPNEGO_REFUSED = "Authentication failure"  # HdfsCLI's words for a NameNode's 401, ticket or not


@dataclass
class WebHdfsMetadata:
    """``client``, or ``connect`` to make one when first needed (a hook that looks for a live
    NameNode must not fail a task that never gets to a metadata step)."""

    client: Any = None  # hdfs.Client
    connect: Callable[[], Any] | None = None
    name: str = "WebHDFS"

    @staticmethod
    def path(uri: str) -> str:
        return urlsplit(uri).path or "/"

    def _client(self) -> Any:
        if self.client is None:
            if self.connect is None:
                raise TransferError(f"{self.name}: no client and nothing to connect with")
            try:
                self.client = self.connect()
            except Exception as exc:  # the hook's "no valid server", requests' errors
                raise TransferError(f"{self.name}: {exc}") from exc
        return self.client

    def _call(self, what: str, uri: str, call: Callable[[Any], T]) -> T:
        client = self._client()
        try:
            return call(client)
        except Exception as exc:  # HdfsError, requests' errors: a failure of this method either way
            ticket = None
            if type(client).__name__ == "KerberosClient":  # SPNEGO refused: the ticket cache says why
                ticket = kerberos.explain_ticket(str(exc), unsaid=(*kerberos.UNSAID_WORDS, SPNEGO_REFUSED))
            raise TransferError(f"WebHDFS {what} {uri}: {ticket or exc}") from exc

    def exists(self, uri: str) -> bool:
        return bool(self._call("status", uri, lambda c: c.status(self.path(uri), strict=False)))

    def file_sizes(self, uri: str) -> dict[str, int]:
        """The files directly in a directory and their sizes, in one LISTSTATUS."""
        listed = self._call("list", uri, lambda c: c.list(self.path(uri), status=True))
        return {name: int(status["length"]) for name, status in listed if status.get("type") == "FILE"}

    def read_range(self, uri: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (one OPEN with offset and length): a Parquet footer
        is read without the data before it."""
        def read(client: Any) -> bytes:
            with client.read(self.path(uri), offset=offset, length=length) as reader:
                return reader.read()
        return self._call("read", uri, read)

    def is_dir(self, uri: str) -> bool:
        status = self._call("status", uri, lambda c: c.status(self.path(uri), strict=False))
        return bool(status) and status.get("type") == "DIRECTORY"

    def makedirs(self, uri: str) -> None:
        self._call("mkdir", uri, lambda c: c.makedirs(self.path(uri)))

    def list_names(self, uri: str) -> list[str]:
        return list(self._call("list", uri, lambda c: c.list(self.path(uri))))

    def sizes(self, uris: Sequence[str]) -> dict[str, int]:
        """One LISTSTATUS per directory, not one call per file."""
        sizes: dict[str, int] = {}
        by_dir: dict[str, list[str]] = {}
        for uri in uris:
            by_dir.setdefault(uri.rsplit("/", 1)[0], []).append(uri)
        for directory, members in by_dir.items():
            listed = self.file_sizes(directory)
            for uri in members:
                size = listed.get(uri.rsplit("/", 1)[1])
                if size is None:
                    raise TransferError(f"{uri} is missing")
                sizes[uri] = size
        return sizes

    def move(self, source: str, target: str) -> None:
        self._call("rename", source, lambda c: c.rename(self.path(source), self.path(target)))

    def create_exclusive(self, uri: str, text: str) -> bool:
        """CREATE with overwrite=false: the NameNode creates the file only if it is absent."""
        try:
            self._call("create", uri, lambda c: c.write(self.path(uri), data=text.encode("utf-8"), overwrite=False))
        except TransferError:
            if self.read_text(uri) is None:
                raise
            return False
        return True

    def write_text(self, uri: str, text: str) -> None:
        self._call("create", uri, lambda c: c.write(self.path(uri), data=text.encode("utf-8"), overwrite=True))

    def touch(self, uri: str) -> None:
        now = int(time.time() * 1000)
        self._call("settimes", uri, lambda c: c.set_times(self.path(uri), modification_time=now))

    def read_text(self, uri: str) -> str | None:
        if not self.exists(uri):
            return None

        def read(client: Any) -> bytes:
            with client.read(self.path(uri)) as reader:
                return reader.read()
        return self._call("read", uri, read).decode("utf-8", "replace")

    def modified(self, uri: str) -> dict[str, float]:
        if not self.exists(uri):
            return {}
        listed = self._call("list", uri, lambda c: c.list(self.path(uri), status=True))
        return {name: int(status["modificationTime"]) / 1000 for name, status in listed}

    def remove(self, uris: Sequence[str], *, recursive: bool = False) -> None:
        for uri in uris:
            self._call("delete", uri, lambda c: c.delete(self.path(uri), recursive=recursive))
