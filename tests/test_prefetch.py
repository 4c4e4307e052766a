import threading
import time

import pytest

from airflow_provider_impala_transfer.core.extract.prefetch import Prefetcher


def source(items, fail_at=None, fetched=None):
    it = iter(items)

    def next_batch():
        value = next(it, None)
        if fetched is not None and value is not None:
            fetched.append(value)
        if fail_at is not None and value == fail_at:
            raise ConnectionError(f"lost at {value}")
        return value
    return next_batch


def test_batches_arrive_in_order_and_the_stream_ends():
    with Prefetcher(source(range(1, 101))) as batches:
        assert list(batches) == list(range(1, 101))


def test_look_ahead_is_bounded_so_memory_is_too():
    fetched = []
    with Prefetcher(source(range(1, 1001), fetched=fetched), depth=2) as batches:
        first = next(iter(batches))
        time.sleep(0.3)
        assert first == 1
        assert len(fetched) <= 1 + 2 + 1  # consumed + queued + one waiting to be queued


def test_a_fetch_error_is_raised_in_the_consumer():
    with Prefetcher(source(range(1, 10), fail_at=5)) as batches:
        seen = []
        with pytest.raises(ConnectionError, match="lost at 5"):
            for b in batches:
                seen.append(b)
    assert seen == [1, 2, 3, 4]


def test_a_consumer_error_stops_the_fetch_thread():
    fetched = []
    prefetcher = Prefetcher(source(range(1, 100_000), fetched=fetched), depth=2)
    with pytest.raises(RuntimeError), prefetcher:
        for _ in prefetcher:
            raise RuntimeError("disk full")
    assert not any(t.name == "impala-fetch" and t.is_alive() for t in threading.enumerate())
    assert len(fetched) < 10
