"""The Redis client per thread."""

from __future__ import annotations

import threading
import time
from typing import Any

from app.cache import Cache


def _connected_ids(make_settings: Any) -> set[int]:
    probe = Cache(make_settings())
    try:
        return {int(c["id"]) for c in probe.client.client_list()}
    finally:
        probe.close()


def test_each_thread_gets_its_own_connection_and_close_releases_them(make_settings: Any) -> None:
    cache = Cache(make_settings())
    seen: dict[str, int] = {}
    recorded, release = threading.Barrier(4), threading.Event()

    def work(name: str) -> None:
        client = cache.thread_client()
        assert cache.thread_client() is client  # pinned: the same one on every call of this thread
        seen[name] = int(cache.call(lambda r: r.client_id()))
        recorded.wait(5)
        release.wait(5)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        recorded.wait(5)
        assert len(set(seen.values())) == 3
        assert set(seen.values()) <= _connected_ids(make_settings)
        cache.close()  # while the threads still hold their clients
        deadline = time.monotonic() + 5
        while set(seen.values()) & _connected_ids(make_settings):
            assert time.monotonic() < deadline, "close() left thread connections open"
            time.sleep(0.05)
    finally:
        release.set()
        for t in threads:
            t.join()


def test_a_threads_connection_goes_with_the_thread(make_settings: Any) -> None:
    cache = Cache(make_settings())
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(int(cache.call(lambda r: r.client_id()))))
    worker.start()
    worker.join()
    deadline = time.monotonic() + 5
    while seen[0] in _connected_ids(make_settings):
        assert time.monotonic() < deadline, "a finished thread's connection stayed open"
        time.sleep(0.05)
    cache.close()
