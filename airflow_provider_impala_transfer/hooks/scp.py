"""scp/ssh targets from an Airflow connection of type ``ssh`` (the SSH provider's fields).

Host, port and login come from the connection. Extras, with the names and meanings of the SSH
provider's ``SSHHook``:

* ``key_file`` (a path on the worker: it must exist, be readable by no one else and need no
  passphrase, as ssh in batch mode demands) **or** ``private_key`` (the key's text) - not both;
* ``host_key`` (the server's public key, ``ssh-ed25519 AAAA...``, or the base64 part alone for
  an RSA key) or ``known_hosts`` (a file);
* ``no_host_key_check``: ``true`` means ``StrictHostKeyChecking=accept-new`` here, never ``no``.
  ``SSHHook`` then accepts any key, also a *changed* one, i.e. whoever sits between the worker
  and the host. ``accept-new`` trusts an unknown host on first use, records its key and refuses
  a changed key afterwards; refusing ``StrictHostKeyChecking=no`` altogether is a decision of this
  project. Unlike ``SSHHook``, leaving it unset means the key IS checked (``yes``). With a
  ``host_key`` it must not be true (``SSHHook`` refuses that too);
* ``conn_timeout`` (seconds): ssh's ``ConnectTimeout`` (this provider's ``connect_timeout``
  extra says the same; default 20 s);
* ``private_key_passphrase`` is refused: OpenSSH's ``ssh``/``scp`` read a passphrase only from a
  terminal or an askpass program, so in batch mode it would have to travel on a command line or
  in a child's environment. Use an unencrypted deploy key (0600 file, restricted in the target's
  ``authorized_keys``) or load the key into an ssh-agent on the worker (``SSH_AUTH_SOCK``);
* ``allow_host_key_change`` ``true`` is refused for the reason ``no`` is.

This provider's own extras: ``strict_host_key_checking`` (``yes``/``accept-new``),
``bandwidth_kbit``, ``target_path``, ``connect_timeout``. Password logins are refused: scp in
batch mode cannot use them without putting them on a command line.

``private_key`` and ``host_key`` are written to 0600 files in a private (0700) temporary
directory that exists exactly as long as the hook is open: use it as a context manager around
every command that uses the target (``with ScpHook(conn_id) as hook: ...``); leaving the block,
also by an error, removes the directory.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_impala_transfer.core.common.values import parse_bool, positive_int
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget, check_key_file

DEFAULT_CONNECT_TIMEOUT = 20
_AGENT_FIX = ("use an unencrypted deploy key (kept as key_file or private_key, restricted in the target's "
              "authorized_keys), or load the key into an ssh-agent on the worker and keep SSH_AUTH_SOCK set "
              "for the task; then remove private_key_passphrase")


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

    def __enter__(self) -> ScpHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def target(self, *, remote_path: str | None = None, host: str | None = None, **overrides: Any) -> ScpTarget:
        """The scp target of the connection. Key files it names live until :meth:`close`."""
        conn = self.get_connection(self.ssh_conn_id) if self.ssh_conn_id else None
        extras = dict(conn.extra_dejson) if conn else {}
        if conn and conn.password and not (extras.get("key_file") or extras.get("private_key")):
            raise ConfigError("ssh_conn_id", f"connection {self.ssh_conn_id!r} has a password and no key",
                              "add key_file or private_key to its extras; passwords cannot be used in batch mode")
        if extras.get("private_key_passphrase"):
            raise ConfigError("private_key_passphrase", f"is set in connection {self.ssh_conn_id!r}, but OpenSSH's "
                              "scp reads a passphrase only from a terminal, never from a task", _AGENT_FIX)
        if extras.get("key_file") and extras.get("private_key"):
            raise ConfigError("private_key", f"connection {self.ssh_conn_id!r} has both key_file and private_key",
                              "keep one of them")
        if parse_bool(extras.get("allow_host_key_change"), "allow_host_key_change"):
            raise ConfigError("allow_host_key_change", "is true, which would send files to whoever answers for the host",
                              "remove it; after a real key change put the new key in host_key or known_hosts")
        host = host or (conn.host if conn else None)
        port = int(conn.port) if conn and conn.port else 22
        settings: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": (conn.login or None) if conn else None,
            "key_file": extras.get("key_file") or None,
            "known_hosts": extras.get("known_hosts") or None,
            "host_key_checking": _host_key_checking(extras),
            "bandwidth_kbit": positive_int(extras["bandwidth_kbit"], "bandwidth_kbit") if extras.get("bandwidth_kbit")
            else None,
            "connect_timeout": _connect_timeout(extras),
            "remote_path": remote_path or extras.get("target_path"),
            "scp_bin": self.scp_bin, "ssh_bin": self.ssh_bin,
        }
        settings.update({k: v for k, v in overrides.items() if v is not None})
        ScpTarget(**settings)  # every setting checked before a secret is written anywhere
        if settings["key_file"]:
            check_key_file(settings["key_file"], "key_file")
        if extras.get("private_key"):
            from airflow.sdk.log import mask_secret

            mask_secret(extras["private_key"])
            settings["key_file"] = self._write_private("id_key", extras["private_key"].strip("\n") + "\n")
        if extras.get("host_key"):
            settings["known_hosts"] = self._write_private(
                "known_hosts", _known_hosts_line(settings["host"], settings["port"], extras["host_key"]))
        return ScpTarget(**settings)

    def _write_private(self, name: str, text: str) -> str:
        """``text`` in a 0600 file inside this hook's own 0700 directory."""
        if self._tempdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="impala-transfer-ssh-")  # mkdtemp: 0700
        path = os.path.join(self._tempdir.name, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)  # also if the file was there already
            out.write(text)
        return path

    @property
    def private_dir(self) -> str | None:
        """The directory holding the connection's key files while the hook is open (None if none)."""
        return self._tempdir.name if self._tempdir is not None else None

    def close(self) -> None:
        """Remove the key files (idempotent)."""
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None


