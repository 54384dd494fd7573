"""boto3 clients with bounded timeouts and retries; the admin token from Secrets Manager."""

from __future__ import annotations

import hmac
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from app.resilience import MAX_ATTEMPTS

if TYPE_CHECKING:
    from app.settings import Settings


def client(service: str, settings: Settings) -> Any:
    config = Config(
        region_name=settings.aws_region,
        connect_timeout=settings.outbound_timeout,
        read_timeout=settings.outbound_timeout,
        # Standard mode: exponential backoff with jitter, for retryable (idempotent-safe) errors only.
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    )
    # Typed per service name by boto3-stubs; this one factory serves every service the app names.
    session: Any = boto3.session.Session()
    return session.client(service, endpoint_url=settings.aws_endpoint_url or None, config=config)


class AdminToken:
    """The admin token: from the environment (ECS `valueFrom`) or read from Secrets Manager, cached 5 minutes."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._value = ""
        self._fetched = 0.0

    def _current(self) -> str:
        direct = self._settings.admin_token.get_secret_value()
        if direct or not self._settings.admin_token_secret_id:
            return direct
        with self._lock:
            if not self._value or time.monotonic() - self._fetched > 300:
                sm = client("secretsmanager", self._settings)
                self._value = sm.get_secret_value(SecretId=self._settings.admin_token_secret_id)["SecretString"]
                self._fetched = time.monotonic()
            return self._value

    def matches(self, presented: str) -> bool:
        expected = self._current()
        return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())
