"""Plain values from settings (operator arguments, connection extras, flags, environment
variables, config files), one rule each: whole numbers, port numbers, seconds, yes/no flags,
one-of choices, a Hadoop proxy user."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from airflow_provider_impala_transfer.core.errors import ConfigError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def positive_int(value: Any, field: str) -> int:
    """A whole number > 0, given as a number or as text (``"100000"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(field, f"{value!r} is not a whole number", "give a whole number > 0")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(field, f"{value!r} is not a whole number", "give a whole number > 0") from None
    if number <= 0:
        raise ConfigError(field, f"{number} is not > 0", "give a whole number > 0")
    return number


def port_number(value: Any, field: str) -> int:
    """A TCP port (1-65535), given as a number or as text (``"21050"``)."""
    fix = "give a port between 1 and 65535"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(field, f"{value!r} is not a port number", fix)
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(field, f"{value!r} is not a port number", fix) from None
    if not 0 < number < 65536:
        raise ConfigError(field, f"{number} is not a port number", fix)
    return number


def positive_seconds(value: Any, field: str) -> float:
    """A number of seconds > 0, given as a number or as text (``"30"``, ``"2.5"``)."""
    fix = "give seconds > 0, e.g. 30"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(field, f"{value!r} is not a number of seconds", fix)
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(field, f"{value!r} is not a number of seconds", fix) from None
    if not 0 < seconds < float("inf"):  # also NaN
        raise ConfigError(field, f"{value!r} is not a number of seconds > 0", fix)
    return seconds


def parse_bool(value: Any, field: str) -> bool:
    """True/False from a bool or the usual words (``true``/``false``, ``yes``/``no``, ``1``/``0``,
    ``on``/``off``; a UI form's empty field is False); anything else is refused, not guessed."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(field, f"{value!r} is not true or false", "write true or false")


def check_choice(value: Any, field: str, choices: Sequence[str], what: str = "allowed") -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(field, f"{value!r} is not {what}", f"use one of {', '.join(choices)}")
    return str(value)


PROXY_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def proxy_user_env(value: Any, field: str) -> dict[str, str]:
    """``HADOOP_PROXY_USER`` for the Hadoop clients: the user they act for, as the workers' own
    identity (a Kerberos principal) impersonates it. Only DAG code or the CLI's caller chooses it;
    the cluster must allow it (``hadoop.proxyuser.<that identity>.hosts/groups/users``)."""
    if value is None or value == "":
        return {}
    if not isinstance(value, str) or not PROXY_USER.fullmatch(value):
        raise ConfigError(field, f"{value!r} is not a user name", "give the short name of an HDFS user, e.g. etl")
    return {"HADOOP_PROXY_USER": value}
