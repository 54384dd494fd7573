"""Bulkheads: a bounded, non-queueing compartment per dependency, per process.

Each dependency the API and the worker call (`db-writer`, `db-reader`, `redis`, `sqs`, `notifications`) gets a
fixed number of slots, fewer than the process's threads, so a slow dependency can hold at most its own slots:
the threads left over keep serving everything else. A call that finds its compartment full fails with
`CompartmentFull`: the caller uses the dependency's fallback (Redis full: read the database; SQS full: the
outbox rows wait; the provider full: the message goes back to the queue), or the API answers 503 with
`Retry-After`.

Full is either busy or stuck, and only a stuck compartment sheds at once. Busy: a burst wants more slots than
there are (8 orders at once on an API process want the writer's 6) while calls keep finishing; the caller waits
for a slot, at most `BULKHEAD_WAIT_MS` (200 ms: measured at 16 connections on a loaded machine, a 50 ms wait
still shed about one order in 300 with nothing wrong). Stuck: a caller has already waited that long in vain
since the last slot came back; every caller after it is shed without waiting, holding no thread, until a call
finishes.

The slots are a `queue.SimpleQueue` of tokens: taking and returning one is a single C call with no
Python-level lock (a `threading.Semaphore` takes its condition's lock in Python on every acquire and release),
so an uncontended call costs well under a microsecond on the hot path and allocates nothing. The bulkhead is
its own context manager (`with bulkhead:`), again to allocate nothing per call.
"""

from __future__ import annotations

import queue
import time
from collections import Counter
from typing import TYPE_CHECKING

import structlog

from app import contract
from app.observability import metric_fields

if TYPE_CHECKING:
    from types import TracebackType

    from app.settings import Settings

log = structlog.get_logger("app.bulkhead")
# Shed calls per dependency in this process (tests and diagnostics; CloudWatch counts them from the logs).
REJECTIONS: Counter[str] = Counter()
DB_WRITER, DB_READER, REDIS, SQS, NOTIFICATIONS = "db-writer", "db-reader", "redis", "sqs", "notifications"


class CompartmentFull(Exception):
    """Every slot of the dependency's compartment is taken: use its fallback, or answer 503."""

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} is saturated")
        self.dependency = dependency


class Bulkhead:
    """`size` slots for one dependency; `with bulkhead:` holds one for the block or raises `CompartmentFull`."""

    __slots__ = ("_namespace", "_released_at", "_slots", "_timed_out_at", "_wait", "name", "size")

    def __init__(self, name: str, size: int, wait_seconds: float = 0.0, namespace: str = "App") -> None:
        if size < 1:
            raise ValueError(f"bulkhead {name!r}: size must be at least 1 (got {size})")
        if wait_seconds < 0:
            raise ValueError(f"bulkhead {name!r}: wait must not be negative (got {wait_seconds})")
        self.name, self.size, self._wait, self._namespace = name, size, wait_seconds, namespace
        self._slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        # When a slot last came back, and when a caller last waited the whole wait in vain (monotonic seconds).
        self._released_at = self._timed_out_at = 0.0
        for _ in range(size):
            self._slots.put(None)

    @classmethod
    def for_dependency(cls, name: str, settings: Settings) -> Bulkhead:
        """The compartment `name` sized from the settings (`BULKHEAD_*`)."""
        sizes = {
            DB_WRITER: settings.bulkhead_db_writer,
            DB_READER: settings.bulkhead_db_reader,
            REDIS: settings.bulkhead_redis,
            SQS: settings.bulkhead_sqs,
            NOTIFICATIONS: settings.bulkhead_notifications,
        }
        return cls(name, sizes[name], settings.bulkhead_wait_ms / 1000, settings.metrics_namespace)

    @property
    def in_use(self) -> int:
        return self.size - self._slots.qsize()

    def __enter__(self) -> None:
        try:
            self._slots.get_nowait()
            return
        except queue.Empty:
            pass
        # Full. Busy or stuck? If a caller has waited the whole wait in vain since a slot last came back, the
        # calls inside are stuck: shed at once, holding no thread. Otherwise slots are turning over (a burst
        # larger than the compartment): wait for one, up to the bound.
        if self._wait and self._timed_out_at <= self._released_at:
            try:
                self._slots.get(timeout=self._wait)
                return
            except queue.Empty:
                self._timed_out_at = time.monotonic()
        self._shed()
        raise CompartmentFull(self.name)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._released_at = time.monotonic()
        self._slots.put(None)

    def _shed(self) -> None:
        REJECTIONS[self.name] += 1
        log.warning(
            "bulkhead_rejected",
            size=self.size,
            **metric_fields(self._namespace, {contract.METRIC_BULKHEAD_REJECTED: 1}, {"Dependency": self.name}),
        )
