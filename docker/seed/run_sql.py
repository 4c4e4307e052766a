"""Run the statements of a SQL file on an Impala daemon: the seeding step of docker-compose.yaml.

    python run_sql.py --host source-impalad --port 21050 source.sql

Waits (``--wait`` seconds) until the daemon accepts a session, then runs each statement of the
file in order (statements end with ``;`` at the end of a line; ``--`` lines are comments),
printing the rows of those that return any. Exits non-zero on the first failing statement.
Uses impyla, the client the provider itself uses, with the same NOSASL session as the stack's
``impala_default`` connection.
"""

from __future__ import annotations

import argparse
import sys
import time

from impala.dbapi import connect


def statements(text: str) -> list[str]:
    """The file's statements: comment lines dropped, split where a line ends with ``;``."""
    found, current = [], []
    for line in text.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            found.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    rest = "\n".join(current).strip()
    if rest:
        found.append(rest)
    return [statement for statement in found if statement]


def open_session(host: str, port: int, wait: float, auth_mechanism: str = "NOSASL",
                 kerberos_service_name: str = "impala"):
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = connect(host=host, port=port, auth_mechanism=auth_mechanism,
                           kerberos_service_name=kerberos_service_name, timeout=30)
            conn.cursor().execute("SELECT 1")
            return conn
        except Exception as exc:  # the daemon is still starting: any connect/handshake error
            if time.monotonic() > deadline:
                raise SystemExit(f"run_sql: {host}:{port} accepted no session within {wait:.0f}s: {exc}") from exc
            print(f"run_sql: waiting for {host}:{port} ({exc})", flush=True)
            time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sql_file")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=21050)
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the daemon")
    parser.add_argument("--auth-mechanism", default="NOSASL", choices=("NOSASL", "GSSAPI"),
                        help="GSSAPI: Kerberos, with the ticket cache of KRB5CCNAME")
    parser.add_argument("--kerberos-service-name", default="impala")
    args = parser.parse_args(argv)
    with open(args.sql_file, encoding="utf-8") as stream:
        todo = statements(stream.read())
    conn = open_session(args.host, args.port, args.wait, args.auth_mechanism, args.kerberos_service_name)
    cursor = conn.cursor()
    for number, statement in enumerate(todo, 1):
        print(f"run_sql: [{number}/{len(todo)}] {statement.splitlines()[0]}", flush=True)
        cursor.execute(statement)
        if cursor.description:
            names = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                print("run_sql:   " + ", ".join(f"{name}={value}" for name, value in zip(names, row)), flush=True)
    conn.close()
    print(f"run_sql: {len(todo)} statements of {args.sql_file} done on {args.host}:{args.port}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