def _host_key_checking(extras: dict[str, Any]) -> str:
    """``StrictHostKeyChecking`` from the SSH provider's ``no_host_key_check`` and this provider's
    ``strict_host_key_checking``; both may be given if they agree."""
    ours = str(extras["strict_host_key_checking"]).strip().lower() if extras.get("strict_host_key_checking") else None
    theirs = None
    if extras.get("no_host_key_check") is not None and extras.get("no_host_key_check") != "":
        skip = parse_bool(extras["no_host_key_check"], "no_host_key_check")
        if skip and extras.get("host_key"):
            raise ConfigError("no_host_key_check", "is true although host_key is given",
                              "remove no_host_key_check: the host key given is checked")
        theirs = "accept-new" if skip else "yes"
    if ours and theirs and ours != theirs:
        raise ConfigError("strict_host_key_checking", f"{ours!r} contradicts no_host_key_check ({theirs!r})",
                          "keep one of the two extras")
    return ours or theirs or "yes"


def _connect_timeout(extras: dict[str, Any]) -> int:
    """ssh's ``ConnectTimeout``: the SSH provider's ``conn_timeout`` or this provider's ``connect_timeout``."""
    given = {name: positive_int(extras[name], name) for name in ("conn_timeout", "connect_timeout")
             if extras.get(name) not in (None, "")}
    if len(set(given.values())) > 1:
        raise ConfigError("conn_timeout", f"{given['conn_timeout']} differs from connect_timeout "
                          f"{given['connect_timeout']}", "keep one of the two extras")
    return next(iter(given.values()), DEFAULT_CONNECT_TIMEOUT)


def _known_hosts_line(host: str, port: int, host_key: str) -> str:
    key = str(host_key).strip()
    if not key or "\n" in key or "\r" in key:
        raise ConfigError("host_key", "is not one public key on one line",
                          "give the server's key as 'ssh-ed25519 AAAA...' (ssh-keyscan prints it)")
    if " " not in key:  # the SSH provider stores the base64 part only for ssh-rsa keys
        key = f"ssh-rsa {key}"
    name = host if int(port) == 22 else f"[{host}]:{port}"
    return f"{name} {key}\n"
