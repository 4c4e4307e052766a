"""Impala hook for extracts: ``ImpalaHook`` plus bounded connects and one connection per task."""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.impala.hooks.impala import ImpalaHook

from airflow_provider_impala_transfer.core.common.connection import (
    DEFAULT_PORT,
    DEFAULT_RPC_TIMEOUT,
    RunningQueries,
    SourceConnector,
)
from airflow_provider_impala_transfer.core.common.kerberos import KeytabLogin, close_tickets
from airflow_provider_impala_transfer.core.common.values import parse_bool, port_number, positive_seconds
from airflow_provider_impala_transfer.hooks.masking import mask_in_task_logs

_BOOL_EXTRAS = {"use_ssl", "use_http_transport", "verify_cert"}
DEFAULT_CONNECT_TIMEOUT = 30.0


class ImpalaTransferHook(ImpalaHook):
    """Accepts connections of type ``impala`` (extras passed to impyla as-is) or
    ``impala_transfer`` (the same, with form fields in the UI).

    :param running: an operator's :class:`RunningQueries`: every session opened through this hook's
        connectors reports its query there, for the operator's ``on_kill`` to cancel.
    """

    conn_type = "impala_transfer"
    hook_name = "Impala (transfer)"

    def __init__(self, *args: Any, connect_timeout: float | None = None, running: RunningQueries | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connect_timeout = connect_timeout
        self.running = running

    def connector(self) -> SourceConnector:
        """A picklable description of the connection; each task opens its own socket from it."""
        conn_id = self.get_conn_id()
        conn = self.get_connection(conn_id)
        extras = _normalise_extras(conn.extra_dejson)
        mask_in_task_logs(extras)
        # Our own extras; every other one goes to impala.dbapi.connect unchanged, exactly as
        # ImpalaHook does, so an existing `impala` connection works as it is.
        extra_connect, extra_rpc = extras.pop("connect_timeout", None), extras.pop("rpc_timeout", None)
        login = KeytabLogin.from_settings(extras.pop("principal", None), extras.pop("keytab", None),
                                          f"connection {conn_id!r}")
        if self.connect_timeout is not None:  # the operator's argument wins over the extra
            connect_timeout = positive_seconds(self.connect_timeout, "connect_timeout")
        elif extra_connect is not None:
            connect_timeout = positive_seconds(extra_connect, "connection extra connect_timeout")
        else:
            connect_timeout = DEFAULT_CONNECT_TIMEOUT
        rpc_timeout = (positive_seconds(extra_rpc, "connection extra rpc_timeout") if extra_rpc is not None
                       else DEFAULT_RPC_TIMEOUT)
        options = extras
        if conn.login:
            options.setdefault("user", conn.login)
        if conn.password:
            options.setdefault("password", conn.password)
        if conn.schema:
            options.setdefault("database", conn.schema)
        return SourceConnector(
            host=conn.host or "",
            port=port_number(conn.port, f"port of connection {conn_id!r}") if conn.port else DEFAULT_PORT,
            connect_timeout=connect_timeout,
            rpc_timeout=rpc_timeout,
            options=options,
            login=login,
            running=self.running,
        )

    def get_conn(self):
        return self.connector().connect()

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: ``SELECT 1`` within the connect timeout, and who the session is."""
        try:
            return True, self.connector().ping()
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        finally:
            close_tickets()



def _normalise_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """UI forms may store ``extra__<type>__<field>``; empty form fields come back as '' or None."""
    out: dict[str, Any] = {}
    for key, value in extras.items():
        if key.startswith("extra__"):
            key = key.split("__", 2)[-1]
        if value in (None, ""):
            continue
        if key in _BOOL_EXTRAS:
            value = parse_bool(value, f"connection extra {key}")
        out[key] = value
    return out
