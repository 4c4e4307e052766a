"""Two (or more) workers at once, for the race tests: each call in its own thread."""

from __future__ import annotations

import threading
from collections.abc import Callable


def at_once(calls: list[Callable[[], object]], *, expected: type[BaseException], timeout: float) -> dict[int, object]:
    """Start every call together; index -> what it returned or the ``expected`` error it raised.
    A call still running after ``timeout`` (or failing otherwise) has no entry."""
    outcomes: dict[int, object] = {}

    def attempt(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except expected as exc:
            outcomes[i] = exc
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return outcomes
