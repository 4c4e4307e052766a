"""The ``impala-transfer`` command line in-process (``main(argv, environ, stdout, stderr)``), the
way its console script runs it but with only the environment a test gives it."""

from __future__ import annotations

import io
from dataclasses import dataclass

from airflow_provider_impala_transfer.cli.main import main

PASSWORD = "pw-Zq81x-never-shown"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, password: str | None = PASSWORD) -> Result:
    """The CLI as its console script runs it, with only ``env`` (and the password) as environment."""
    environ = {**({"IMPALA_PASSWORD": password} if password else {}), **(env or {})}
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(args), environ=environ, stdout=stdout, stderr=stderr)
    return Result(code, stdout.getvalue(), stderr.getvalue())
