"""The notification provider's client: a 3 s timeout, retries with exponential backoff and jitter, a breaker.

Every call carries `Idempotency-Key: <message id>`, so a retried or redelivered message notifies once at a
provider that honours it. 5xx, 429 and transport errors are retried and count against the shared breaker;
other 4xx answers are permanent (`NotificationRejected`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import structlog

from app import contract
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


NOTIFY_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, NotificationFailed)


class Notifier:
    def __init__(
        self,
        settings: Settings,
        redis_client: Callable[[], redis.Redis | None] | None = None,
        attempts: int = 3,
    ) -> None:
        self.url = settings.notification_url
        self.attempts = attempts
        self.breaker = CircuitBreaker("notifications", settings, redis_client, NOTIFY_ERRORS)
        headers = {"User-Agent": "app-worker"}
        key = settings.notification_api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(timeout=httpx.Timeout(contract.OUTBOUND_TIMEOUT_SECONDS), headers=headers)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def _post(self, idempotency_key: str, payload: dict[str, Any]) -> None:
        resp = self._http.post(self.url, json=payload, headers={"Idempotency-Key": idempotency_key})
        if resp.status_code >= 500 or resp.status_code == 429:
            raise NotificationFailed(f"provider answered {resp.status_code}")
        if resp.status_code >= 400:
            raise NotificationRejected(f"provider answered {resp.status_code}")

    def send(self, idempotency_key: str, payload: dict[str, Any]) -> None:
        """Deliver one notification; raises CircuitOpenError, NotificationFailed/TransportError, or Rejected."""
        if not self.enabled:
            return
        for attempt in retrying(NOTIFY_ERRORS, attempts=self.attempts):
            with attempt:
                self.breaker.call(lambda: self._post(idempotency_key, payload))

    def close(self) -> None:
        self._http.close()
