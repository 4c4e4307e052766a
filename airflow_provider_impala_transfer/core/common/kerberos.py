"""Kerberos tickets from a keytab, in a private ticket cache (Airflow-free).

A connection (or the CLI's ``--principal``/``--keytab``) may name a principal and a keytab: a path
on the worker, never key material in Airflow. :class:`TicketCache` then runs ``kinit -kt`` into a
``FILE:`` cache of its own, in a fresh 0700 directory, keeps it fresh from a background thread
(half the ticket's lifetime, as Airflow's ``airflow kerberos`` renewer does for the shared cache),
and removes the directory when it is closed: the impyla session, ``hdfs dfs``, ``hadoop distcp``
and WebHDFS of that task authenticate as that principal (``KRB5CCNAME``), and nothing of it stays
on the worker once the task ends. Without a keytab nothing here runs: the worker's own ticket
cache (Airflow's renewer, or a ``kinit`` by hand) is used as it is.

The keytab is never read by Python, never copied and never logged; ``kinit`` opens it. It must
be readable by its owner only: whoever can read a keytab can be its principal, so a keytab that
the group or others may read is refused (as OpenSSH refuses such a private key) rather than used
with a warning nobody reads.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from airflow_provider_impala_transfer.core.errors import ConfigError, ImpalaTransferError

KINIT_TIMEOUT = 30.0  # seconds one kinit may take: an unreachable KDC must not hold a task
DEFAULT_REFRESH = 3600.0  # seconds between kinits when the ticket's lifetime cannot be read
MIN_REFRESH = 5.0
PRINCIPAL = re.compile(r"[^\s/@]+(/[^\s/@]+)?(@[^\s/@]+)?")


class KerberosError(ImpalaTransferError):
    """No ticket could be obtained from the keytab (KDC unreachable, principal unknown, stale keys)."""


@dataclass(frozen=True)
class KeytabLogin:
    """Who a task is (``principal``) and where its key is (``keytab``, a path on the worker)."""

    principal: str
    keytab: str

    @classmethod
    def from_settings(cls, principal: Any, keytab: Any, where: str) -> KeytabLogin | None:
        """Both or neither: a principal without a keytab (or the reverse) is a half-made setting."""
        if principal in (None, "") and keytab in (None, ""):
            return None
        if principal in (None, "") or keytab in (None, ""):
            given, missing = ("principal", "keytab") if keytab in (None, "") else ("keytab", "principal")
            raise ConfigError(missing, f"{given} is set in {where} but {missing} is not",
                              "give both principal and keytab (the path of a keytab on the worker), or neither "
                              "to use the worker's own ticket cache")
        if not isinstance(principal, str) or not PRINCIPAL.fullmatch(principal):
            raise ConfigError("principal", f"{principal!r} in {where} is not a Kerberos principal",
                              "write name@REALM or service/host@REALM")
        if not isinstance(keytab, str) or not os.path.isabs(keytab) or any(c in keytab for c in "\0\n\r"):
            raise ConfigError("keytab", f"{keytab!r} in {where} is not an absolute path",
                              "give the absolute path of the keytab file on the worker, e.g. "
                              "/etc/security/keytabs/etl.keytab")
        return cls(principal, keytab)

    def check_keytab(self) -> None:
        """The keytab exists, is a file this process may read, and nobody else may."""
        try:
            info = os.stat(self.keytab)
        except FileNotFoundError:
            raise ConfigError("keytab", f"{self.keytab} does not exist on this worker",
                              "put the principal's keytab there (it is a path on the worker, not in Airflow)") from None
        except OSError as exc:
            raise ConfigError("keytab", f"{self.keytab} cannot be read: {exc.strerror}",
                              "let the worker's user read it") from None
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("keytab", f"{self.keytab} is not a file", "give the path of the keytab file")
        if info.st_mode & 0o077:
            raise ConfigError("keytab", f"{self.keytab} may be read by its group or others "
                              f"(mode {stat.S_IMODE(info.st_mode):04o}): whoever reads it can act as {self.principal}",
                              f"chmod 600 {self.keytab}")
        if not os.access(self.keytab, os.R_OK):
            raise ConfigError("keytab", f"{self.keytab} is not readable by this worker's user",
                              "chown it to the user the tasks run as, mode 0600")


class TicketCache:
    """A private ``FILE:`` ticket cache for one :class:`KeytabLogin`, refreshed until closed.

    ``kinit`` writes each new ticket to a file beside the cache and renames it over the cache, so
    a reader (a JVM starting, a session opening) sees the old ticket or the new one, never half.
    """

    def __init__(self, login: KeytabLogin, *, kinit: str = "kinit", timeout: float = KINIT_TIMEOUT,
                 env: dict[str, str] | None = None) -> None:
        self.login = login
        self.kinit = kinit
        self.timeout = timeout
        self._env = env
        self._dir: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.refresh_after = DEFAULT_REFRESH
        self.expires: str | None = None  # the ticket's end time as klist prints it (for messages)

    @property
    def path(self) -> str:
        if self._dir is None:
            raise RuntimeError("the ticket cache is not open")
        return os.path.join(self._dir, "ccache")

    @property
    def name(self) -> str:
        """The value of ``KRB5CCNAME`` for whatever should act as the principal."""
        return f"FILE:{self.path}"

    def env(self) -> dict[str, str]:
        return {"KRB5CCNAME": self.name}

    def open(self) -> TicketCache:
        self.login.check_keytab()
        self._dir = tempfile.mkdtemp(prefix="impala-transfer-krb5-")  # 0700, ours alone
        try:
            self.refresh()
        except BaseException:
            self.close()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep_fresh, name="impala-transfer-kinit", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> TicketCache:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop refreshing and remove the cache and its directory (tickets and all)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.timeout + 5.0)
        self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def refresh(self) -> None:
        """A new ticket from the keytab, swapped in whole."""
        with self._lock:
            fresh = self.path + ".new"
            argv = [self.kinit, "-k", "-t", self.login.keytab, "-c", f"FILE:{fresh}", self.login.principal]
            result = self._run(argv)
            if result.returncode != 0:
                _remove(fresh)
                raise self._explain(result.stderr)
            os.replace(fresh, self.path)
            lifetime, self.expires = _lifetime(self._run(["klist", "-c", self.name]).stdout)
            self.refresh_after = max(MIN_REFRESH, lifetime / 2) if lifetime else DEFAULT_REFRESH

    def _keep_fresh(self) -> None:
        while not self._stop.wait(self.refresh_after):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the cached ticket stays until it expires; try again sooner
                self.refresh_after = MIN_REFRESH

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess:
        env = krb5_environment(self._env)
        try:
            return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise ConfigError("keytab", f"{argv[0]} is not installed on this worker",
                              "install the MIT Kerberos clients (Debian/Ubuntu: krb5-user; RHEL: krb5-workstation)"
                              ) from None
        except subprocess.TimeoutExpired:
            raise KerberosError(f"kinit for {self.login.principal} got no answer within {self.timeout:g}s: the KDC "
                                "of its realm is unreachable (check [realms] kdc in krb5.conf, KRB5_CONFIG, and "
                                "that the KDC is up and reachable from this worker)") from None

    def _explain(self, stderr: str) -> ImpalaTransferError:
        text = " ".join(stderr.split()) or "kinit failed"
        who, keytab = self.login.principal, self.login.keytab
        if "no suitable keys" in text or "Key table entry not found" in text:
            return ConfigError("principal", f"{keytab} holds no key for {who} ({text})",
                               f"klist -kt {keytab} lists the principals it holds; give one of them, "
                               "or export this principal's key into it")
        if "Cannot contact any KDC" in text or "Cannot find KDC" in text or "Cannot resolve" in text:
            return KerberosError(f"kinit for {who}: no KDC of its realm answered ({text}): check [realms] kdc in "
                                 "krb5.conf (KRB5_CONFIG) and that the KDC is up and reachable from this worker")
        if "not found in Kerberos database" in text:
            return ConfigError("principal", f"the KDC knows no {who} ({text})",
                               "check the principal's spelling and realm")
        if "Preauthentication failed" in text or "Password incorrect" in text or "Decrypt integrity" in text:
            return KerberosError(f"kinit for {who}: the key in {keytab} is not the principal's current key ({text}): "
                                 "its keys were changed after the keytab was made; export a fresh keytab")
        if "Clock skew too great" in text:
            return KerberosError(f"kinit for {who}: this worker's clock and the KDC's differ too much ({text}): "
                                 "synchronise the clock (NTP)")
        return KerberosError(f"kinit for {who} with {keytab} failed: {text}")


# --- what a client's failure says of its ticket -----------------------------------------------------
# One rule for the Kerberos clients of a task: the Impala session (MIT krb5, through pure-sasl) and
# hdfs dfs and hadoop distcp (Hadoop's Java client, core.transfer.commands). The client's own words
# are quoted in the brackets.
EXPIRED_FIX = "renew it (Airflow's ticket renewer, airflow kerberos, keeps it fresh) or kinit again"
NO_TICKET_FIX = ("get one before the task runs (Airflow's ticket renewer, airflow kerberos, with [kerberos] "
                 "principal and keytab; or kinit -kt <keytab> <principal>) and point KRB5CCNAME at its cache")
# MIT krb5 (and Java, whose KrbException 32 reads the same) once the ticket's end time has passed.
EXPIRED_WORDS = ("Ticket expired",)
# MIT krb5 when the cache does not exist or holds no ticket.
NO_TICKET_WORDS = ("No Kerberos credentials available", "No credentials were supplied")
# Words that do not say why: Hadoop's RPC client whenever Java found no usable ticket-granting ticket
# (no cache, an empty one, or one whose ticket expired and cannot be renewed: Java drops it unsaid),
# and Java's GSS for the same. The cache the client read is asked which it is (:func:`cache_state`).
UNSAID_WORDS = ("Client cannot authenticate via:[TOKEN, KERBEROS]", "Failed to find any Kerberos tgt")


def ticket_expired(words: str) -> str:
    return f"the Kerberos ticket expired ({words}): {EXPIRED_FIX}"


def no_ticket(words: str) -> str:
    return f"no Kerberos ticket ({words}): {NO_TICKET_FIX}"


def explain_ticket(text: str, env: dict[str, str] | None = None, *, unsaid: tuple[str, ...] = UNSAID_WORDS
                   ) -> str | None:
    """``<problem> (<the client's words>): <what to do>`` when a Kerberos client's failure ``text``
    says its ticket expired or is missing; None when it says neither (or another problem). Where
    the words do not say which (``unsaid``; a SPNEGO client adds its own), the ticket cache of
    ``env`` (default: this process's ``KRB5CCNAME``) is read, and a cache whose ticket is valid
    explains nothing."""
    for words, explain in ((NO_TICKET_WORDS, no_ticket), (EXPIRED_WORDS, ticket_expired)):
        line = _line_with(text, words)
        if line is not None:
            return explain(line)
    said = next((words for words in unsaid if words in text), None)
    if said is None:
        return None
    state, facts = cache_state(env)
    if state == "expired":
        return ticket_expired(f"{said}; {facts}")
    if state == "none":
        return no_ticket(f"{said}; {facts}")
    return None


def cache_state(env: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[str, str]:
    """``("valid" | "expired" | "none" | "unknown", what klist says)`` of the cache ``KRB5CCNAME``
    of ``env`` (default: this process's) names: its ticket-granting ticket, and until when."""
    environment = krb5_environment(env)
    try:
        listed = _klist(env=environment, timeout=timeout)
        valid = listed.returncode == 0 and _klist("-s", env=environment, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "unknown", f"klist: {exc}"
    cache = re.search(r"^Ticket cache: (\S+)", listed.stdout, re.MULTILINE)
    where = cache.group(1) if cache else environment.get("KRB5CCNAME", "the default cache")
    if listed.returncode != 0:
        return "none", " ".join(listed.stderr.split()) or f"klist: no ticket in {where}"
    _, end = _lifetime(listed.stdout)
    if end is None:
        return "none", f"klist: {where} holds no ticket-granting ticket"
    who = _default_principal(listed.stdout) or "its principal"
    if valid:
        return "valid", f"klist: {who}'s ticket in {where} is valid until {end}"
    return "expired", f"klist: {who}'s ticket in {where} ended {end}"


def _line_with(text: str, words: tuple[str, ...]) -> str | None:
    """``text`` itself when it is one line and says one of ``words``; else the last line saying one."""
    lines = [" ".join(line.split()) for line in text.splitlines() if any(w in line for w in words)]
    if not lines:
        return None
    return text if len(text.splitlines()) == 1 else lines[-1]


def ticket_summary(cache_name: str | None = None, timeout: float = 10.0) -> str:
    """Who the ticket cache (``KRB5CCNAME``, or ``cache_name``) says this process is, and until when."""
    try:
        result = _klist(*(["-c", cache_name] if cache_name else []), env=krb5_environment(), timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no ticket could be read ({exc})"
    if result.returncode != 0:
        return f"no Kerberos ticket ({' '.join(result.stderr.split()) or 'klist found none'})"
    _, expires = _lifetime(result.stdout)
    return f"{_default_principal(result.stdout) or 'unknown principal'}, ticket until {expires or 'unknown'}"


def _klist(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["klist", *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _default_principal(listing: str) -> str | None:
    found = re.search(r"^Default principal: (\S+)", listing, re.MULTILINE)
    return found.group(1) if found else None


# What kinit and klist need of the environment: which programs and files, which krb5 configuration
# and cache. Nothing else reaches them (an Airflow task's environment holds connection URIs).
KRB5_ENVIRONMENT = ("PATH", "HOME", "TMPDIR", "KRB5_CONFIG", "KRB5CCNAME", "KRB5RCACHETYPE", "KRB5RCACHEDIR",
                    "KRB5_TRACE")


def krb5_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of :data:`KRB5_ENVIRONMENT` in ``base`` (default: this process's), messages in English."""
    source = os.environ if base is None else base
    return {**{name: source[name] for name in KRB5_ENVIRONMENT if name in source}, "LC_ALL": "C"}


_KLIST_TIMES = re.compile(r"^(\S+ \S+)\s+(\S+ \S+)\s+krbtgt/", re.MULTILINE)


def _lifetime(klist: str) -> tuple[float | None, str | None]:
    """Seconds from the TGT's start to its end, and its end as printed (``klist`` under LC_ALL=C)."""
    found = _KLIST_TIMES.search(klist)
    if not found:
        return None, None
    for pattern in ("%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S"):
        try:
            start, end = (datetime.strptime(value, pattern) for value in found.groups())
        except ValueError:
            continue
        return (end - start).total_seconds(), found.group(2)
    return None, found.group(2)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- the caches of this process ------------------------------------------------------------------
# A task opens at most one cache per login, on first use, and closes them all when it ends
# (:func:`closes_tickets` on an operator's execute; at exit for any other caller).
_caches: dict[KeytabLogin, TicketCache] = {}
_caches_lock = threading.Lock()
_environ_lock = threading.RLock()
T = TypeVar("T")


def ticket_cache(login: KeytabLogin) -> TicketCache:
    """The open cache of ``login`` in this process (``kinit`` on first use)."""
    with _caches_lock:
        cache = _caches.get(login)
        if cache is None:
            cache = _caches[login] = TicketCache(login).open()
        return cache


def close_tickets() -> None:
    """Close every cache this process opened: the tickets leave the worker with the task."""
    with _caches_lock:
        caches = list(_caches.values())
        _caches.clear()
    for cache in caches:
        cache.close()


def closes_tickets(execute: Callable[..., T]) -> Callable[..., T]:
    """For an operator's ``execute``: the caches its task opened are removed when it returns or fails."""
    @functools.wraps(execute)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return execute(*args, **kwargs)
        finally:
            close_tickets()
    return run


def as_login(login: KeytabLogin | None, call: Callable[[], T]) -> T:
    """Run ``call`` (e.g. opening an impyla session, whose GSSAPI handshake reads ``KRB5CCNAME``
    from this process's environment) with ``login``'s ticket; without a login, as it is."""
    if login is None:
        return call()
    with in_environ(ticket_cache(login)):
        return call()


@contextmanager
def in_environ(cache: TicketCache) -> Iterator[None]:
    """``KRB5CCNAME`` of this process names ``cache`` during the block (one such block at a time:
    it is one variable), and is put back after."""
    with as_tools(KRB5CCNAME=cache.name):
        yield


@contextmanager
def as_tools(env: dict[str, str] | None = None, **variables: str) -> Iterator[None]:
    """During the block this process's ``KRB5CCNAME`` and ``KRB5_CONFIG`` are those of ``env`` (the
    environment the task's Hadoop clients get) and ``variables``: an HTTP call with SPNEGO from this
    process then authenticates as the tools do (MIT krb5 reads both only from the environment).
    One such block at a time; the variables are put back after."""
    wanted = {name: value for name, value in {**(env or {}), **variables}.items()
              if name in ("KRB5CCNAME", "KRB5_CONFIG")}
    with _environ_lock:
        before = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


atexit.register(close_tickets)
