"""A real MIT Kerberos KDC on 127.0.0.1 for the Kerberos tests (issue 19), without root.

Runs Debian's ``krb5kdc`` (package ``krb5-kdc``; ``kdb5_util`` and ``kadmin.local`` from it and
``krb5-admin-server``, ``kinit``/``klist`` from ``krb5-user``) with its own configuration under
``workdir``: ``KRB5_CONFIG`` (the clients' krb5.conf) and ``KRB5_KDC_PROFILE`` (the KDC's kdc.conf)
point there, the database and its stash file live there, and the KDC listens on one free port of
127.0.0.1 (UDP and TCP). Principals and keytabs are made with ``kadmin.local``, which opens the
database file directly: no kadmind runs. Started as its own process group (``krb5kdc -n``, no
fork) and stopped by that PID, never by name.

The clients' krb5.conf is what a test stack needs to behave the same on every machine: no DNS
(``dns_lookup_kdc``/``dns_lookup_realm`` false, ``rdns`` and ``dns_canonicalize_hostname`` false,
so a service principal's host is exactly the name the client used), TCP only
(``udp_preference_limit = 1``), FILE: caches, and the AES-SHA1 encryption types that Java 17's
Kerberos (the Hadoop and Spark JVMs) and MIT krb5 1.20 share. A principal may be given a short
``max_life`` (seconds), for the ticket-expiry tests.

More realms. :meth:`LocalKdc.add_realm` (or ``extra_realms=`` before start) makes the same
``krb5kdc`` process serve another realm too (``krb5kdc -r R1 -r R2``, each realm its own database
file and stash in kdc.conf; a running KDC is restarted on the same port, ~0.4 s), with a two-way
cross-realm trust to the first realm: ``krbtgt/R2@R1`` and ``krbtgt/R1@R2`` exist in BOTH databases
with the same keys (made from one random password that ``kadmin.local`` reads on stdin, so it is
on no command line), ``[capaths]`` says the trust is direct, and ``[domain_realm]`` maps the
realm's host names (``hosts=``) to it. ``localhost`` and the KDC's address stay in the first realm.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port, stop_process_group, tail

KRB5KDC = "/usr/sbin/krb5kdc"
KDB5_UTIL = "/usr/sbin/kdb5_util"
KADMIN_LOCAL = "/usr/sbin/kadmin.local"
ENCTYPES = "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96"
REALM = "IMPALA-TRANSFER.TEST"


def kerberos_installed() -> bool:
    return all(os.access(tool, os.X_OK) for tool in (KRB5KDC, KDB5_UTIL, KADMIN_LOCAL)) and bool(shutil.which("kinit"))


@dataclass
class LocalKdc:
    """One KDC for ``realm`` on ``127.0.0.1:port``; :meth:`env` is what a client needs."""

    workdir: Path
    realm: str = REALM
    port: int | None = None
    host: str = "127.0.0.1"
    pid: int | None = None
    ticket_lifetime: str = "1h"
    renew_lifetime: str = "1d"
    # More realms served by the same process, each trusting the first both ways: {realm: [host, ...]}
    # (the host names [domain_realm] maps to that realm). See :meth:`add_realm`.
    extra_realms: dict[str, list[str]] = field(default_factory=dict)
    _master: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()

    # --- files --------------------------------------------------------------------------------
    @property
    def krb5_conf(self) -> Path:
        return self.workdir / "krb5.conf"

    @property
    def kdc_conf(self) -> Path:
        return self.workdir / "kdc.conf"

    @property
    def database(self) -> Path:
        return self.workdir / "principal"

    @property
    def realms(self) -> list[str]:
        return [self.realm, *self.extra_realms]

    def _database(self, realm: str) -> Path:
        return self.database if realm == self.realm else self.workdir / f"principal-{realm}"

    def _stash(self, realm: str) -> Path:
        return self.workdir / ("stash" if realm == self.realm else f"stash-{realm}")

    @property
    def log_path(self) -> Path:
        return self.workdir / "kdc.log"

    def env(self, ccache: Path | None = None) -> dict[str, str]:
        """The environment a Kerberos client of this realm runs with (and its ticket cache, if given)."""
        env = {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}
        if ccache is not None:
            env["KRB5CCNAME"] = f"FILE:{ccache}"
        return env

    def _config(self) -> str:
        return "\n".join([
            "[libdefaults]",
            f"  default_realm = {self.realm}",
            "  dns_lookup_kdc = false",
            "  dns_lookup_realm = false",
            "  rdns = false",
            "  dns_canonicalize_hostname = false",
            "  udp_preference_limit = 1",
            f"  ticket_lifetime = {self.ticket_lifetime}",
            f"  renew_lifetime = {self.renew_lifetime}",
            "  forwardable = true",
            f"  default_tkt_enctypes = {ENCTYPES}",
            f"  default_tgs_enctypes = {ENCTYPES}",
            f"  permitted_enctypes = {ENCTYPES}",
            f"  default_ccache_name = FILE:{self.workdir / 'ccache-default'}",
            "",
            "[realms]",
            *(line for realm in self.realms for line in (
                f"  {realm} = {{",
                f"    kdc = {self.host}:{self.port}",  # TCP: udp_preference_limit = 1
                "  }")),
            "",
            "[domain_realm]",
            f"  localhost = {self.realm}",
            f"  {self.host} = {self.realm}",
            *(f"  {host} = {realm}" for realm, hosts in self.extra_realms.items() for host in hosts),
            "",
            *self._capaths(),
        ])

    def _capaths(self) -> list[str]:
        """Direct trust between the first realm and each other one (both ways): no realm between."""
        if not self.extra_realms:
            return []
        lines = ["[capaths]", f"  {self.realm} = {{", *(f"    {r} = ." for r in self.extra_realms), "  }"]
        for realm in self.extra_realms:
            lines += [f"  {realm} = {{", f"    {self.realm} = .", "  }"]
        return [*lines, ""]

    def _kdc_profile(self) -> str:
        supported = " ".join(f"{enctype}:normal" for enctype in ENCTYPES.split())
        return "\n".join([
            "[kdcdefaults]",
            f"  kdc_listen = {self.host}:{self.port}",
            f"  kdc_tcp_listen = {self.host}:{self.port}",
            "",
            "[realms]",
            *(line for realm in self.realms for line in (
                f"  {realm} = {{",
                f"    database_name = {self._database(realm)}",
                f"    key_stash_file = {self._stash(realm)}",
                f"    acl_file = {self.workdir / 'kadm5.acl'}",
                f"    max_life = {self.ticket_lifetime}",
                f"    max_renewable_life = {self.renew_lifetime}",
                f"    supported_enctypes = {supported}",
                "  }")),
            "",
            "[logging]",
            f"  kdc = FILE:{self.log_path}",
            "",
        ])

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> LocalKdc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.krb5_conf.write_text(self._config())
        self.kdc_conf.write_text(self._kdc_profile())
        (self.workdir / "kadm5.acl").write_text("")
        for realm in self.realms:
            if not self._database(realm).exists():  # the master password goes on stdin, never on a command line
                self._run([KDB5_UTIL, "create", "-s", "-r", realm], stdin=f"{self._master}\n{self._master}\n")
                if realm != self.realm:
                    self._trust(realm)
        realm_args = [arg for realm in self.realms for arg in ("-r", realm)]
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen([KRB5KDC, "-n", *realm_args], env={**os.environ, **self.env()},
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.pid = proc.pid
        try:
            self._wait_until_ready(proc, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def add_realm(self, realm: str, hosts: list[str] | tuple[str, ...] = ()) -> None:
        """Serve ``realm`` too, trusted both ways by the first realm, ``hosts`` mapped to it.

        A running KDC is restarted on the same port (krb5kdc reads its realms only when it starts).
        Asking again for a realm it serves only adds host names that are new.
        """
        known = self.extra_realms.get(realm)
        if known is not None and set(hosts) <= set(known):
            return
        self.extra_realms[realm] = [*(known or []), *(h for h in hosts if h not in (known or []))]
        if self.pid is not None:
            self.stop()
            self.start()

    def _trust(self, realm: str) -> None:
        """``krbtgt/realm@first`` and ``krbtgt/first@realm`` in both databases, with the same keys.

        Cross-realm keys must be equal on both sides, so they cannot be ``-randkey``: they come from
        one random password (same principal name, so same salt, same keys), given to kadmin.local on
        its stdin: it is on no command line and in no log.
        """
        password = secrets.token_urlsafe(32)
        requests = "".join(f"addprinc -pw {password} {name}\n"
                           for name in (f"krbtgt/{realm}@{self.realm}", f"krbtgt/{self.realm}@{realm}"))
        for database_realm in (self.realm, realm):
            self._run([KADMIN_LOCAL, "-r", database_realm], stdin=requests)

    def _wait_until_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"krb5kdc exited with code {proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"krb5kdc did not listen on {self.host}:{self.port} within {timeout:.0f}s: {self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is not None:
            stop_process_group(self.pid, timeout)
            self.pid = None

    def __enter__(self) -> LocalKdc:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)

    # --- principals ---------------------------------------------------------------------------
    def principal(self, name: str) -> str:
        """``name@REALM`` (``name`` may already carry the realm)."""
        return name if "@" in name else f"{name}@{self.realm}"

    def add_principal(self, name: str, keytab: Path | None = None, *, max_life: float | None = None,
                      max_renew: float | None = None) -> str:
        """A principal with a random key, exported to ``keytab`` (0600) if given; returns its full name."""
        principal = self.principal(name)
        limits = (["-maxlife", f"{int(max_life)} seconds"] if max_life else []) + \
            (["-maxrenewlife", f"{int(max_renew)} seconds"] if max_renew else [])
        self.kadmin("addprinc", "-randkey", *limits, principal, realm=_realm_of(principal))
        if keytab is not None:
            self.export_keytab(keytab, principal)
        return principal

    def export_keytab(self, keytab: Path, *principals: str) -> Path:
        """Add the principals' current keys to ``keytab`` (without new keys: other keytabs stay valid)."""
        keytab.parent.mkdir(parents=True, exist_ok=True)
        by_realm: dict[str, list[str]] = {}
        for name in principals:
            by_realm.setdefault(_realm_of(self.principal(name)), []).append(self.principal(name))
        for realm, names in by_realm.items():  # each realm's principals are in its own database
            self.kadmin("ktadd", "-k", str(keytab), "-norandkey", *names, realm=realm)
        keytab.chmod(0o600)
        return keytab

    def kadmin(self, *query: str, realm: str | None = None) -> str:
        """One ``kadmin.local`` request on the database file of ``realm`` (default: the first); its output."""
        command = " ".join(_quote(word) for word in query)
        return self._run([KADMIN_LOCAL, "-r", realm or self.realm, "-q", command]).stdout

    def kinit(self, principal: str, keytab: Path, ccache: Path, *, lifetime: str | None = None) -> None:
        """``kinit -kt`` into ``ccache`` (a private FILE: cache)."""
        self._run(["kinit", *(["-l", lifetime] if lifetime else []), "-kt", str(keytab), self.principal(principal)],
                  env=self.env(ccache))

    def _run(self, argv: list[str], *, stdin: str | None = None, env: dict[str, str] | None = None):
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False,
                                env={**os.environ, **self.env(), **(env or {})})
        if result.returncode != 0 or "error" in result.stderr.lower():
            raise RuntimeError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} failed ({result.returncode}): "
                               f"{result.stderr.strip()[-2000:]}")
        return result


def _realm_of(principal: str) -> str:
    return principal.rsplit("@", 1)[1]


def _quote(word: str) -> str:
    """kadmin's -q line is split on blanks; a word holding one is double-quoted."""
    return f'"{word}"' if any(c.isspace() for c in word) else word
