"""OpenSSH ``scp``/``ssh`` command lines for the last-resort method, in one place.

Host-key checking stays on: ``StrictHostKeyChecking=yes`` against a known_hosts file unless the
user opts into ``accept-new`` (trust on first use). ``BatchMode=yes`` makes a missing key fail at
once instead of waiting for a password prompt; passwords are never supported, because they would
have to be typed or put on a command line.

Remote paths: commands run through ``ssh`` are parsed by the remote shell, so every word of them
is quoted. scp's own target path is another matter. The legacy SCP protocol (the only one before
OpenSSH 8.7, the default before 9.0, e.g. RHEL 8's OpenSSH 8.0) sends it to the remote shell as
``scp -t <path>``, unquoted: ``$(...)``, ``;`` or a space in it run commands or split it on the
remote host. The SFTP protocol sends it as a literal name. So :meth:`ScpTarget.scp_argv` forces
SFTP with ``scp -s`` wherever the scp binary has that flag (OpenSSH >= 8.7; detected once per
binary from its usage text, see :func:`scp_has_sftp_flag`), and otherwise refuses a remote
directory with anything but letters, digits and ``/ . _ - + = : @ , %``, before any command
runs. With ``-s`` a target whose sshd has no SFTP subsystem fails, instead of silently falling
back to the protocol that lets the remote shell read the path.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_impala_transfer.core.common.uris import check_path_text
from airflow_provider_impala_transfer.core.common.values import port_number, positive_int
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.commands import child_environment

HOST_KEY_CHECKING = ("yes", "accept-new")

# What no POSIX shell gives a meaning to inside a word that starts with '/': legacy scp's remote
# path may hold only these (and letters/digits of any script).
_SHELL_INERT = frozenset("/._-+=:@,%")
_USAGE_FLAGS = re.compile(r"usage:\s*\S*scp\s+\[-([0-9A-Za-z]+)\]")
_PROBE_TIMEOUT = 10.0


def scp_has_sftp_flag(scp_bin: str) -> bool:
    """Whether this scp has ``-s`` (use the SFTP protocol): OpenSSH >= 8.7. Asked once per binary
    (by its resolved path and modification time) from the usage text scp prints when run without
    arguments, e.g. ``usage: scp [-346ABCOpqRrsTv] ...``. A binary that is missing, hangs or
    prints something else counts as legacy-only, so remote paths are then checked strictly."""
    found = shutil.which(scp_bin)
    if not found:
        return False
    try:
        stamp = os.stat(found).st_mtime_ns
    except OSError:
        return False
    return _probe_sftp_flag(os.path.realpath(found), stamp)


@functools.lru_cache(maxsize=32)
def _probe_sftp_flag(path: str, stamp: int) -> bool:  # stamp: a replaced binary is asked again
    try:
        result = subprocess.run([path], stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT,
                                env=child_environment(), check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    match = _USAGE_FLAGS.search(result.stderr.decode("utf-8", "replace") + result.stdout.decode("utf-8", "replace"))
    return bool(match and "s" in match.group(1))


def check_key_file(path: str, field: str) -> str:
    """``path`` if ssh can use it as a private key in batch mode, else a ConfigError saying why:
    the file is missing or unreadable; other users may read it (ssh then refuses it with
    "UNPROTECTED PRIVATE KEY FILE" and the login fails as "Permission denied"); or it is protected
    by a passphrase, which batch mode cannot ask for, and no ssh-agent (``SSH_AUTH_SOCK``) holds it."""
    try:
        info = os.stat(path)
        with open(path, "rb") as stream:
            text = stream.read(64 * 1024)
    except FileNotFoundError:
        raise ConfigError(field, f"{path!r} does not exist",
                          "give the path of the private key on this machine") from None
    except OSError as exc:
        raise ConfigError(field, f"cannot read {path!r} ({exc.strerror})",
                          "give a private key file that this user can read") from None
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        raise ConfigError(field, f"{path!r} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}), "
                          "so ssh refuses to use it", f"chmod 600 {shlex.quote(path)}")
    if _passphrase_protected(text) and not os.environ.get("SSH_AUTH_SOCK"):
        raise ConfigError(field, f"{path!r} is protected by a passphrase, which ssh cannot ask for in batch mode",
                          "use an unencrypted deploy key (restricted in the target's authorized_keys), or load "
                          "this key into an ssh-agent and set SSH_AUTH_SOCK")
    return path


_OPENSSH_KEY = re.compile(rb"-----BEGIN OPENSSH PRIVATE KEY-----(.*?)-----END", re.S)
_OPENSSH_MAGIC = b"openssh-key-v1\0"


def _passphrase_protected(text: bytes) -> bool:
    """True for an encrypted PEM key, or an OpenSSH key whose cipher is not ``none``."""
    if b"Proc-Type: 4,ENCRYPTED" in text or b"BEGIN ENCRYPTED PRIVATE KEY" in text:
        return True
    match = _OPENSSH_KEY.search(text)
    if not match:
        return False
    try:
        blob = base64.b64decode(b"".join(match.group(1).split()))
    except ValueError:
        return False
    if not blob.startswith(_OPENSSH_MAGIC):
        return False
    start = len(_OPENSSH_MAGIC) + 4  # the cipher's name, after its 32-bit length
    length = int.from_bytes(blob[len(_OPENSSH_MAGIC):start], "big")
    return blob[start:start + length] != b"none"


def shell_inert(path: str) -> bool:
    """True if no shell would read anything but the literal characters of ``path``."""
    return bool(path) and all(c.isalnum() or c in _SHELL_INERT for c in path) and path.isprintable()


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
        check_path_text(self.remote_path, "scp_target_path")
        object.__setattr__(self, "port", port_number(self.port, "scp port"))
        if self.host_key_checking not in HOST_KEY_CHECKING:
            raise ConfigError("strict_host_key_checking", f"{self.host_key_checking!r} is not allowed",
                              "use 'yes' (default, needs known_hosts) or 'accept-new' (trust on first use)")
        if self.bandwidth_kbit is not None and int(self.bandwidth_kbit) <= 0:
            raise ConfigError("scp bandwidth_kbit", f"{self.bandwidth_kbit} is not > 0", "give Kbit/s or leave unset")
        object.__setattr__(self, "connect_timeout", positive_int(self.connect_timeout, "scp connect_timeout"))

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    @property
    def sftp_protocol(self) -> bool:
        """True if scp is told to use SFTP (``-s``), which never lets a shell read the path."""
        return scp_has_sftp_flag(self.scp_bin)

    def check_remote_dir(self, remote_dir: str) -> str:
        """``remote_dir`` if scp can write into it as the literal path: always with ``-s``; with
        a legacy-only scp only when the remote shell would read nothing but its characters."""
        if not self.sftp_protocol and not shell_inert(remote_dir):
            raise ConfigError(
                "scp_target_path",
                f"{remote_dir!r} holds characters the remote shell interprets, and {self.scp_bin} has no -s "
                "(OpenSSH < 8.7 speaks only the legacy SCP protocol, which hands the remote path to that shell)",
                "use a remote directory of letters, digits and / . _ - + = : @ , % only, or install "
                "OpenSSH >= 8.7 on the worker (or point scp_bin at one) so scp -s sends the path literally")
        return remote_dir

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
        """``scp -p [-s] ... -- <sources> host:<remote_dir>/``; refuses a remote directory the
        remote shell would interpret when scp cannot be told to use SFTP (ConfigError)."""
        self.check_remote_dir(remote_dir)
        protocol = ["-s"] if self.sftp_protocol else []
        limit = ["-l", str(int(self.bandwidth_kbit))] if self.bandwidth_kbit else []
        return [self.scp_bin, "-p", *protocol, *self._options("-P"), *limit, "--", *sources,
                f"{self.destination}:{remote_dir}/"]

    def ssh_argv(self, *remote_command: str) -> list[str]:
        """``ssh host -- <command>``: each word quoted for the remote shell."""
        return [self.ssh_bin, *self._options("-p"), "-T", "--", self.destination,
                " ".join(shlex.quote(word) for word in remote_command)]
