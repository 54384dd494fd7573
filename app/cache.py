"""Redis: the client, cache-aside helpers guarded by the Redis breaker, and the config cache.

When Redis is down (or its breaker is open) cache reads are misses and cache writes are skipped, so reads
come from the database and the API stays up.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
import structlog

from app import contract
from app.bulkhead import REDIS, Bulkhead, CompartmentFull
from app.resilience import CircuitBreaker, CircuitOpenError

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger("app.cache")
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
# What a caller of `Cache.call` handles as "the cache is unavailable": Redis failed, its breaker is open, or its
# compartment is full (a read then goes to the database, as when Redis is down).
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (CircuitOpenError, CompartmentFull, *REDIS_ERRORS)


def redis_client(settings: Settings, *, single_connection: bool = False, **options: Any) -> redis.Redis:
    url = settings.redis_url
    if settings.redis_tls and url.startswith("redis://"):
        url = "rediss://" + url.removeprefix("redis://")
    password = settings.redis_auth_token.get_secret_value() or None
    return redis.Redis.from_url(
        url,
        password=password,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
        max_connections=64,  # a pipeline on a single-connection client still takes one from its pool
        single_connection_client=single_connection,
        **options,
    )


class Cache:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.redis_key_prefix
        self.client = redis_client(settings)  # shared: pub/sub and whatever runs outside the request threads
        # Process-local: the state of Redis's own breaker cannot live in Redis.
        self.breaker = CircuitBreaker("redis", settings, None, REDIS_ERRORS)
        self.bulkhead = Bulkhead.for_dependency(REDIS, settings)
        self._local = threading.local()
        # Weak: a client goes (and closes its connection) with the thread that made it.
        self._thread_clients: weakref.WeakSet[redis.Redis] = weakref.WeakSet()
        self._clients_lock = threading.Lock()

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def thread_client(self) -> redis.Redis:
        """This thread's own connection. A request or message thread makes several Redis calls in a row: a
        pinned connection skips the pool's per-command checkout (a lock, a readiness poll, bookkeeping), which
        costs about as much as the command's own round trip on loopback."""
        client: redis.Redis | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = redis_client(self.settings, single_connection=True)
            with self._clients_lock:
                self._thread_clients.add(client)
        return client

    def available_client(self) -> redis.Redis | None:
        """This thread's client, or None while Redis's breaker is open (used as the shared breaker store)."""
        return None if self.breaker.state == "open" else self.thread_client()

    def call(self, fn: Callable[[redis.Redis], Any]) -> Any:
        """Run one Redis command through the breaker and the compartment; raises CircuitOpenError,
        CompartmentFull (not a failure of Redis: the breaker does not count it) or a Redis error."""
        return self.breaker.call(lambda: self._in_compartment(fn))

    def _in_compartment(self, fn: Callable[[redis.Redis], Any]) -> Any:
        with self.bulkhead:
            return fn(self.thread_client())

    def get_json(self, key: str) -> tuple[bool, Any]:
        """(hit, value); a miss when Redis is unavailable."""
        try:
            raw = self.call(lambda r: r.get(key))
        except REDIS_UNAVAILABLE:
            return False, None
        if raw is None:
            return False, None
        return True, json.loads(raw)

    def set_json(self, key: str, value: Any, ttl: int) -> None:
        self.set_raw(key, json.dumps(value, separators=(",", ":")).encode(), ttl)

    def set_raw(self, key: str, value: bytes, ttl: int) -> None:
        try:
            self.call(lambda r: r.set(key, value, ex=ttl))
        except REDIS_UNAVAILABLE:
            log.info("cache_set_skipped", key=key)

    def delete(self, *keys: str) -> None:
        self.invalidate(list(keys))

    def invalidate(
        self, keys: list[str], versions: tuple[str, ...] = (), publish: tuple[str, str] | None = None
    ) -> None:
        """Drop `keys`, bump the `versions` counters (which name a family of entries) and publish `publish`
        (channel, message: the near caches' invalidation) in one round trip."""

        def drop(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            if keys:
                pipe.delete(*keys)
            for version in versions:
                pipe.incr(version)
            if publish:
                pipe.publish(*publish)
            pipe.execute()

        try:
            self.call(drop)
        except REDIS_UNAVAILABLE:
            # The entries will expire by TTL; logged so the stale window is visible.
            log.warning("cache_invalidation_failed", keys=keys, versions=list(versions))

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        with self._clients_lock:
            clients, self._thread_clients = list(self._thread_clients), weakref.WeakSet()
        for client in clients:
            client.close()
        self.client.close()


class ConfigCache:
    """Config and feature flags held in process memory for an hour, dropped on every task via pub/sub.

    A load that an invalidation overtakes (it read the old rows, the change's message arrived before it
    finished) is served to its caller but not kept: each invalidation bumps a generation, and a load is stored
    only if the generation it started under is still current. Loads read the writer (see `Services.build`),
    so the rows a load reads after an invalidation include the change that sent it.
    """

    def __init__(self, cache: Cache, loader: Callable[[], dict[str, Any]]) -> None:
        self._cache = cache
        self._loader = loader
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._expires = 0.0
        self._generation = 0
        self._pid = 0
        self._retry_at = 0.0
        self._thread: Any = None
        self.channel = cache.key("config-invalidate")

    def _ensure_subscriber(self) -> None:
        if self._pid == os.getpid() or time.monotonic() < self._retry_at:
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # threads do not survive gunicorn's fork: start one per process

            def on_error(exc: BaseException, ps: Any, _thread: Any) -> None:
                # Messages may have been missed while disconnected: drop the local copy to be safe.
                self.invalidate_local()
                log.info("config_subscriber_error", error=type(exc).__name__)
                time.sleep(1.0)

            try:
                if self._cache.available_client() is None:
                    raise redis.ConnectionError("redis breaker open")
                pubsub = self._cache.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(**{self.channel: lambda _msg: self.invalidate_local()})
                self._thread = pubsub.run_in_thread(sleep_time=1.0, daemon=True, exception_handler=on_error)
            except REDIS_ERRORS:
                self._pid, self._retry_at = 0, time.monotonic() + 5.0  # retry later; the TTL bounds staleness
                self._value = None
                log.info("config_subscriber_unavailable")

    def invalidate_local(self) -> None:
        with self._lock:
            self._value = None
            self._generation += 1

    def get(self) -> dict[str, Any]:
        self._ensure_subscriber()
        now = time.monotonic()
        with self._lock:
            if self._value is not None and now < self._expires:
                return self._value
            generation = self._generation
        value = self._loader()
        subscribed = self._pid == os.getpid()
        # Without a live subscription nobody would tell us about changes: keep the copy only briefly.
        ttl = contract.CONFIG_CACHE_TTL_SECONDS if subscribed else 5.0
        with self._lock:
            if generation == self._generation:  # no invalidation came in while loading
                self._value, self._expires = value, now + ttl
        return value

    def publish_invalidation(self) -> None:
        self.invalidate_local()
        try:
            self._cache.call(lambda r: r.publish(self.channel, "1"))
        except REDIS_UNAVAILABLE:
            log.warning("config_invalidation_not_published")

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
