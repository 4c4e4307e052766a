"""Opening impyla connections with bounded waits and errors that say what to check.

impyla connections are not thread-safe (the original tool shared one between threads and hung), so
every extract opens its own through a :class:`SourceConnector`, which is cheap to copy and holds
no open socket. :meth:`SourceConnector.session` owns a connection's whole life (open, one cursor,
close whatever happens), as ``DbApiHook.run`` does for Airflow's SQL hooks, and is the one place
where a connector's :class:`RunningQueries` learns which query to cancel when the task is killed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_impala_transfer.core.common import gssapi, kerberos
from airflow_provider_impala_transfer.core.common.kerberos import KeytabLogin
from airflow_provider_impala_transfer.core.common.secrets import mask_secrets
from airflow_provider_impala_transfer.core.errors import ConfigError, ImpalaTransferError, SourceError

AUTH_MECHANISMS = ("NOSASL", "PLAIN", "GSSAPI", "LDAP", "JWT")
DEFAULT_PORT = 21050
# Seconds one call to the server may take once the session is open. Impala answers a fetch within
# its FETCH_ROWS_TIMEOUT_MS (10 s) even with no rows ready; a server silent for an hour is gone.
DEFAULT_RPC_TIMEOUT = 3600.0
# Seconds cancelling may take: Airflow sends SIGKILL 5 s after the SIGTERM whose handler cancels.
CANCEL_TIMEOUT = 4.0


@dataclass(frozen=True)
class SourceConnector:
    """Everything needed to open an impyla connection; ``repr`` never shows secrets."""

    host: str
    port: int = DEFAULT_PORT
    connect_timeout: float = 30.0  # TCP connect + handshake + session open
    rpc_timeout: float = DEFAULT_RPC_TIMEOUT  # every later call (execute, each fetch, close)
    options: dict[str, Any] = field(default_factory=dict)  # passed to impala.dbapi.connect
    login: KeytabLogin | None = None  # GSSAPI: a ticket from this keytab, in a cache of the task's own
    running: RunningQueries | None = field(default=None, compare=False, repr=False)  # cancels on kill

    def __post_init__(self) -> None:
        if not self.host or not str(self.host).strip():
            raise ConfigError("host", "the Impala host is empty", "set the connection's Host field")
        try:
            port = int(self.port)
        except (TypeError, ValueError):
            raise ConfigError("port", f"{self.port!r} is not a port number", "set the connection's Port") from None
        if not 0 < port < 65536:
            raise ConfigError("port", f"{port} is out of range", "give a port between 1 and 65535")
        object.__setattr__(self, "port", port)
        mechanism = self.options.get("auth_mechanism")
        if mechanism is not None and str(mechanism).upper() not in AUTH_MECHANISMS:
            raise ConfigError(
                "auth_mechanism",
                f"{mechanism!r} is not supported",
                f"set the connection extra auth_mechanism to one of {', '.join(AUTH_MECHANISMS)}",
            )
        if self.login is not None and self.auth_mechanism != "GSSAPI":
            raise ConfigError("principal", f"a principal and keytab are set but auth_mechanism is "
                              f"{self.auth_mechanism}: a keytab serves Kerberos only",
                              "set auth_mechanism to GSSAPI, or remove principal and keytab")
        for name in ("connect_timeout", "rpc_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(name, f"{value!r} is not a number of seconds > 0", "give seconds, e.g. 30")

    def __repr__(self) -> str:
        login = f", principal={self.login.principal!r}" if self.login else ""
        return f"SourceConnector(host={self.host!r}, port={self.port}, options={mask_secrets(self.options)}{login})"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def auth_mechanism(self) -> str:
        return str(self.options.get("auth_mechanism", "NOSASL")).upper()

    def connect(self):
        """An open impyla connection; the session opens with the first cursor."""
        from impala.dbapi import connect

        if self.auth_mechanism == "GSSAPI":
            gssapi.check_installed()
        if not self.options.get("use_http_transport"):
            self._check_reachable()
        try:  # the GSSAPI handshake happens here, with the login's ticket if there is one
            return kerberos.as_login(self.login, lambda: connect(host=self.host, port=self.port,
                                                                 timeout=self.connect_timeout, **self.options))
        except ImpalaTransferError:
            raise
        except Exception as exc:
            raise self._explain(exc) from exc

    @contextmanager
    def session(self, *, columnar: bool = False, fetch_size: int = 10240) -> Iterator[Any]:
        """One connection and one cursor for a unit of work; both closed on the way out. A failure
        to close after success is reported; after a failure, the first error is the one raised."""
        running = self.running
        if running is not None:
            running.check(self)
        connection = self.connect()
        try:
            cursor = self.cursor(connection, fetch_size=fetch_size, columnar=columnar)
            if running is not None:
                running.track(self, cursor)
            try:
                yield cursor
            except Exception as exc:
                _close_quietly(cursor)
                if running is not None and running.cancelled:
                    raise SourceError(f"the query on {self.address} was cancelled because the task was "
                                      f"stopped ({exc})") from exc
                raise
            except BaseException:
                _close_quietly(cursor)
                raise
            finally:
                if running is not None:
                    running.forget(cursor)
            if running is not None and running.cancelled:  # a result cut short must not pass for a whole one
                _close_quietly(cursor)
                raise SourceError(f"the query on {self.address} was cancelled because the task was stopped")
            run_server_call(self, "closing the query", cursor.close)
        finally:
            _close_quietly(connection)

    def ping(self) -> str:
        """``SELECT 1`` in a session of its own; says who the session is (GSSAPI: the ticket's
        principal and end, from the login's cache or the process's own)."""
        with self.session() as cursor:
            run_server_call(self, "SELECT 1", lambda: cursor.execute("SELECT 1"))
            run_server_call(self, "SELECT 1", cursor.fetchall)
        who = ""
        if self.auth_mechanism == "GSSAPI":
            who = ", as " + kerberos.ticket_summary(kerberos.ticket_cache(self.login).name if self.login else None)
        elif self.options.get("user"):
            who = f", as {self.options['user']}"
        return f"{self.address} answered SELECT 1 (auth {self.auth_mechanism}{who})"

    def cursor(self, connection, *, fetch_size: int = 10240, columnar: bool = True):
        """A cursor whose results arrive as raw columns (no per-value Python conversion)."""
        try:
            if columnar:
                cursor = connection.cursor(convert_types=False, convert_strings_to_unicode=False)
            else:
                cursor = connection.cursor()
        except Exception as exc:
            raise self._explain(exc) from exc
        cursor.arraysize = fetch_size  # impyla fetches `arraysize` rows per round trip
        _set_socket_timeout(connection, self.rpc_timeout)
        _tolerate_lost_operation_log(cursor)
        return cursor

    def _check_reachable(self) -> None:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.connect_timeout):
                pass
        except OSError as exc:
            raise SourceError(
                f"cannot reach Impala at {self.address} within {self.connect_timeout:g}s: {exc} "
                "(check the connection's Host/Port and that the server is up)"
            ) from exc

    def _explain(self, exc: Exception) -> SourceError:
        text = str(exc) or type(exc).__name__
        if self.auth_mechanism == "GSSAPI":
            kerberos = self._explain_kerberos(text)
            if kerberos is not None:
                return kerberos
        if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in text or "timeout" in text.lower():
            return SourceError(
                f"Impala at {self.address} accepted the connection but did not answer within "
                f"{self.connect_timeout:g}s ({text}): check auth_mechanism={self.auth_mechanism}, "
                "use_ssl and use_http_transport match the server"
            )
        if "read 0 bytes" in text or "SASL" in text or "mechanism" in text.lower():
            return SourceError(
                f"Impala at {self.address} refused the session with auth_mechanism="
                f"{self.auth_mechanism} ({text}): set the connection extra auth_mechanism to what the "
                "server expects (PLAIN/LDAP for user+password, GSSAPI for Kerberos, NOSASL for none)"
            )
        return SourceError(f"Impala at {self.address}: {text}")

    def _explain_kerberos(self, text: str) -> SourceError | None:
        """What a GSSAPI failure means, from MIT krb5's own words in the error (an expired or missing
        ticket: the one rule of every Kerberos client, kerberos.explain_ticket)."""
        ticket = kerberos.explain_ticket(text)
        if ticket is not None:
            return SourceError(f"Impala at {self.address}: {ticket}")
        if "not found in Kerberos database" in text:
            service = self.options.get("kerberos_service_name", "impala")
            host = self.options.get("krb_host") or self.host
            return SourceError(
                f"Impala at {self.address}: the KDC knows no service principal {service}/{host} ({text}): set "
                f"kerberos_service_name (now {service!r}) and krb_host (now {host!r}) to the service and host "
                "of the daemons' principal, e.g. impala and the daemon's canonical host name when you connect "
                "through an address or a load balancer (connection extras; CLI --kerberos-service-name, --krb-host)")
        if "Clock skew too great" in text:
            return SourceError(f"Impala at {self.address}: this machine's clock and the KDC's differ too much "
                               f"({text}): synchronise the clock (NTP)")
        return None


class RunningQueries:
    """The queries a task's sessions are running, so that :meth:`cancel` (an operator's ``on_kill``)
    stops them on the server: without it Impala runs a killed task's query on, until the session of
    the dead client times out.

    Airflow calls ``on_kill`` from the task's SIGTERM handler, i.e. in the main thread between two
    bytecodes of whatever call to the server it was in, or from another thread. So :meth:`cancel`
    never sends on the running session's socket (its request would interleave with the one in
    flight) but opens a connection of its own and sends CancelOperation for the query's handle, as
    impala-shell does on Ctrl-C; and it takes no lock: the code it interrupted might hold it.
    Tracking is a dict insert and delete, which the GIL keeps whole.
    """

    def __init__(self) -> None:
        self._sessions: dict[int, tuple[SourceConnector, Any]] = {}
        self.cancelled = False

    def __deepcopy__(self, memo: dict) -> RunningQueries:
        return RunningQueries()  # a copied operator (Airflow copies tasks before running them) tracks its own

    def __reduce__(self):
        return RunningQueries, ()  # cursors never cross a process boundary

    def check(self, connector: SourceConnector) -> None:
        """Refuse new work once cancelled: the killed task's code may go on until it notices."""
        if self.cancelled:
            raise SourceError(f"no new query on {connector.address}: the task was stopped")

    def track(self, connector: SourceConnector, cursor: Any) -> None:
        """Follow ``cursor`` until :meth:`forget`; a query it starts after a cancel is cancelled at once."""
        self._sessions[id(cursor)] = (connector, cursor)
        execute_async = cursor.execute_async  # impyla's execute() submits through it, then polls

        def submit(*args: Any, **kwargs: Any) -> Any:
            self.check(connector)
            result = execute_async(*args, **kwargs)
            if self.cancelled:  # the kill came while the query was being submitted: no handle to cancel before
                _cancel_operation(connector, cursor)
            return result

        cursor.execute_async = submit

    def forget(self, cursor: Any) -> None:
        self._sessions.pop(id(cursor), None)

    def cancel(self, log: Callable[[str], None] | None = None) -> int:
        """Cancel every running query on its server; return how many were cancelled. Safe to call
        from a signal handler or another thread, and more than once."""
        self.cancelled = True
        done = 0
        for connector, cursor in list(self._sessions.values()):
            try:
                if _cancel_operation(connector, cursor):
                    done += 1
                    if log:
                        log(f"cancelled the running query on {connector.address}")
            except Exception as exc:  # noqa: BLE001 - the task is being killed anyway; say why it stays
                if log:
                    log(f"could not cancel the query on {connector.address} (it may run on until the server's "
                        f"session timeout): {exc}")
        return done


