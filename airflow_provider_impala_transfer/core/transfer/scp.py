"""OpenSSH ``scp``/``ssh`` command lines for the last-resort method, in one place.

Host-key checking stays on: ``StrictHostKeyChecking=yes`` against a known_hosts file unless the
user opts into ``accept-new`` (trust on first use). ``BatchMode=yes`` makes a missing key fail at
once instead of waiting for a password prompt; passwords are never supported, because they would
have to be typed or put on a command line.

Remote paths: modern scp (OpenSSH >= 9) talks SFTP, so scp's target path is not shell-parsed;
commands run through ``ssh`` *are* parsed by the remote shell, so every argument is quoted.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_impala_transfer.core.errors import ConfigError

HOST_KEY_CHECKING = ("yes", "accept-new")


@dataclass(frozen=True)
class ScpTarget:
    host: str
    remote_path: str
    user: str | None = None
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None
    host_key_checking: str = "yes"
    bandwidth_kbit: int | None = None
    connect_timeout: int = 20
    scp_bin: str = "scp"
    ssh_bin: str = "ssh"

    def __post_init__(self) -> None:
        if not self.host or not str(self.host).strip():
            raise ConfigError("scp host", "is not set", "set the host of the ssh connection (ssh_conn_id) "
                              "or scp_target_host")
        if any(c in self.host for c in " @/'\"\\\n") or self.host.startswith("-"):
            raise ConfigError("scp host", f"{self.host!r} is not a host name", "give host or IP only")
        if self.user is not None and (not self.user or self.user.startswith("-") or any(c in self.user for c in " @:/\n")):
            raise ConfigError("scp user", f"{self.user!r} is not a user name", "fix the connection's login")
        if not self.remote_path or not self.remote_path.startswith("/"):
            raise ConfigError("scp_target_path", f"{self.remote_path!r} is not an absolute path",
                              "give the target directory on the remote host, e.g. /data/incoming")
        if self.host_key_checking not in HOST_KEY_CHECKING:
            raise ConfigError("strict_host_key_checking", f"{self.host_key_checking!r} is not allowed",
                              "use 'yes' (default, needs known_hosts) or 'accept-new' (trust on first use)")
        if self.bandwidth_kbit is not None and int(self.bandwidth_kbit) <= 0:
            raise ConfigError("scp bandwidth_kbit", f"{self.bandwidth_kbit} is not > 0", "give Kbit/s or leave unset")

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    def _options(self, port_flag: str) -> list[str]:
        options = [port_flag, str(self.port),
                   "-o", "LogLevel=ERROR",  # errors (host key, auth) reach the task log; no banners
                   "-o", "BatchMode=yes",
                   "-o", f"StrictHostKeyChecking={self.host_key_checking}",
                   "-o", f"ConnectTimeout={self.connect_timeout}",
                   "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.known_hosts:
            options += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.key_file:
            options += ["-i", self.key_file, "-o", "IdentitiesOnly=yes"]
        return options

    def scp_argv(self, sources: Sequence[str], remote_dir: str) -> list[str]:
        limit = ["-l", str(int(self.bandwidth_kbit))] if self.bandwidth_kbit else []
        return [self.scp_bin, "-p", *self._options("-P"), *limit, "--", *sources,
                f"{self.destination}:{remote_dir}/"]

    def ssh_argv(self, *remote_command: str) -> list[str]:
        """``ssh host -- <command>``: each word quoted for the remote shell."""
        return [self.ssh_bin, *self._options("-p"), "-T", "--", self.destination,
                " ".join(shlex.quote(word) for word in remote_command)]
