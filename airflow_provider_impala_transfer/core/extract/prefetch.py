"""Overlap fetching with converting and writing.

A HiveServer2 fetch is a request/reply and the server produces the next rows only when asked, so
a loop that fetches, then converts and writes, leaves the server idle during the second half.
:class:`Prefetcher` runs the fetch loop on one background thread, a bounded number of batches
ahead. That thread is the only one touching the cursor until it finishes (impyla connections are
not thread-safe), and the bound keeps memory independent of the result size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_END = object()


class Prefetcher:
    """Iterate ``next_batch()`` results (until it returns None) fetched ahead on a thread."""

    def __init__(self, next_batch: Callable[[], Any], *, depth: int = 2, name: str = "impala-fetch"):
        self._next_batch = next_batch
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._next_batch()
                if not self._offer(_END if batch is None else batch) or batch is None:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._offer(exc)

    def _offer(self, item: Any) -> bool:
        """Put ``item`` unless the consumer has gone away; never blocks forever."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self, timeout: float = 10.0) -> None:
        """Stop fetching (after an error downstream) and wait for the thread to let go of the cursor."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
