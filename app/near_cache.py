"""The near cache: product documents in process memory, in front of the Redis cache-aside tier.

Bounded and LRU: at most `MAX_ENTRIES` documents of at most `MAX_DOCUMENT_BYTES` each (larger ones, possible
with escaped non-ASCII text, are served from Redis), so the tier holds at most ~45 MiB; measured with tracemalloc,
a typical ~180-byte product costs ~0.5 KiB with its ETag and bookkeeping, ~4.8 MiB for 10,000. Each entry lives
no longer than the Redis entry it was read from (its remaining TTL, at most `PRODUCT_CACHE_TTL_SECONDS`).

Trust comes from a live subscription, nothing else. Every writer (admin writes, the worker's stock changes,
through `Catalog.invalidate`) publishes the changed ids on `<prefix>product-invalidate` in the same round trip
that deletes the Redis entries; each process's subscriber thread drops them, typically within a millisecond
or two on loopback (tests/app/test_near_cache.py measures it across two gunicorns). The cache serves and
stores nothing until its subscription is confirmed, and empties itself and goes dark when the subscription
breaks (connection killed, Redis restarted: at once, as the socket closes) or falls silent (a network cut
without a reset: no answer to the once-a-second ping for `MAX_SILENCE_SECONDS`); it comes back, empty, once
resubscribed. A fill that started before an invalidation is not stored after it (a generation check).

Why not cachetools: its caches need a lock around every read (a read reorders the LRU); OrderedDict's
C-level `move_to_end` is atomic under the GIL, so a hit takes no lock at all.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Any

import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import contract
from app.cache import REDIS_ERRORS, redis_client

if TYPE_CHECKING:
    from collections.abc import Iterable

    from app.cache import Cache

log = structlog.get_logger("app.near_cache")
MAX_ENTRIES = 10_000
MAX_DOCUMENT_BYTES = 4096
PING_SECONDS = 1.0
MAX_SILENCE_SECONDS = 3.0
RESUBSCRIBE_SECONDS = 0.5
# Why the cache last went dark (a `CLIENT KILL`, a restart, silence), for tests and logs.
DARK_EVENTS: Counter[str] = Counter()


class NearCache:
    """Product id -> (expires at, JSON bytes, ETag); see the module docstring for the trust rules."""

    def __init__(self, cache: Cache, max_entries: int = MAX_ENTRIES) -> None:
        self._cache = cache
        self.channel = cache.key("product-invalidate")
        self.client_name = cache.key("near-cache")
        self.max_entries = max_entries
        self._entries: OrderedDict[int, tuple[float, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0
        self.live = False
        self._heard = 0.0
        self._pid = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reads and fills (request threads) --

    def get(self, product_id: int) -> tuple[bytes, str] | None:
        """The document and its ETag, or None (absent, expired, or the cache cannot be trusted right now)."""
        if self._pid != os.getpid():
            self._start()  # threads do not survive gunicorn's fork: one subscriber per process
            return None
        if not self.live:
            return None
        now = time.monotonic()
        if now - self._heard > MAX_SILENCE_SECONDS:
            self._go_dark("silent")
            return None
        entry = self._entries.get(product_id)
        if entry is None:
            return None
        if entry[0] <= now:
            self._entries.pop(product_id, None)
            return None
        try:  # noqa: SIM105 - the hot path: a `suppress` context costs more than the lookup
            self._entries.move_to_end(product_id)
        except KeyError:  # dropped by an invalidation meanwhile: the copy in hand was still current when read
            pass
        return entry[1], entry[2]

    def put(self, product_id: int, body: bytes, etag: str, ttl: float, generation: int) -> None:
        """Store a document read when `generation` was current; refused if an invalidation came in since."""
        if ttl <= 0 or len(body) > MAX_DOCUMENT_BYTES:
            return
        with self._lock:
            if not self.live or generation != self.generation:
                return
            self._entries[product_id] = (time.monotonic() + ttl, body, etag)
            self._entries.move_to_end(product_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    # -- invalidation --

    def drop(self, product_ids: Iterable[int]) -> None:
        with self._lock:
            self.generation += 1
            for product_id in product_ids:
                self._entries.pop(product_id, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def _go_dark(self, reason: str) -> None:
        with self._lock:
            was_live, self.live = self.live, False
            self.generation += 1
            self._entries.clear()
        if was_live:
            DARK_EVENTS[reason] += 1
            log.warning("near_cache_dark", reason=reason)

    def _go_live(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()  # whatever was published while we were not listening is unknown
            self._heard = time.monotonic()
            self.live = True

    @staticmethod
    def message(product_ids: Iterable[int]) -> str:
        return ",".join(str(p) for p in product_ids)

    def _on_message(self, data: bytes) -> None:
        self.drop(int(p) for p in data.split(b",") if p)

    # -- the subscriber thread --

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.live, self._entries = False, OrderedDict()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="near-cache-subscriber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # No retries on this connection: redis-py would otherwise reconnect and resubscribe silently, and
        # whatever was published in between would be lost without the cache knowing.
        # Named, so an operator (or a test) can find and kill exactly this connection.
        client = redis_client(self._cache.settings, retry=Retry(NoBackoff(), 0), client_name=self.client_name)
        while not self._stop.is_set():
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                next_ping = time.monotonic() + PING_SECONDS
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=PING_SECONDS / 2)
                    now = time.monotonic()
                    if msg is not None:
                        self._heard = now
                        kind = msg["type"]
                        if kind == "message":
                            self._on_message(msg["data"])
                        elif kind == "subscribe" or (kind == "pong" and not self.live):
                            # A pong after silence: the connection held, so nothing published was lost.
                            self._go_live()
                    if now >= next_ping:
                        pubsub.ping()
                        next_ping = now + PING_SECONDS
            except REDIS_ERRORS as exc:
                self._go_dark(type(exc).__name__)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):  # closing a broken connection: nothing left to release
                    pubsub.close()
            self._stop.wait(RESUBSCRIBE_SECONDS)
        client.close()

    def stop(self) -> None:
        """Stop serving at once; the subscriber notices within half a ping interval, closes and ends (not
        waited for: a shutdown should not spend that long)."""
        self._stop.set()
        self.live = False
        self.clear()


def entry_ttl(pttl_ms: Any) -> float:
    """The near copy's lifetime: what the Redis entry it came from has left (PTTL; -1/-2 for none/gone)."""
    if not isinstance(pttl_ms, int) or pttl_ms <= 0:
        return 0.0
    return min(pttl_ms / 1000, contract.PRODUCT_CACHE_TTL_SECONDS)
