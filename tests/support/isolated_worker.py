"""Run a command as if it had a machine of its own: its own hostname and private temp directories.

    python tests/support/isolated_worker.py --hostname worker-1 --tmpfs /path/worker-tmp \\
        -- airflow celery worker ...

As root, it re-executes itself under ``unshare --mount --uts --fork`` (a new mount namespace with
private propagation, and a new UTS namespace), sets the hostname there, mounts an empty tmpfs
over each ``--tmpfs`` directory (visible only inside, so two workers using the same path share no
file there), then execs the command. Values come as argv, secrets stay in the environment; no
shell. tests/support/airflow_deployment.py starts the Celery workers this way.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

UNSHARE = ["/usr/bin/unshare", "--mount", "--uts", "--fork", "--"]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="isolated_worker.py")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--tmpfs", action="append", required=True, metavar="DIR",
                        help="directory to cover with a private tmpfs (repeatable; the first also holds /etc/hosts)")
    parser.add_argument("--tmpfs-size", default="512m")
    parser.add_argument("--in-namespaces", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    if not args.in_namespaces:
        os.execv(UNSHARE[0], [*UNSHARE, sys.executable, os.path.abspath(__file__), "--in-namespaces", *argv])
    socket.sethostname(args.hostname)
    for directory in args.tmpfs:
        subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "-o", f"size={args.tmpfs_size},mode=1777", "tmpfs",
                        directory], check=True, timeout=30)
    resolve_own_name(args.hostname, args.tmpfs[0])
    os.execvp(command[0], command)


def resolve_own_name(hostname: str, private_dir: str) -> None:
    """Make the new hostname resolve, as a real machine's does (Hadoop's job submitter looks its
    own name up): /etc/hosts plus ``127.0.0.1 <hostname>``, bind-mounted over /etc/hosts inside this
    mount namespace only, from a copy kept in the namespace's private tmpfs."""
    hosts = os.path.join(private_dir, ".hosts")
    with open("/etc/hosts", encoding="utf-8") as original, open(hosts, "w", encoding="utf-8") as copy:
        copy.write(original.read().rstrip("\n") + f"\n127.0.0.1 {hostname}\n")
    os.chmod(hosts, 0o644)
    subprocess.run(["/usr/bin/mount", "--bind", hosts, "/etc/hosts"], check=True, timeout=30)


if __name__ == "__main__":
    main(sys.argv[1:])
