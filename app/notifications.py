"""The notification provider's client: a 3 s timeout, retries with exponential backoff and jitter, a breaker.

Every call carries `Idempotency-Key: <message id>`, so a retried or redelivered message notifies once at a
provider that honours it. 5xx, 429 and transport errors (connection refused or reset, timeouts) are retried
and count against the shared breaker; other 4xx answers are permanent (`NotificationRejected`).

The client is urllib3's connection pool for the provider's host: per call it takes less than half the CPU of
httpx's client, and the worker makes one call per message.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import structlog
import urllib3
from urllib3.exceptions import HTTPError as TransportError
from urllib3.util import parse_url

from app import contract
from app.bulkhead import NOTIFICATIONS, Bulkhead
from app.resilience import CircuitBreaker, retrying

if TYPE_CHECKING:
    from collections.abc import Callable

    import redis

    from app.settings import Settings

log = structlog.get_logger("app.notifications")


class NotificationFailed(Exception):
    """The provider did not accept the notification (retryable: 5xx, 429, timeout, connection error)."""


class NotificationRejected(Exception):
    """The provider refused the notification for good (a 4xx other than 429)."""


NOTIFY_ERRORS: tuple[type[BaseException], ...] = (NotificationFailed,)


class Notifier:
    def __init__(
        self,
        settings: Settings,
        redis_client: Callable[[], redis.Redis | None] | None = None,
        attempts: int = 3,
        stopping: threading.Event | None = None,
    ) -> None:
        """`stopping`: the process's shutdown event; once set, a failed call is not tried again (the message goes
        back to the queue and is retried by whoever receives it next)."""
        self.url = settings.notification_url
        self.attempts = attempts
        self.breaker = CircuitBreaker("notifications", settings, redis_client, NOTIFY_ERRORS)
        # Held for a whole send, retries and their backoff included: that is how long the thread is taken.
        self.bulkhead = Bulkhead.for_dependency(NOTIFICATIONS, settings)
        headers = {"User-Agent": "app-worker", "Content-Type": "application/json"}
        key = settings.notification_api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self._pool: urllib3.HTTPConnectionPool | None = None
        if self.url:
            self._target = parse_url(self.url).request_uri
            bound = contract.OUTBOUND_TIMEOUT_SECONDS
            self._pool = urllib3.connection_from_url(
                self.url,
                maxsize=settings.worker_in_flight,  # one kept-alive connection per concurrent message
                timeout=urllib3.Timeout(connect=bound, read=bound),
                # The retries below count against the breaker; urllib3's own would hide failures from it.
                retries=False,
            )
        # Its per-attempt state is thread-local.
        self._retrying = retrying(NOTIFY_ERRORS, attempts=attempts, until=stopping)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def _post(self, idempotency_key: str, payload: dict[str, Any]) -> None:
        assert self._pool is not None
        try:
            resp = self._pool.urlopen(
                "POST",
                self._target,
                body=json.dumps(payload, separators=(",", ":")).encode(),
                headers={**self._headers, "Idempotency-Key": idempotency_key},
            )
        except TransportError as exc:
            raise NotificationFailed(f"provider unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status >= 500 or resp.status == 429:
            raise NotificationFailed(f"provider answered {resp.status}")
        if resp.status >= 400:
            raise NotificationRejected(f"provider answered {resp.status}")

    def send(self, idempotency_key: str, payload: dict[str, Any]) -> None:
        """Deliver one notification; raises CircuitOpenError, CompartmentFull, NotificationFailed or
        NotificationRejected."""
        if not self.enabled:
            return
        with self.bulkhead:
            for attempt in self._retrying:
                with attempt:
                    self.breaker.call(lambda: self._post(idempotency_key, payload))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
