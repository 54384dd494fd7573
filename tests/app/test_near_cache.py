"""The near cache: invalidation across processes, and what it does when the invalidation channel drops."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from app import contract
from app.cache import Cache
from app.catalog import Catalog
from app.data import Database
from app.near_cache import DARK_EVENTS, MAX_DOCUMENT_BYTES, MAX_SILENCE_SECONDS, NearCache
from tests.app.conftest import ADMIN
from tests.app.gunicorn_support import served

AUTH = {"Authorization": f"Bearer {ADMIN}"}
# The bound the README states for a write to reach every task's near cache (measured: a few milliseconds).
INVALIDATION_BOUND_SECONDS = 0.5


def _wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "condition not reached"
        time.sleep(0.002)
    return time.monotonic() - start


def _tier(client: Any, pid: int) -> str:
    return str(client.get(f"/api/products/{pid}").headers["X-Cache-Tier"])


def _warm(client: Any, pid: int) -> None:
    """Read until the product is served from this process's memory (its subscription confirmed first)."""
    _wait_until(lambda: _tier(client, pid) == "memory")


@pytest.fixture
def two_apis(database: str, prefix: str, moto: Any) -> Iterator[list[httpx.Client]]:
    """Two gunicorns of the API, one worker each: two processes, two near caches, one Redis."""
    settings = {contract.AWS_ENDPOINT_URL: moto.url, contract.RATE_LIMIT_PER_MINUTE: "100000"}
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(httpx.Client(base_url=stack.enter_context(served(database, prefix, **settings))))
            for _ in range(2)
        ]


def test_a_write_reaches_the_other_processs_near_cache_within_the_bound(
    two_apis: list[httpx.Client], add_product: Any, settings: Any
) -> None:
    writer, reader = two_apis
    pid = add_product(stock=5)
    for client in two_apis:
        _warm(client, pid)
    # An admin write through the other API process.
    assert writer.put(f"/api/admin/products/{pid}/stock", json={"stock": 6}, headers=AUTH).status_code == 200
    admin_delay = _wait_until(lambda: reader.get(f"/api/products/{pid}").json()["stock"] == 6)
    # The worker's path: a stock change it committed, invalidated from a process that serves no reads.
    _warm(reader, pid)
    cache = Cache(settings)
    db = Database(settings, cache.available_client)
    db.open()
    try:
        with db.transaction() as conn:
            conn.execute("UPDATE products SET stock = 7 WHERE id = %s", (pid,))
        Catalog(db, cache).invalidate([pid])
        worker_delay = _wait_until(lambda: reader.get(f"/api/products/{pid}").json()["stock"] == 7)
    finally:
        db.close()
        cache.close()
    print(
        f"near-cache invalidation across processes: admin write {admin_delay * 1000:.1f} ms,"
        f" worker write {worker_delay * 1000:.1f} ms"
    )
    assert admin_delay < INVALIDATION_BOUND_SECONDS and worker_delay < INVALIDATION_BOUND_SECONDS


def _kill_subscriber(near: NearCache) -> None:
    """`CLIENT KILL` of this near cache's own subscription, found by its name (never anyone else's)."""
    r = redis.Redis()
    try:
        ids = [c["id"] for c in r.client_list(_type="pubsub") if c.get("name") == near.client_name]
        assert len(ids) == 1
        r.client_kill_filter(_id=ids[0])
    finally:
        r.close()


def test_a_killed_subscription_empties_the_near_cache_and_nothing_published_meanwhile_is_served(
    make_app: Any, add_product: Any, db: Any
) -> None:
    app = make_app()
    client, catalog = app.test_client(), app.extensions["services"].catalog
    near = catalog.near
    pid = add_product(stock=1)
    _warm(client, pid)
    dark = DARK_EVENTS.total()
    _kill_subscriber(near)
    _wait_until(lambda: DARK_EVENTS.total() > dark, 1.0)
    assert len(near) == 0 and not near.live
    assert _tier(client, pid) == "redis"  # nothing kept, nothing stored until resubscribed
    assert len(near) == 0
    # A write whose message nobody in this process hears: it must not matter once resubscribed.
    db.execute("UPDATE products SET stock = 2 WHERE id = %s", (pid,))
    catalog.invalidate([pid])
    _wait_until(lambda: near.live)
    _warm(client, pid)
    assert client.get(f"/api/products/{pid}").json["stock"] == 2


def test_a_redis_restart_empties_the_near_cache_until_resubscribed(
    make_app: Any, own_redis: Any, add_product: Any
) -> None:
    app = make_app(redis_url=own_redis.url, breaker_reset_seconds=0.2)
    client, near = app.test_client(), app.extensions["services"].catalog.near
    pid = add_product()
    _warm(client, pid)
    own_redis.stop()
    _wait_until(lambda: not near.live, 1.0)
    assert len(near) == 0 and _tier(client, pid) == "database"
    own_redis.start()
    _wait_until(lambda: near.live)
    _warm(client, pid)


def test_a_silent_channel_stops_the_near_cache_serving(make_app: Any, own_redis: Any, add_product: Any) -> None:
    # A frozen Redis stands in for a network cut: the connection stays open, nothing answers the pings.
    app = make_app(redis_url=own_redis.url)
    client, near = app.test_client(), app.extensions["services"].catalog.near
    pid = add_product()
    _warm(client, pid)
    assert own_redis.proc is not None
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(MAX_SILENCE_SECONDS + 0.2)
        assert near.get(pid) is None and len(near) == 0
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    _wait_until(lambda: near.live)
    _warm(client, pid)


def test_a_fill_that_started_before_an_invalidation_is_not_stored(settings: Any) -> None:
    near = NearCache(Cache(settings))
    near.live = True  # as after a confirmed subscription (no thread here)
    near._heard = time.monotonic()
    near._pid = os.getpid()
    before = near.generation
    near.drop([1])  # arrives while the fill's Redis read is in flight
    near.put(1, b"{}", '"e"', 60, before)
    assert near.get(1) is None
    near.put(1, b"{}", '"e"', 60, near.generation)
    assert near.get(1) == (b"{}", '"e"')


def test_the_near_cache_is_bounded_evicts_the_least_recently_used_and_skips_large_documents(settings: Any) -> None:
    near = NearCache(Cache(settings), max_entries=3)
    near.live, near._heard, near._pid = True, time.monotonic(), os.getpid()
    for pid in (1, 2, 3):
        near.put(pid, b"{}", '"e"', 60, near.generation)
    assert near.get(1) is not None  # 1 is now the most recently used
    near.put(4, b"{}", '"e"', 60, near.generation)
    assert len(near) == 3 and near.get(2) is None
    assert all(near.get(pid) is not None for pid in (1, 3, 4))
    near.put(5, b"x" * (MAX_DOCUMENT_BYTES + 1), '"e"', 60, near.generation)  # bounded in bytes too
    assert near.get(5) is None and near.get(1) is not None
