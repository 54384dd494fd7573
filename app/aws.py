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


# How long a fetched admin token is trusted, and how soon a token that does not match may fetch it again: the
# secret rotates, and an admin who reads the new AWSCURRENT must not wait out the cache (nor can a stream of
# wrong tokens make more than one Secrets Manager call per interval).
ADMIN_TOKEN_TTL_SECONDS = 300
ADMIN_TOKEN_REFETCH_SECONDS = 10


class AdminToken:
    """The admin token: from the environment (ECS `valueFrom`), or read from Secrets Manager (the deployed
    stack: the secret rotates) and cached, re-read early when a presented token does not match."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._value = ""
        self._fetched = 0.0

    def _current(self, *, refetch: bool = False) -> str:
        direct = self._settings.admin_token.get_secret_value()
        if direct or not self._settings.admin_token_secret_id:
            return direct
        with self._lock:
            age = time.monotonic() - self._fetched
            if not self._value or age > ADMIN_TOKEN_TTL_SECONDS or (refetch and age > ADMIN_TOKEN_REFETCH_SECONDS):
                sm = client("secretsmanager", self._settings)
                self._value = sm.get_secret_value(
                    SecretId=self._settings.admin_token_secret_id, VersionStage="AWSCURRENT"
                )["SecretString"]
                self._fetched = time.monotonic()
            return self._value

    def matches(self, presented: str) -> bool:
        if self._equal(self._current(), presented):
            return True
        # Maybe rotated since the cached read: AWSCURRENT is what an admin reads, so try it before refusing.
        return bool(self._settings.admin_token_secret_id) and self._equal(self._current(refetch=True), presented)

    @staticmethod
    def _equal(expected: str, presented: str) -> bool:
        return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())
