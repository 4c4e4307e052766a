"""fsspec filesystems from an Airflow connection of type ``fsspec``, a URL, or a ready instance.

The connection's extras are ``{"protocol": "s3", "storage_options": {...}}`` (or the options
flat beside ``protocol``); credentials belong there, not in DAG code, and every value under a
secret-looking key is masked in task logs. Host/login/password, when set, become the options
that protocol calls them (``host``/``username``/``password`` for sftp, ``key``/``secret`` for s3).
"""

from __future__ import annotations

from typing import Any

import fsspec
from airflow.sdk import BaseHook

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination, fsspec_destination
from airflow_provider_impala_transfer.hooks.masking import mask_in_task_logs

_LOGIN_NAMES = {"s3": ("key", "secret"), "s3a": ("key", "secret"), "sftp": ("username", "password"),
                "ssh": ("username", "password"), "ftp": ("username", "password"),
                "abfs": ("account_name", "account_key"), "az": ("account_name", "account_key")}


class FsspecHook(BaseHook):
    conn_name_attr = "fsspec_conn_id"
    default_conn_name = "fsspec_default"
    conn_type = "fsspec"
    hook_name = "fsspec filesystem"

    def __init__(self, fsspec_conn_id: str | None = None, *, filesystem: fsspec.AbstractFileSystem | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fsspec_conn_id = fsspec_conn_id
        self.filesystem = filesystem

    def storage_options(self) -> tuple[str | None, dict[str, Any]]:
        if not self.fsspec_conn_id:
            return None, {}
        conn = self.get_connection(self.fsspec_conn_id)
        extras = dict(conn.extra_dejson)
        protocol = extras.pop("protocol", None)
        options = dict(extras.pop("storage_options", None) or {})
        options.update(extras)
        login_name, password_name = _LOGIN_NAMES.get(protocol or "", ("username", "password"))
        if conn.host:
            options.setdefault("host", conn.host)
        if conn.port:
            options.setdefault("port", conn.port)
        if conn.login:
            options.setdefault(login_name, conn.login)
        if conn.password:
            options.setdefault(password_name, conn.password)
        mask_in_task_logs(options)
        return protocol, options

    def options_for(self, url: str, field: str) -> tuple[str | None, dict[str, Any]]:
        """The connection's protocol and options for ``url`` (named ``field`` in errors), refused
        when the connection is for another protocol than the URL's."""
        protocol, options = self.storage_options()
        scheme = fsspec.utils.get_protocol(url)
        if protocol and protocol != scheme and "://" in url:
            raise ConfigError(field, f"{url!r} is {scheme}:// but connection {self.fsspec_conn_id!r} is for "
                              f"{protocol}://", "make them agree")
        return protocol, options

    def destination(self, target_url: str) -> FsspecDestination:
        if self.filesystem is not None:
            return FsspecDestination(fs=self.filesystem, root=self.filesystem._strip_protocol(target_url))
        protocol, options = self.options_for(target_url, "target_path")
        if protocol and "://" not in target_url:
            target_url = f"{protocol}://{target_url.lstrip('/')}" if protocol not in ("file", "local") else target_url
        where = f"connection {self.fsspec_conn_id!r}" if self.fsspec_conn_id else "fsspec_conn_id (none is given)"
        return fsspec_destination(target_url, options, options_name=where)