def _cancel_operation(connector: SourceConnector, cursor: Any) -> bool:
    """Cancel and close ``cursor``'s running query over a new, short-lived session. Closing too: the
    Spark Thrift Server runs an incremental result's job inside each fetch of a FINISHED operation,
    which CancelOperation leaves alone (measured), and a killed client never closes it itself."""
    operation = getattr(cursor, "_last_operation", None)  # impyla's (pinned minor) running operation
    if operation is None or not getattr(cursor, "_last_operation_active", False):
        return False
    from impala.hiveserver2 import Operation

    quick = replace(connector, connect_timeout=min(connector.connect_timeout, CANCEL_TIMEOUT),
                    rpc_timeout=CANCEL_TIMEOUT, running=None)
    with quick.session() as other:
        theirs = Operation(other.session, operation.handle)
        failures = []
        for step in (theirs.cancel, theirs.close):  # either one stops it; Spark may refuse the close of a
            try:                                     # just-cancelled statement (its operation log is gone)
                step()
            except Exception as exc:  # noqa: BLE001 - the other step may still succeed
                failures.append(exc)
        if len(failures) == 2:
            raise failures[0]
    return True


def _close_quietly(closable: Any) -> None:
    try:
        closable.close()
    except Exception:  # noqa: BLE001 - already failing or done; the socket goes with the process
        # impyla marks a cursor closed only when closing worked: a dead server's cursor would try
        # again from __del__ at some later garbage collection, logging a traceback each time.
        if hasattr(closable, "_closed"):
            closable._closed = True


