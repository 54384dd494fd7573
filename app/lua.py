"""Lua scripts run in Redis by their digest (the rate limiter's token bucket, the shared circuit breakers)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    import redis


class LuaScript:
    """A plain EVALSHA per call, rather than redis-py's `Script` object, whose per-call wrapping (argument
    copies, a pipeline check, an import) costs about as much again as the round trip on loopback. Where the
    server does not know the script (first use, restart, failover, SCRIPT FLUSH) it is sent once with EVAL,
    which also caches it there."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, client: redis.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.execute_command("EVAL", self.source, len(keys), *keys, *args)
