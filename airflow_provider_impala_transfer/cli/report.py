"""What a person sees while the CLI runs: a live progress display on a terminal (rows, MB, ETA, the
method each chunk is on), plain timestamped lines otherwise (cron, CI, a pipe), and one summary
table at the end."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table


@dataclass
class ChunkOutcome:
    index: int
    description: str
    rows: int = 0
    bytes: int = 0
    files: int = 0
    method: str | None = None  # the method that delivered
    checksum: str = "-"  # "crc32c ok", "sha256 ok", "size ok", or "-"
    failed: list[str] = field(default_factory=list)  # "method: reason"
    error: str | None = None  # why this chunk did not arrive


class Reporter:
    """Plain lines on stderr; one per event, extract progress at most every ``every`` seconds."""

    def __init__(self, stream: IO[str] | None = None, *, verbose: bool = False, every: float = 10.0):
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.every = every
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def line(self, message: str) -> None:
        with self._lock:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {message}\n")
            self.stream.flush()

    def detail(self, message: str) -> None:
        if self.verbose:
            self.line(message)

    def start(self, chunks: Sequence[Any], total_rows: int | None) -> None:
        rows = f"{total_rows:,} rows" if total_rows is not None else "rows unknown"
        self.line(f"{len(chunks)} chunk(s), {rows}")

    def extracting(self, index: int, rows: int, written: int) -> None:
        now = time.monotonic()
        if now - self._last.get(index, 0.0) >= self.every:
            self._last[index] = now
            self.line(f"chunk {index}: {rows:,} rows, {written / 1e6:,.1f} MB extracted")

    def extracted(self, index: int, rows: int, written: int) -> None:
        self.line(f"chunk {index}: extracted {rows:,} rows, {written / 1e6:,.1f} MB")

    def trying(self, index: int, method: str) -> None:
        self.line(f"chunk {index}: trying {method}")

    def method_failed(self, index: int, method: str, reason: str) -> None:
        """The whole error: a tool's stderr tail is where Hadoop and OpenSSH say what went wrong."""
        first, *rest = reason.strip().splitlines() or [""]
        self.line(f"chunk {index}: {method} failed: {first}" + "".join(f"\n    {line}" for line in rest))

    def delivered(self, index: int, method: str) -> None:
        self.line(f"chunk {index}: delivered by {method}, verified")

    def chunk_failed(self, index: int, reason: str) -> None:
        self.line(f"chunk {index}: NOT delivered: {reason}")

    def stop(self) -> None:
        pass


class LiveReporter(Reporter):
    """A rich progress display: one bar for all rows, one line per chunk with its current step."""

    def __init__(self, console: Console, *, verbose: bool = False):
        super().__init__(console.file, verbose=verbose)
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=12),
            TextColumn("{task.fields[rows]:>11} rows {task.fields[mb]:>8} MB ETA"), TimeRemainingColumn(),
            console=console, transient=False, refresh_per_second=4,
        )
        self.total: TaskID | None = None
        self.chunks: dict[int, TaskID] = {}
        self.rows: dict[int, tuple[int, int]] = {}

    def line(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def start(self, chunks, total_rows):
        self.progress.start()
        self.total = self.progress.add_task("all chunks", total=total_rows, rows="0", mb="0.0")
        for chunk in chunks:
            self.chunks[chunk.index] = self.progress.add_task(
                f"chunk {chunk.index} waiting", total=None, rows="0", mb="0.0", start=False)

    def _update_total(self) -> None:
        rows = sum(r for r, _ in self.rows.values())
        written = sum(b for _, b in self.rows.values())
        if self.total is not None:
            self.progress.update(self.total, completed=rows, rows=f"{rows:,}", mb=f"{written / 1e6:,.1f}")

    def extracting(self, index, rows, written):
        task = self.chunks[index]
        self.progress.start_task(task)
        self.rows[index] = (rows, written)
        self.progress.update(task, description=f"chunk {index} extracting", rows=f"{rows:,}",
                             mb=f"{written / 1e6:,.1f}")
        self._update_total()

    def extracted(self, index, rows, written):
        self.extracting(index, rows, written)

    def trying(self, index, method):
        self.progress.update(self.chunks[index], description=f"chunk {index} {method}...")


    def delivered(self, index, method):
        task = self.chunks[index]
        self.progress.update(task, description=f"chunk {index} delivered by {method}", total=1, completed=1)

    def chunk_failed(self, index, reason):
        task = self.chunks[index]
        self.progress.update(task, description=f"chunk {index} NOT delivered", total=1, completed=0)
        self.line(f"chunk {index}: NOT delivered: {reason}")

    def stop(self):
        self.progress.stop()


def make_reporter(stream: IO[str], *, progress: str, verbose: bool) -> Reporter:
    live = progress == "always" or (progress == "auto" and stream.isatty())
    if live:
        return LiveReporter(Console(file=stream, force_terminal=True), verbose=verbose)
    return Reporter(stream, verbose=verbose)


def summary_table(outcomes: Sequence[ChunkOutcome]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("chunk", "left"), ("rows", "right"), ("bytes", "right"), ("files", "right"),
                          ("delivered by", "left"), ("checksum", "left"), ("failed first", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for o in outcomes:
        table.add_row(f"{o.index} {o.description}", f"{o.rows:,}", f"{o.bytes:,}", str(o.files),
                      o.method or "NOT DELIVERED", o.checksum, "; ".join(o.failed) or "-")
    return table


def print_summary(stream: IO[str], outcomes: Sequence[ChunkOutcome], lines: Sequence[str]) -> None:
    console = Console(file=stream, width=None if stream.isatty() else 100_000, highlight=False,
                      force_terminal=stream.isatty(), soft_wrap=False)
    console.print(summary_table(outcomes))
    for line in lines:
        console.print(line, markup=False)
