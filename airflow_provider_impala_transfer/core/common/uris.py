"""Target locations as full URIs, checked before anything is copied.

The seed tool passed ``cluster2.example.com/target/path`` to distcp: without a scheme Hadoop reads
that as a *relative path on the source cluster* and quietly copies into the wrong place. Here a
location is always ``scheme://authority/path``; the seed's (cluster, path) pair is turned into
``hdfs://cluster/path``, anything else without a scheme is refused with the form to write.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from urllib.parse import urlsplit

from airflow_provider_impala_transfer.core.common.secrets import url_passwords
from airflow_provider_impala_transfer.core.errors import ConfigError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A location quoted in SQL (LOCATION '...') must not be able to end or escape its literal.
_SQL_UNSAFE = set("'\"`\\")
# Hadoop's Path splits on ':' inside a path component and reads a leading '-' as an option.
_HADOOP_UNSAFE_COMPONENT = re.compile(r"^-|:")


def check_path_text(value: str, field: str) -> str:
    """Refuse control characters and relative segments; return ``value``."""
    if _CONTROL.search(value):
        raise ConfigError(field, f"{value!r} contains a control character", "remove it")
    parts = value.split("/")
    if ".." in parts or "." in parts[1:]:
        raise ConfigError(field, f"{value!r} contains a '.' or '..' segment",
                          "give the location without relative segments")
    return value


def normalize_uri(value: object, field: str, *, cluster: str | None = None,
                  schemes: tuple[str, ...] | None = None) -> str:
    """Return ``value`` as a full URI without a trailing slash.

    ``cluster`` (the seed's ``--target-cluster``) turns an absolute path into
    ``hdfs://<cluster><path>``. A value such as ``cluster2.example.com/target/path`` is refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, "is empty", "give a full URI such as hdfs://namenode:8020/data/target")
    value = value.strip()
    check_path_text(value, field)
    if not _SCHEME.match(value):
        if value.startswith("/") and cluster:
            value = f"hdfs://{_cluster_authority(cluster)}{value}"
        elif value.startswith("/"):
            raise ConfigError(field, f"{value!r} has no scheme, so it would mean a different place "
                              "on every machine", f"write hdfs://<namenode>{value} or file://{value}")
        else:
            host, _, rest = value.partition("/")
            raise ConfigError(field, f"{value!r} has no scheme; Hadoop would read it as a relative "
                              "path on the source cluster",
                              f"write hdfs://{host}/{rest} (add :8020 if your namenode needs a port)")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if schemes and scheme not in schemes:
        raise ConfigError(field, f"{value!r} uses {scheme}://, which this method cannot write",
                          f"use one of {', '.join(s + '://' for s in schemes)}")
    if scheme in ("hdfs", "viewfs", "webhdfs", "swebhdfs") and not parts.netloc and not parts.path.startswith("/"):
        raise ConfigError(field, f"{value!r} has no path", "write hdfs://namenode:8020/absolute/path")
    if parts.query or parts.fragment:
        raise ConfigError(field, f"{value!r} has a query or fragment", "remove the '?'/'#' part")
    return value.rstrip("/") if parts.path not in ("", "/") else value


def directory_uri(value: object, field: str) -> str:
    """A full URI of a directory (not a filesystem's root) that is safe inside a SQL string
    literal, as a table's ``LOCATION '...'`` needs: no quotes or backslashes, no empty segment, no
    password (the metastore and every statement logged would show it)."""
    uri = normalize_uri(value, field)
    if url_passwords(uri):  # also one redacted in XCom: the table would point at the wrong place
        raise ConfigError(field, f"{uri!r} holds a password, which the table's LOCATION would show to every "
                          "reader of the metastore and every log", "give the location without it and the credentials "
                          "through the store's connection or environment")
    bad = sorted(set(uri) & _SQL_UNSAFE)
    if bad:
        raise ConfigError(field, f"{uri!r} holds {', '.join(map(repr, bad))}",
                          "give a URI without quotes or backslashes")
    parts = urlsplit(uri)
    path = parts.path.rstrip("/")
    if not path:
        raise ConfigError(field, f"{uri!r} names no directory",
                          "give the table's own directory, e.g. hdfs://namenode:8020/warehouse/x")
    if "" in path.split("/")[1:]:
        raise ConfigError(field, f"{uri!r} holds an empty path segment", "give a normalized absolute path")
    return f"{parts.scheme}://{parts.netloc}{path}"


def _cluster_authority(cluster: str) -> str:
    cluster = cluster.strip()
    if _SCHEME.match(cluster):
        parts = urlsplit(cluster)
        if parts.path not in ("", "/"):
            raise ConfigError("target_cluster", f"{cluster!r} has a path",
                              "give the namenode (host[:port] or nameservice) only")
        return parts.netloc
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?", cluster):
        raise ConfigError("target_cluster", f"{cluster!r} is not a host[:port] or nameservice",
                          "for example cluster2.example.com:8020")
    return cluster


# Hadoop's shell (FsShell) expands these in every path it is given, -rm and -mv included: a
# directory named a[12] would address a1 and a2 instead.
HADOOP_GLOB = frozenset("*?[]{}\\")


def check_hadoop_path(value: str, field: str) -> str:
    """A location the Hadoop shell is given: no glob characters, no password (it would be on the
    tools' command lines, which every user of the machine can read); return ``value``."""
    if url_passwords(value):
        raise ConfigError(field, f"{value!r} holds a password, which would be on the Hadoop tools' command lines",
                          "give the location without it: Hadoop authenticates through its own configuration "
                          "(Kerberos, delegation tokens)")
    bad = sorted(set(value) & HADOOP_GLOB)
    if bad:
        raise ConfigError(field, f"{value!r} holds {', '.join(map(repr, bad))}, which Hadoop's shell reads "
                          "as a glob pattern (a delete or rename would address other paths)",
                          "name the directory without * ? [ ] { } or backslashes")
    return value


def check_component(name: str, field: str) -> str:
    """A single path component that every method writes literally (no shell ever sees it)."""
    if not name or "/" in name or name in (".", "..") or _CONTROL.search(name):
        raise ConfigError(field, f"{name!r} is not a single path component", "use a plain name")
    if _HADOOP_UNSAFE_COMPONENT.search(name):
        raise ConfigError(field, f"{name!r} starts with '-' or contains ':', which Hadoop's "
                          "shell cannot address", "rename it")
    return name


def run_key(run_id: str) -> str:
    """A run id (or DAG id) as a path component every store accepts (Hadoop rejects ':' in names).

    Injective: an id that had to change keeps a hash of its original, so ``a:b`` and ``a_b`` (or
    ``scheduled__...+00:00`` and ``scheduled__..._00_00``) never share a directory. A key always
    starts with a letter or digit (:data:`RUN_KEY`): never ``.``, ``..`` or empty (Airflow accepts
    ``.`` as a manual run id, and ``<dir>/.`` is the whole directory), never hidden from readers
    (``_x``, ``.x``), never read as an option (``-x``)."""
    key = re.sub(r"[^A-Za-z0-9._=-]", "_", run_id)
    if key == run_id and RUN_KEY.fullmatch(key):
        return key
    plain = key.lstrip("._=-") or "run"
    return f"{plain}-{hashlib.sha256(run_id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


# What :func:`run_key` returns, and nothing else: sweeps remove only names that match it exactly.
RUN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]*")


def join(base: str, *parts: str) -> str:
    """Join path components onto a URI or path without losing its scheme/authority."""
    return posixpath.join(base.rstrip("/") or "/", *parts)


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme.lower() if _SCHEME.match(uri) else ""


HADOOP_SCHEMES = ("hdfs", "viewfs")  # what the Hadoop shell addresses on a cluster


def is_hadoop_uri(uri: str) -> bool:
    """A location on a Hadoop cluster (as opposed to this machine's disk or an object store)."""
    return scheme_of(uri) in HADOOP_SCHEMES


def local_path(uri: str) -> str | None:
    """The local filesystem path of a ``file://`` URI (or a plain absolute path), else None."""
    if not _SCHEME.match(uri):
        return uri if uri.startswith("/") else None
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        return parts.path
    return None
