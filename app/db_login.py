"""How the app proves who it is to PostgreSQL.

In AWS the tasks sign in to RDS Proxy as `DB_USER` with an RDS IAM token, made per new connection from the task
role's credentials: there is no stored password, so the RDS-managed master password's rotation cannot break them.
The migrator (`app migrate`, the API task's init container) signs in to Aurora's writer as the master user, with
the password read from the RDS-managed secret at that moment, so it too is always the current one. Locally,
PostgreSQL takes `DB_PASSWORD` (or trusts loopback).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings

# RDS accepts an IAM auth token for 15 minutes after it is signed; a connection it opened stays open after that.
TOKEN_LIFETIME_SECONDS = 900
# A token is reused for this long, then signed afresh: at use it has at least 10 minutes left, even when it was
# signed with task credentials botocore is about to refresh (it does so 10-15 minutes before they expire).
TOKEN_REUSE_SECONDS = 300

# (host, port, user) -> a token valid as that user's password at that endpoint.
Signer = Callable[[str, int, str], str]


class IamTokens:
    """RDS IAM auth tokens per endpoint and user, reused for `reuse_seconds` of their 15-minute life.

    Signing is local (no AWS call), but a pool filling up opens many connections at once: they share a token.
    Thread-safe: the pool opens connections from its own threads.
    """

    def __init__(
        self,
        signer: Signer,
        *,
        reuse_seconds: float = TOKEN_REUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= reuse_seconds < TOKEN_LIFETIME_SECONDS:
            raise ValueError(f"reuse_seconds must be 0 to {TOKEN_LIFETIME_SECONDS - 1} (got {reuse_seconds})")
        self._signer, self._reuse, self._clock = signer, reuse_seconds, clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, int, str], _Token] = {}

    def token(self, host: str, port: int, user: str) -> str:
        key = (host, port, user)
        with self._lock:
            now = self._clock()
            cached = self._tokens.get(key)
            if cached is None or now - cached.signed_at >= self._reuse:
                cached = _Token(self._signer(host, port, user), now)
                self._tokens[key] = cached
            return cached.value


@dataclass(frozen=True)
class _Token:
    value: str
    signed_at: float


def rds_signer(region: str) -> Signer:
    """Signs with the credentials of boto3's default chain (the ECS task role in AWS)."""
    import boto3  # noqa: PLC0415 - only the IAM sign-in needs it

    client = boto3.session.Session().client("rds", region_name=region)

    def sign(host: str, port: int, user: str) -> str:
        return str(client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region))

    return sign


_tokens_by_region: dict[str, IamTokens] = {}
_tokens_lock = threading.Lock()


def iam_token(settings: Settings, host: str) -> str:
    """A token for `settings.db_user` at `host`, from this process's cache for the settings' region."""
    with _tokens_lock:
        tokens = _tokens_by_region.get(settings.aws_region)
        if tokens is None:
            tokens = _tokens_by_region[settings.aws_region] = IamTokens(rds_signer(settings.aws_region))
    return tokens.token(host, settings.db_port, settings.db_user)


def master_login(settings: Settings) -> tuple[str, str]:
    """The master user and its password as they are now, from the RDS-managed secret (`{"username", "password"}`)."""
    from app import aws  # noqa: PLC0415 - boto3 is imported only where AWS is used

    secret = aws.client("secretsmanager", settings).get_secret_value(SecretId=settings.db_migration_master_arn)
    try:
        login = json.loads(secret["SecretString"])
        return str(login["username"]), str(login["password"])
    except (KeyError, TypeError, ValueError):
        # Never echo the secret's text: it holds the password.
        raise ValueError(
            f"{settings.db_migration_master_arn}: not an RDS master user secret (a JSON username and password)"
        ) from None
