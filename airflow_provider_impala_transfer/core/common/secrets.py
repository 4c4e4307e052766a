"""Secret-looking settings, one rule for the whole provider: which names hold secrets, how to
show a configuration without them, and how to scrub their values from an error message.

Names are matched by substring (``account_key``, ``aws_secret_access_key``, ``sas_token``, ``jwt``...),
so a new store's option is covered without a list per store. A name that says *where* a secret is
(``key_file``, ``password_env``, ``password_file``) holds a path or a variable name, not the secret,
and is shown.

A password inside a URL (``sftp://etl:pw@edge1/x``) is hidden by one rule, :func:`redact_uri`, wherever
the provider shows text: the CLI, error messages, lineage, asset events, XCom.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

MASK = "***"
SECRET_WORDS = ("key", "secret", "password", "passwd", "token", "sas", "credential", "passphrase",
                "auth", "private", "signature", "connection_string", "session", "jwt")
# Where a secret lives, not the secret: shown as they are.
REFERENCE_SUFFIXES = ("_file", "_env", "_path")
NOT_SECRET = ("auth_mechanism", "known_hosts", "host_key_checking")
# The password of ``scheme://user:password@host``, any scheme: up to the LAST '@' before the host, so
# a password holding '@' or '/' (unencoded, as people write them) is hidden whole, and a host's port
# after it stays; a '@' later in the path makes it hide more, never less. ``host:8020/path@x`` is a
# port (at most 5 digits, then '/'), not a password; digits followed by '@' are a password.
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):(?!\d{1,5}/)(?P<password>\S+)@(?=[^@/\s]*(?:[/\s]|$))")


def redact_uri(text: str) -> str:
    """``text`` with the password of every URL in it shown as ``***`` (``sftp://etl:***@edge1/x``):
    the one rule for URIs, for a single URI or any text quoting them (a message, a log line)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)


def redact_uris(value: Any) -> Any:
    """A copy of plain data (what a task returns to XCom, an asset event's extras) with
    :func:`redact_uri` applied to every string in it; other values as they are."""
    if isinstance(value, dict):
        return {k: redact_uris(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_uris(v) for v in value]
    return redact_uri(value) if isinstance(value, str) else value


def url_passwords(text: str) -> list[str]:
    """The passwords of the URLs in ``text``, each as written and percent-decoded (as a client
    sends it), for a log masker that hides known values."""
    found = [m["password"] for m in _URL_PASSWORD.finditer(text)]
    return list(dict.fromkeys([*found, *(unquote(p) for p in found)]))


def is_secret_name(name: object) -> bool:
    lowered = str(name).lower()
    if lowered.endswith(REFERENCE_SUFFIXES) or any(lowered.endswith(n) for n in NOT_SECRET):
        return False
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` safe to print: every value under a secret-looking key (key, secret,
    password, token, account_key, sas, credential, passphrase...) is ``***``, a password inside a
    URL is ``***``, and objects other than plain data are shown by their type only."""
    if isinstance(value, dict):
        return {k: (MASK if v is not None and is_secret_name(k) else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return redact_uri(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return f"<{type(value).__name__}>"


def secret_values(value: Any, under_secret: bool = False) -> Iterable[str]:
    """Every string that :func:`mask_secrets` would hide, to scrub it from error messages."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from secret_values(v, under_secret or is_secret_name(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from secret_values(v, under_secret)
    elif isinstance(value, str):
        if under_secret:
            yield value
        yield from url_passwords(value)


class Redactor:
    """Replaces the secret values found in ``sources`` (and URL passwords) in any text."""

    def __init__(self, *sources: Any):
        self.values = sorted({s for src in sources for s in secret_values(src) if len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return redact_uri(text)
