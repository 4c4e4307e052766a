"""Every error the provider raises on purpose, in one tree (as fsspec keeps its exceptions in one
module): ``except ImpalaTransferError`` catches them all, and each stage has its own class.

    ImpalaTransferError
    ├── ConfigError            a setting is wrong; raised before anything is written (also a ValueError)
    ├── SourceError            the source server refused or failed the work
    ├── ExtractError           rows could not be turned into files exactly
    ├── TransferError          a method could not deliver; a fallback chain moves on
    │   ├── ToolNotFound       the executable is not installed here
    │   ├── CommandFailed      the tool exited non-zero or timed out (with its stderr tail)
    │   ├── Stopped            the transfer was cancelled: no further tool starts
    │   └── VerificationError  the bytes at the target differ from the extracted ones
    ├── PublishError           verified files could not be made visible at their final place
    │   └── GroupConflict      two task groups of one run publish one final directory (a retry cannot help)
    ├── TargetTableError       the target table cannot safely show the published files
    └── ReconcileError         row counts of source, files, published data and table differ

Messages name the field or the place first, then the problem, then the fix in brackets. A message
never holds the password of a URL it quotes: every one passes the provider's one rule for URIs
(:func:`~airflow_provider_impala_transfer.core.common.secrets.redact_uri`) here, once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# The one rule for secrets is a leaf (it imports nothing of the package), so the error tree may use it.
from airflow_provider_impala_transfer.core.common.secrets import redact_uri


class ImpalaTransferError(Exception):
    """Base of every error this provider raises on purpose; its message shows URLs without their
    password (``sftp://etl:***@edge1/x``)."""

    def __init__(self, *args: object):
        super().__init__(*(redact_uri(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(ImpalaTransferError, ValueError):
    """A user-supplied value is invalid; raised before anything is written.

    The message always starts with the field name so it is easy to find in a DAG or a task log.
    """

    def __init__(self, field: str, problem: str, fix: str | None = None):
        self.field = redact_uri(str(field))
        self.problem = redact_uri(str(problem))
        self.fix = None if fix is None else redact_uri(str(fix))
        message = f"{self.field}: {self.problem}"
        if self.fix:
            message += f" ({self.fix})"
        super().__init__(message)


class SourceError(ImpalaTransferError):
    """The source server refused or failed the work (unreachable, auth, SQL error)."""


class ExtractError(ImpalaTransferError):
    """Rows could not be turned into files exactly (type conversion, write failure, schema clash)."""


class TransferError(ImpalaTransferError):
    """A method could not deliver; the fallback chain moves on to the next one."""


class ToolNotFound(TransferError):
    """The executable is not installed here: fail fast so the next method can run."""


class Stopped(TransferError):
    """The runner was stopped (task killed, Ctrl-C): no further tool starts."""


class CommandFailed(TransferError):
    """A tool exited non-zero or timed out; the message quotes the command and its stderr tail."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr_tail: str, *, timed_out: bool = False):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        what = "timed out" if timed_out else f"exited with {returncode}"
        message = f"{os.path.basename(argv[0])} {what}: {' '.join(argv)}"
        reason = next((line.strip() for line in reversed(stderr_tail.splitlines()) if line.strip()), "")
        if reason:  # the tool's last word on the first line, where summaries and the grid show it
            message += f": {reason[:300]}"
        if stderr_tail:
            message += "\n" + stderr_tail
        super().__init__(message)


class VerificationError(TransferError):
    """Bytes at the target differ from what was extracted."""


class PublishError(ImpalaTransferError):
    """A run's files could not be made visible at their final location."""


class GroupConflict(PublishError):
    """Two task groups of one run publish one final directory: the DAG must give each its own
    target_path or partition, and a retry would be refused the same way."""


class TargetTableError(ImpalaTransferError):
    """The target table cannot safely show the published files (schema clash, row count mismatch)."""


class ReconcileError(ImpalaTransferError):
    """The source's COUNT(*), the rows in the files, the rows published and the table disagree."""
