"""scp/ssh targets from an Airflow connection of type ``ssh`` (the SSH provider's fields).

host, port, login from the connection; extras ``key_file`` or ``private_key`` (key text, written
to a 0600 temporary file for the task's lifetime), ``known_hosts`` (a file) or ``host_key`` (the
server's public key), ``strict_host_key_checking`` (``yes`` default, ``accept-new`` opt-in),
``bandwidth_kbit``, ``target_path`` and ``connect_timeout``. Password logins are refused: scp in
batch mode cannot use them without putting them on a command line.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget


class ScpHook(BaseHook):
    conn_name_attr = "ssh_conn_id"
    default_conn_name = "ssh_default"
    conn_type = "ssh"
    hook_name = "SSH"

    def __init__(self, ssh_conn_id: str | None = default_conn_name, *, scp_bin: str = "scp", ssh_bin: str = "ssh",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ssh_conn_id = ssh_conn_id
        self.scp_bin, self.ssh_bin = scp_bin, ssh_bin
        self._tempdir: tempfile.TemporaryDirectory | None = None

    def target(self, *, remote_path: str | None = None, host: str | None = None, **overrides: Any) -> ScpTarget:
        conn = self.get_connection(self.ssh_conn_id) if self.ssh_conn_id else None
        extras = dict(conn.extra_dejson) if conn else {}
        if conn and conn.password and not (extras.get("key_file") or extras.get("private_key")):
            raise ConfigError("ssh_conn_id", f"connection {self.ssh_conn_id!r} has a password and no key",
                              "add key_file or private_key to its extras; passwords cannot be used in batch mode")
        key_file = extras.get("key_file")
        if extras.get("private_key"):
            from airflow.sdk.log import mask_secret

            mask_secret(extras["private_key"])
            key_file = self._write_private("id_key", extras["private_key"].rstrip("\n") + "\n")
        known_hosts = extras.get("known_hosts")
        if extras.get("host_key"):
            known_hosts = self._write_private("known_hosts", _known_hosts_line(host or conn.host, conn.port or 22, extras["host_key"]))
        settings: dict[str, Any] = {
            "host": host or (conn.host if conn else None),
            "port": int(conn.port) if conn and conn.port else 22,
            "user": (conn.login or None) if conn else None,
            "key_file": key_file,
            "known_hosts": known_hosts,
            "host_key_checking": str(extras.get("strict_host_key_checking", "yes")).lower(),
            "bandwidth_kbit": int(extras["bandwidth_kbit"]) if extras.get("bandwidth_kbit") else None,
            "connect_timeout": int(extras.get("connect_timeout", 20)),
            "remote_path": remote_path or extras.get("target_path"),
            "scp_bin": self.scp_bin, "ssh_bin": self.ssh_bin,
        }
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return ScpTarget(**settings)

    def _write_private(self, name: str, text: str) -> str:
        if self._tempdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="impala-transfer-ssh-")
        path = os.path.join(self._tempdir.name, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        return path

    def close(self) -> None:
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None


def _known_hosts_line(host: str, port: int, host_key: str) -> str:
    key = host_key.strip()
    if " " not in key:  # the SSH provider stores the base64 part only for ssh-rsa keys
        key = f"ssh-rsa {key}"
    name = host if int(port) == 22 else f"[{host}]:{port}"
    return f"{name} {key}\n"
