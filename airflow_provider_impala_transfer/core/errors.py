"""Errors that tell the user which setting is wrong and how to fix it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user-supplied value is invalid; raised before anything is written.

    The message always starts with the field name so it is easy to find in a DAG or a task log.
    """

    def __init__(self, field: str, problem: str, fix: str | None = None):
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"{field}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class SourceError(RuntimeError):
    """The source server refused or failed the work (unreachable, auth, SQL error)."""


class ExtractError(RuntimeError):
    """Rows could not be turned into files exactly (type conversion, write failure)."""


class TargetTableError(RuntimeError):
    """The target table cannot safely show the published files (schema clash, row count mismatch)."""
