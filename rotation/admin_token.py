"""The API's admin token: a new random value each rotation, nothing to set on a service.

The API reads the token from Secrets Manager at run time (ADMIN_TOKEN_SECRET_ID) and re-reads it when a
presented token does not match its cached copy (app/aws.py), so the new AWSCURRENT works at once and an
admin who reads the secret is never locked out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rotation.steps import RotationError, rotate

MIN_LENGTH = 32


class AdminToken:
    def set(self, current: str, pending: str, staged_at: datetime) -> None:
        """The API holds no copy to update: it reads the secret itself."""

    def test(self, pending: str) -> None:
        if len(pending) < MIN_LENGTH or not pending.isalnum():
            raise RotationError(f"admin token: the pending value must be {MIN_LENGTH}+ letters and digits")

    def finish(self, previous: str, current: str) -> None:
        """Nothing to retire: the API accepts AWSCURRENT only."""


def handler(event: Any, context: Any) -> str:
    return rotate(event, AdminToken())
