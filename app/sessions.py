"""Sessions in Redis: opaque random tokens, 15-minute sliding TTL. Only a hash of the token is stored."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from app import contract
from app.types import EMAIL, Text

if TYPE_CHECKING:
    from app.cache import Cache


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    email: str = Field(pattern=EMAIL, max_length=254)
    name: Text = Field("", max_length=100)


class Sessions:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def _key(self, token: str) -> str:
        return self.cache.key("session", hashlib.sha256(token.encode()).hexdigest())

    def create(self, s: SessionIn) -> tuple[str, dict[str, Any]]:
        token = secrets.token_urlsafe(32)
        user = {"email": s.email, "name": s.name, "created_at": int(time.time())}
        self.cache.call(lambda r: r.set(self._key(token), json.dumps(user), ex=contract.SESSION_TTL_SECONDS))
        return token, user

    def touch(self, token: str) -> dict[str, Any] | None:
        """The session's user, sliding its expiry; None if there is none."""
        raw = self.cache.call(lambda r: r.getex(self._key(token), ex=contract.SESSION_TTL_SECONDS))
        return json.loads(raw) if raw else None

    def end(self, token: str) -> bool:
        return bool(self.cache.call(lambda r: r.delete(self._key(token))))
