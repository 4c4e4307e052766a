"""``impala-transfer``: the seed tool's command line on the provider's core.

Exit codes: 0 success, 1 the transfer (or a connection test) failed, 2 usage or configuration
error (a one-line reason on stderr; nothing was transferred), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import IO, NoReturn

from airflow_provider_impala_transfer import __version__
from airflow_provider_impala_transfer.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from airflow_provider_impala_transfer.cli.settings import SETTINGS, Resolved, named_by_flag, read_password, resolve
from airflow_provider_impala_transfer.core.common.secrets import redact_uri
from airflow_provider_impala_transfer.core.errors import ConfigError, ImpalaTransferError
GROUP_TITLES = {"source": "source (Impala)", "query": "what to transfer", "processing": "processing",
                "target": "target and methods", "table": "target table"}
EPILOG = """\
precedence: flag > environment variable > --config file > default (--show-config shows each value's origin)
password: from $IMPALA_PASSWORD (or the variable --password-env names), --password-file, or --ask-password;
          never a flag value
methods: distcp -> hdfs_put -> hdfs_cp -> scp, entered at --method (default distcp, or hdfs_put with
         --no-distcp); fsspec for s3://, gs://, abfs://, sftp:// ... targets
exit codes: 0 success, 1 transfer failed, 2 usage or configuration error, 130 interrupted (Ctrl-C)

example:
  IMPALA_PASSWORD=... impala-transfer --source-host impala1 --auth-mechanism LDAP --user etl \\
      --query "SELECT * FROM sales.orders WHERE ds = '2024-01-01'" --split-by order_id \\
      --target-cluster nn2.example.com:8020 --target-hdfs-path /data/landing \\
      --source-hdfs-path hdfs://nn1.example.com:8020/tmp/impala_transfer --partition ds=2024-01-01
"""


class _Redacted:
    """An output stream of the CLI: every URL in what is written shows no password (the provider's
    one rule, :func:`redact_uri`), whatever writes it (settings, plans, progress, logs, errors)."""

    def __init__(self, stream: IO[str]):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_uri(text))
        return len(text)

    def __getattr__(self, name: str):  # flush, isatty, fileno, encoding... of the real stream
        return getattr(self._stream, name)


class UsageError(ImpalaTransferError):
    """The command line itself is wrong (an unknown flag, a missing value)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit 2 through our own handler."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="impala-transfer", description="Move the result of an Impala query to another "
                     "cluster or storage: chunked, exact-typed, verified, published atomically.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {key: parser.add_argument_group(title) for key, title in GROUP_TITLES.items()}
    for setting in SETTINGS:
        group = groups[setting.group]
        env = f" [env {setting.env}]" if setting.env else ""
        default = f" (default {setting.default})" if setting.default not in (None, False) else ""
        help_text = f"{setting.help}{default}{env}"
        if setting.kind == "bool":
            group.add_argument(setting.flag, dest=setting.name, action="store_const", const=True, default=None,
                               help=help_text)
            if setting.name == "use_distcp":
                group.add_argument("--no-distcp", dest="use_distcp", action="store_const", const=False,
                                   help="start the chain with hdfs put instead")
        else:
            group.add_argument(setting.flag, dest=setting.name, default=None, metavar=setting.name.upper(),
                               help=help_text)
    auth = groups["source"]
    auth.add_argument("--ask-password", action="store_true", help="prompt for the password")
    auth.add_argument("--password", dest="password_flag", default=None, help=argparse.SUPPRESS)
    modes = parser.add_argument_group("modes")
    modes.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings")
    modes.add_argument("--test-connection", action="store_true", help="reach the source and targets, then exit")
    modes.add_argument("--validate-config", action="store_true", help="check every setting, then exit")
    modes.add_argument("--show-config", action="store_true", help="print settings and their origin (secrets masked)")
    modes.add_argument("--dry-run", action="store_true", help="print the chunk plan and every command; run nothing")
    modes.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                       help="live progress display: auto = on a terminal")
    modes.add_argument("--verbose", "-v", action="store_true", help="log every command and verification")
    modes.add_argument("--version", action="version", version=f"impala-transfer {__version__}")
    return parser


def main(argv: Sequence[str] | None = None, *, environ: dict[str, str] | None = None,
         stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    stdout, stderr = _Redacted(stdout or sys.stdout), _Redacted(stderr or sys.stderr)
    environ = dict(os.environ) if environ is None else environ
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        stderr.write(f"impala-transfer: {exc} (see impala-transfer --help)\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # impyla/thrift log each reconnect try with a traceback; our errors say it once
        for name in ("impala", "thrift"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    from airflow_provider_impala_transfer.cli import run  # after parsing: --help stays fast

    try:
        if args.password_flag is not None:
            raise ConfigError("--password", "a password on the command line is visible to every user (ps, "
                              "shell history)", "use IMPALA_PASSWORD, --password-file FILE or --ask-password")
        flags = {s.name: getattr(args, s.name) for s in SETTINGS}
        settings = resolve(flags, environ, args.config)
        if args.show_config:
            _show_config(settings, environ, stdout)
            return EXIT_OK
        password = read_password(settings, environ, ask=args.ask_password,
                                 warn=lambda message: stderr.write(message + "\n"))
        from airflow_provider_impala_transfer.cli.job import build_job

        job = build_job(settings, password)
        if args.validate_config:
            stdout.write(f"configuration is valid: {job.target_description}, methods {' -> '.join(job.chain)}, "
                         f"{'table ' + job.table.table if job.table else 'no table step'}\n")
            for note in job.notes:
                stdout.write(f"note: {note}\n")
            return EXIT_OK
        with run.own_ticket(job):
            if args.test_connection:
                return run.test_connection(job, stdout)
            if args.dry_run:
                return run.dry_run(job, stdout)
            from airflow_provider_impala_transfer.cli.report import make_reporter

            reporter = make_reporter(stderr, progress=args.progress, verbose=args.verbose)
            return run.run_job(job, reporter, stdout)
    except ConfigError as exc:
        stderr.write(f"impala-transfer: {named_by_flag(exc, '--query-file' if args.query_file else '--query')}\n")
        return EXIT_USAGE
    except (ImpalaTransferError, OSError) as exc:
        stderr.write(f"impala-transfer: FAILED: {run.first_line(exc)}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        stderr.write("impala-transfer: interrupted; running commands were stopped, nothing was published\n")
        return EXIT_INTERRUPTED


def _show_config(settings: Resolved, environ: dict[str, str], out: IO[str]) -> None:
    width = max(len(s.name) for s in SETTINGS)
    for name, value, origin in settings.rows():
        shown = "" if value is None else value
        out.write(f"{name:<{width}}  {shown!s:<40}  {origin}\n")
    if settings.password_file:
        password, origin = "***", f"file {settings.password_file}"
    elif environ.get(settings.password_env):
        password, origin = "***", f"env {settings.password_env}"
    else:
        password, origin = "", "not set"
    out.write(f"{'password':<{width}}  {password:<40}  {origin}\n")


def console() -> NoReturn:
    """The ``impala-transfer`` entry point. After Ctrl-C the running tools are already stopped;
    an extract thread blocked on the server would keep the interpreter alive until its chunk is
    done, so the process ends at once (staged and local files are hidden or kept for a re-run)."""
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
