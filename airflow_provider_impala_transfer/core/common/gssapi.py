"""What Kerberos (GSSAPI) needs from the provider's ``kerberos`` extra: the ``kerberos`` module for
sessions to Impala (impyla authenticates through pure-sasl; impyla's own extra of the same name),
and requests-kerberos for SPNEGO to a YARN ResourceManager."""

from __future__ import annotations

from typing import Any

from airflow_provider_impala_transfer.core.errors import ConfigError


def check_installed() -> None:
    """Without the module pure-sasl knows no GSSAPI, and every session fails with a riddle
    about mechanisms: say what to install instead."""
    try:
        import kerberos  # noqa: F401
    except ImportError:
        raise ConfigError("auth_mechanism", "GSSAPI needs the Python module kerberos, which is not installed",
                          "pip install 'airflow-provider-impala-transfer[kerberos]' (it builds against "
                          "libkrb5-dev)") from None


def spnego() -> Any:
    """A ``requests`` auth doing SPNEGO with this process's ticket (``KRB5CCNAME``) when a server
    asks for it (a 401 ``Negotiate``), and nothing otherwise; None without requests-kerberos."""
    try:
        from requests_kerberos import OPTIONAL, HTTPKerberosAuth
    except ImportError:
        return None
    return HTTPKerberosAuth(mutual_authentication=OPTIONAL)