def _tolerate_lost_operation_log(cursor: Any) -> None:
    """impyla reads a finished operation's log before closing it, only to keep it for a later
    ``get_log()`` we never make. HiveServer2 (Spark Thrift Server, measured) sometimes answers
    "Couldn't find log associated with operation handle", which would fail a finished query."""
    fetch_log = cursor.get_log

    def get_log() -> str | None:
        try:
            return fetch_log()
        except Exception:  # noqa: BLE001 - the log is optional; the query itself succeeded
            return None

    cursor.get_log = get_log


def _set_socket_timeout(connection: Any, seconds: float) -> None:
    """Replace the handshake timeout by the per-call timeout for the rest of the session.

    impyla applies one socket timeout to every call; a short one bounds the handshake, but a long
    fetch must not be cut by it, nor may a stalled server hold a task forever. We find the TSocket
    inside the transport chain (binary transport only; HTTP transport has no socket timeout in
    impyla).
    """
    sock = _find_tsocket(getattr(connection, "service", None))
    if sock is not None:
        sock.setTimeout(seconds * 1000.0)


def _find_tsocket(obj: Any, depth: int = 0) -> Any:
    from thrift.transport.TSocket import TSocket

    if obj is None or depth > 6:
        return None
    if isinstance(obj, TSocket):
        return obj
    for name in ("client", "_iprot", "trans", "_trans", "_TBufferedTransport__trans", "transport"):
        found = _find_tsocket(getattr(obj, name, None), depth + 1) if hasattr(obj, name) else None
        if found is not None:
            return found
    return None


def run_server_call(connector: SourceConnector, what: str, call):
    """Run a call on the server, turning impyla's errors into a SourceError that keeps the
    server's own message (a SQL syntax error must reach the user verbatim)."""
    try:
        return call()
    except ImpalaTransferError:
        raise
    except Exception as exc:
        module = type(exc).__module__ or ""
        if module.startswith(("impala", "thrift")):
            raise SourceError(f"{what} failed on {connector.address}: {exc}") from exc
        raise
