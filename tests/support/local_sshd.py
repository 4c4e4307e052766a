"""A real OpenSSH server on 127.0.0.1 for the scp/sftp transfer tests.

Runs the system's ``/usr/sbin/sshd`` (Debian: ``openssh-server``) with its own configuration, host
key, user key and ``known_hosts`` under ``workdir``: key login only, for the current user, no PAM,
no password. Started as its own process group and stopped by that PID, never by name.
"""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.support.processes import free_port, stop_process_group, tail

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so it must be started by absolute path
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege-separation dir


@dataclass
class LocalSshd:
    """One sshd on ``127.0.0.1:port`` accepting ``user`` with ``key_file``; host key in ``known_hosts``."""

    workdir: Path
    port: int | None = None
    host: str = "127.0.0.1"
    user: str = field(default_factory=getpass.getuser)
    pid: int | None = None

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        if '"' in str(self.workdir) or "\n" in str(self.workdir):
            raise ValueError(f"sshd_config cannot quote this workdir: {self.workdir!r}")

    @property
    def key_file(self) -> Path:
        return self.workdir / "id_ed25519"

    @property
    def host_key_file(self) -> Path:
        return self.workdir / "ssh_host_ed25519_key"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def config_path(self) -> Path:
        return self.workdir / "sshd_config"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "sshd.pid"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...``: what a connection's ``host_key`` extra holds."""
        key_type, key_data = self.host_key_file.with_suffix(".pub").read_text().split()[:2]
        return f"{key_type} {key_data}"

    def start(self, timeout: float = 30.0) -> LocalSshd:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        _ensure_privsep_dir()
        for key in (self.host_key_file, self.key_file):
            if not key.exists():
                keygen(key)
        (self.workdir / "authorized_keys").write_text(self.key_file.with_suffix(".pub").read_text())
        self.config_path.write_text(self._config())
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches every sshd it forked
            )
        self.pid = proc.pid
        try:
            self._wait_until_ready(proc, timeout)
        except BaseException:
            self.stop()
            raise
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {self.host_public_key}\n")
        return self

    def _config(self) -> str:
        def q(path: Path) -> str:
            return f'"{path}"'

        return "\n".join([
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            f"HostKey {q(self.host_key_file)}",
            f"PidFile {q(self.pid_file)}",
            f"AuthorizedKeysFile {q(self.workdir / 'authorized_keys')}",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",  # tests run as root in containers; key login only
            "StrictModes no",  # the tmp workdir's permissions are not sshd's business here
            f"AllowUsers {self.user}",
            "Subsystem sftp internal-sftp",  # scp (OpenSSH >= 9) and fsspec's sftp both need it
            "MaxStartups 100",  # parallel scp transfers must not be dropped as a connection flood
            "MaxSessions 50",
            "PrintMotd no",
            "UseDNS no",
            "LogLevel ERROR",
            "",
        ])

    def _wait_until_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        """The port accepting is not enough: wait until a real key login runs a command."""
        # known_hosts is not written yet, so this probe pins the key it expects by itself.
        probe_known_hosts = self.workdir / "known_hosts.probe"
        probe_known_hosts.write_text(f"[{self.host}]:{self.port} {self.host_public_key}\n")
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited with code {proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    pass
                result = subprocess.run(self.ssh_command(probe_known_hosts, "true"), stdin=subprocess.DEVNULL,
                                        capture_output=True, timeout=15, check=False)
                if result.returncode == 0:
                    probe_known_hosts.unlink(missing_ok=True)
                    return
                last_error = result.stderr.decode("utf-8", "replace").strip()
            except (OSError, subprocess.TimeoutExpired) as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"sshd on {self.host}:{self.port} did not accept a key login within "
                           f"{timeout:.0f}s ({last_error}); log: {self.log_tail()}")

    def ssh_command(self, known_hosts: Path | None = None, *remote_command: str) -> list[str]:
        """``ssh`` argv for this server, ignoring the user's ~/.ssh/config; for tests and probes."""
        return ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key_file),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={known_hosts or self.known_hosts}", "-o", "ConnectTimeout=5",
                "-T", f"{self.user}@{self.host}", *remote_command]

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines) or "(empty log)"

    def airflow_connection(self) -> dict:
        """An Airflow ``ssh`` connection to this server, as the scp method reads it."""
        return {"conn_type": "ssh", "host": self.host, "port": self.port, "login": self.user,
                "extra": {"key_file": str(self.key_file), "known_hosts": str(self.known_hosts)}}

    def airflow_connection_json(self) -> str:
        """For ``AIRFLOW_CONN_<ID>`` (Airflow accepts JSON there); holds paths, no secret."""
        return json.dumps(self.airflow_connection())

    def airflow_connection_uri(self) -> str:
        extra = self.airflow_connection()["extra"]
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in extra.items())
        return f"ssh://{quote(self.user, safe='')}@{self.host}:{self.port}/?{query}"

    def paramiko_host_key_policy(self):
        """A paramiko policy accepting this server's host key and nothing else (no trust on first use)."""
        import paramiko

        expected = self.host_public_key.split()[1]

        class PinnedHostKey(paramiko.MissingHostKeyPolicy):
            def missing_host_key(self, client, hostname, key):
                if key.get_base64() != expected:
                    raise paramiko.SSHException(f"host key of {hostname} is not the local sshd's")

        return PinnedHostKey()

    def fsspec_sftp_options(self) -> dict:
        """For ``fsspec.filesystem("sftp", **options)``: this key only, this host key only."""
        return {"host": self.host, "port": self.port, "username": self.user,
                "key_filename": str(self.key_file), "look_for_keys": False, "allow_agent": False,
                "host_key_policy": self.paramiko_host_key_policy()}

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is None:
            return
        stop_process_group(self.pid, timeout)
        self.pid = None
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalSshd:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def keygen(path: Path, passphrase: str = "") -> None:
    """A new ed25519 key pair at ``path`` (and ``path.pub``), mode 0600, protected by ``passphrase`` if given."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "local-sshd", "-f", str(path)],
                   stdin=subprocess.DEVNULL, capture_output=True, check=True)


def _ensure_privsep_dir() -> None:
    if PRIVSEP_DIR.is_dir():
        return
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    except PermissionError:
        raise RuntimeError(f"sshd needs {PRIVSEP_DIR}: create it once as root "
                           f"(`sudo mkdir -m 0755 {PRIVSEP_DIR}`)") from None
