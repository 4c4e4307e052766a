"""The local MIT KDC the Kerberos tests stand on (tests/support/local_kdc.py): what it is, checked."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time

import psutil
import pytest

from tests.support.local_kdc import REALM, LocalKdc
from tests.support.processes import alive

pytestmark = pytest.mark.server


def klist(kdc: LocalKdc, ccache) -> str:
    result = subprocess.run(["klist"], env={**os.environ, **kdc.env(ccache)}, capture_output=True, text=True,
                            timeout=30, check=False)
    return result.stdout + result.stderr


def test_a_keytab_gets_a_ticket_into_a_private_cache_and_nothing_else_sees_it(kdc, tmp_path):
    keytab = tmp_path / "etl.keytab"
    principal = kdc.add_principal(f"etl-{os.getpid()}", keytab)
    assert principal.endswith(f"@{REALM}")
    assert keytab.stat().st_mode & 0o777 == 0o600
    kdc.kinit(principal, keytab, tmp_path / "ccache")
    shown = klist(kdc, tmp_path / "ccache")
    assert f"Default principal: {principal}" in shown
    assert f"krbtgt/{REALM}@{REALM}" in shown
    assert "No credentials cache found" in klist(kdc, tmp_path / "other-ccache")


def test_a_principal_with_a_short_max_life_gets_a_ticket_that_short(kdc, tmp_path):
    keytab = tmp_path / "short.keytab"
    principal = kdc.add_principal(f"short-{os.getpid()}", keytab, max_life=60)
    kdc.kinit(principal, keytab, tmp_path / "ccache")
    [(start, end)] = re.findall(r"^(\S+ \S+)\s+(\S+ \S+)\s+krbtgt/", klist(kdc, tmp_path / "ccache"), re.M)
    parse = lambda text: time.mktime(time.strptime(text, "%m/%d/%y %H:%M:%S"))  # noqa: E731
    assert 0 < parse(end) - parse(start) <= 60


def test_a_wrong_keytab_is_refused_by_the_kdc(kdc, tmp_path):
    keytab = tmp_path / "a.keytab"
    kdc.add_principal(f"a-{os.getpid()}", keytab)
    other = kdc.add_principal(f"b-{os.getpid()}")
    with pytest.raises(RuntimeError, match="kinit -kt failed"):
        kdc.kinit(other, keytab, tmp_path / "ccache")


def test_it_listens_on_loopback_only_and_stops_by_its_pid(tmp_path):
    kdc = LocalKdc(tmp_path / "kdc").start()
    try:
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(kdc.pid).net_connections("inet")}
        assert listening == {("127.0.0.1", kdc.port)}
        with socket.create_connection(("127.0.0.1", kdc.port), timeout=2):
            pass
    finally:
        pid = kdc.pid
        kdc.stop()
    assert not alive(pid)
