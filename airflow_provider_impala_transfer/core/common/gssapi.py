"""Kerberos (GSSAPI) sessions to Impala: impyla authenticates through pure-sasl, which needs the
``kerberos`` module, the provider's ``kerberos`` extra (impyla's own extra of the same name)."""

from __future__ import annotations

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
