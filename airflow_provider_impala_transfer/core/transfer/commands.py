"""Running the transfer tools (hadoop, hdfs, scp, ssh) as argv lists, never through a shell.

Every child runs in its own process group, so a timeout or Airflow's ``on_kill`` stops the tool
*and* what it started (the JVM behind ``hdfs``, ssh behind scp). A missing binary fails at once
with the setting to change. What a tool prints goes to the log line by line while it runs, as
Airflow's ``SubprocessHook`` does (DistCp's job id, map progress and counters appear in the task
log as the job goes); a failing tool raises with the tail of its stderr, because that is where
Hadoop and OpenSSH say what went wrong.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from airflow_provider_impala_transfer.core.common.kerberos import explain_ticket
from airflow_provider_impala_transfer.core.errors import (
    CommandFailed, ImpalaTransferError, Stopped, ToolNotFound, TransferError)

DEFAULT_TIMEOUT = 6 * 3600.0  # seconds a tool may run when no timeout is given: never forever
STDERR_TAIL_LINES = 20  # quoted in a failure's message
OUTPUT_TAIL_LINES = 200  # returned to the caller (DistCp prints its ~40 counter lines last)
_HASH_BLOCK = 1 << 20


def resolve_binary(binary: str, setting: str) -> str:
    """Absolute path of ``binary`` (a name on PATH or a path)."""
    found = shutil.which(binary)
    if not found:
        name = os.path.basename(binary)
        where = "on PATH" if os.sep not in binary else f"at {binary}"
        raise ToolNotFound(f"{name} not found {where} (set {setting}=/path/to/{name})")
    return found


@dataclass
class CommandRunner:
    """Runs a task's tools (one at a time, or a few side by side from threads); ``kill()`` (from
    ``on_kill``) stops every one that is running, ``stop()`` also lets no other start."""

    timeout: float | None = None
    env: dict[str, str] | None = None
    log: Callable[[str], None] = lambda message: None
    withhold: Sequence[str] = ()  # more environment variables the tools must not see
    _procs: set[subprocess.Popen] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _at_stop: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def run(self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True,
            capture: bool = False, watch: Callable[[str], None] | None = None) -> subprocess.CompletedProcess:
        """Run to completion. Each line the tool writes to stderr, and to stdout unless ``capture``
        keeps stdout for the caller, is logged as it comes, and handed to ``watch`` (which must be
        quick: it runs on the reading thread); the returned ``stderr`` holds the last
        :data:`OUTPUT_TAIL_LINES` lines (a job's final counters)."""
        self.log("running: " + " ".join(argv))
        proc = self._start(argv, stdout=subprocess.PIPE)
        name = os.path.basename(argv[0])
        tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        captured: list[bytes] = []

        def stderr_line(line: str) -> None:
            tail.append(line)
            output_line(line)

        def output_line(line: str) -> None:
            if watch is not None:
                watch(line)
            self.log(f"{name}: {line}")

        readers = [_reader(proc.stderr, stderr_line)]
        if capture:
            readers.append(_thread(lambda: captured.append(proc.stdout.read())))  # type: ignore[union-attr]
        else:
            readers.append(_reader(proc.stdout, output_line))
        try:
            proc.wait(timeout=timeout or self.timeout or DEFAULT_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            _join(readers)
            raise CommandFailed(argv, None, _last(tail), timed_out=True) from None
        except BaseException:  # interrupted (Ctrl-C, a task timeout): the tool must not outlive us
            _kill_group(proc)
            raise
        finally:
            _join(readers)
            self._forget(proc)
        if proc.returncode != 0:
            ticket = self._ticket_problem(argv, proc.returncode, tail)
            if ticket is not None:  # even unchecked: an exit code is no answer when nobody was let in
                raise ticket
        if check and proc.returncode != 0:
            raise CommandFailed(argv, proc.returncode, _last(tail))
        stderr = "\n".join(tail).encode()
        return subprocess.CompletedProcess(argv, proc.returncode, b"".join(captured), stderr)

    def sha256_of_output(self, argv: Sequence[str], sizes: Sequence[int], *,
                         timeout: float | None = None) -> list[str]:
        """sha256 of each of several files a tool prints back to back (``hdfs dfs -cat a b``),
        split by their known ``sizes``: one process for all files, read in blocks, never whole.
        Extra or missing bytes raise, since they mean a file changed between stat and read. A tool
        that stalls is killed at the deadline (a blocked read then ends), never waited on forever."""
        self.log("running: " + " ".join(argv))
        proc = self._start(argv, stdout=subprocess.PIPE)
        stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        reader = _reader(proc.stderr, stderr_lines.append)
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            _kill_group(proc)

        watchdog = threading.Timer(timeout or self.timeout or DEFAULT_TIMEOUT, expire)
        watchdog.daemon = True
        watchdog.start()
        digests: list[str] = []
        try:
            assert proc.stdout is not None
            for size in sizes:
                digest, left = hashlib.sha256(), size
                while left:
                    block = proc.stdout.read(min(left, _HASH_BLOCK))
                    if not block:
                        break
                    digest.update(block)
                    left -= len(block)
                digests.append(digest.hexdigest() if not left else "(short read)")
            trailing = proc.stdout.read(1)
            proc.stdout.read()  # drain so the tool can exit
            proc.wait()  # bounded: the watchdog kills it at the deadline
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            watchdog.cancel()
            _join([reader])
            self._forget(proc)
        if timed_out.is_set():
            raise CommandFailed(argv, None, _last(stderr_lines), timed_out=True)
        if proc.returncode != 0:
            raise self._ticket_problem(argv, proc.returncode, stderr_lines) or \
                CommandFailed(argv, proc.returncode, _last(stderr_lines))
        if trailing:
            raise TransferError(f"{argv[0]} printed more bytes than the files' sizes: a file changed while read")
        return digests

    def stop(self) -> None:
        """The task or command is being cancelled: kill the running tool and start no other (a
        fallback chain would otherwise go on to its next method); then what the tools started
        elsewhere is stopped (:meth:`stopping`: a YARN application)."""
        with self._lock:
            self._stopped = True
            callbacks = list(self._at_stop)
        self.kill()
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # on_kill must go on; the failure is said
                self.log(f"while stopping: {exc}")

    @contextmanager
    def stopping(self, callback: Callable[[], None]) -> Iterator[None]:
        """Within this block :meth:`stop` also calls ``callback`` (after killing the tools): for
        what a tool started that outlives it, such as the YARN application of a MapReduce client."""
        with self._lock:
            self._at_stop.append(callback)
        try:
            yield
        finally:
            with self._lock:
                self._at_stop.remove(callback)

    def kill(self, grace: float = 5.0) -> None:
        """Terminate every running tool's whole process group (SIGTERM, then SIGKILL)."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc, grace)

    def _start(self, argv: Sequence[str], stdout: int) -> subprocess.Popen:
        with self._lock:  # held across the start, so stop() cannot miss a tool starting now
            if self._stopped:
                raise Stopped(f"not starting {os.path.basename(argv[0])}: the transfer was cancelled")
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                                    env=child_environment(self.env, self.withhold), start_new_session=True,
                                    preexec_fn=_die_with_parent)
            self._procs.add(proc)
        return proc

    def _forget(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def _ticket_problem(self, argv: Sequence[str], returncode: int, stderr: Sequence[str]) -> TicketFailed | None:
        """A tool that failed because its Kerberos ticket expired or is missing, said as the Impala
        session says it (one rule: kerberos.explain_ticket, which reads the cache the tool was given)."""
        meaningful = [line for line in stderr if line.strip() and not _STACK_FRAME.match(line)]
        explained = explain_ticket("\n".join(meaningful), child_environment(self.env, self.withhold))
        return None if explained is None else TicketFailed(argv, returncode, _last(stderr), explained)


class TicketFailed(CommandFailed):
    """A tool exited non-zero because its Kerberos ticket expired or is missing: the first line says
    so and what to do, then the command and its stderr tail as for any failed tool. FsShell exits 1
    for such a failure of ``-test`` too, which would read as "no": it is raised even where the
    caller reads the exit code itself (``check=False``)."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str, explanation: str):
        super().__init__(argv, returncode, stderr_tail)
        self.explanation = explanation
        ImpalaTransferError.__init__(self, f"{tool_name(argv)}: {explanation}\n{self.args[0]}")


def tool_name(argv: Sequence[str]) -> str:
    """How a person names the command: ``hadoop distcp``, ``hdfs dfs -mkdir`` (generic ``-D``
    options skipped)."""
    words = [os.path.basename(argv[0]), *argv[1:2]]
    if words[-1] in ("dfs", "fs"):
        words += [arg for arg in argv[2:] if not arg.startswith("-D")][:1]
    return " ".join(words)


# Never handed to a tool: the Impala password the CLI reads, and all of Airflow's own settings
# (AIRFLOW_CONN_* URIs with passwords, the metadata DB URL, the Fernet key), which no Hadoop or
# OpenSSH client needs. The rest stays: KRB5CCNAME, SSH_AUTH_SOCK, HADOOP_TOKEN_FILE_LOCATION...
WITHHELD_PREFIXES = ("AIRFLOW_",)
WITHHELD = ("IMPALA_PASSWORD",)


def child_environment(extra: dict[str, str] | None = None, withhold: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment without what a tool must not see (:data:`WITHHELD`, Airflow's
    settings, and the variables named in ``withhold``, e.g. the CLI's ``--password-env``), plus
    ``extra``: what a tool is given explicitly (``hadoop_env``) reaches it."""
    hidden = set(WITHHELD) | set(withhold)
    inherited = {name: value for name, value in os.environ.items()
                 if name not in hidden and not name.startswith(WITHHELD_PREFIXES)}
    return {**inherited, **(extra or {})}


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``), so no tool outlives a killed task. Touches nothing but libc."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _reader(stream: IO[bytes] | None, sink: Callable[[str], None]) -> threading.Thread:
    """Hand each line of ``stream`` to ``sink`` as it arrives, until the tool closes it."""
    def pump() -> None:
        if stream is not None:
            for raw in stream:
                sink(raw.decode("utf-8", "replace").rstrip("\r\n"))
    return _thread(pump)


def _join(threads: Sequence[threading.Thread], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.01))


# A Java stack frame ("\tat org.apache.hadoop...(DFSOutputStream.java:1148)", "\t... 4 more"). A
# failing Hadoop tool prints dozens per exception, and DistCp several exceptions per file: the
# frames would push the one line that says what happened (a quota, a permission) out of the tail.
_STACK_FRAME = re.compile(r"^\s+at \S+\(.*\)\s*$|^\s*\.\.\. \d+ more\s*$")


def _last(lines: Sequence[str], count: int = STDERR_TAIL_LINES) -> str:
    """The last ``count`` lines worth quoting in a failure: no stack frames, no blank lines."""
    meaningful = [line for line in lines if line.strip() and not _STACK_FRAME.match(line)]
    return "\n".join((meaningful or list(lines))[-count:]).strip()


def _kill_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the tool's process group, then SIGKILL what is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
