"""Per-client rate limit: a token bucket per client address in Redis, one round trip (a Lua script).

Fail-open by design: if Redis is slow (bounded by the Redis socket timeout) or down (its breaker is open, so
no time is spent at all), the request is allowed and the event is logged and counted. Losing the limiter
for a while is better than failing every request of the site.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import structlog

from app.cache import REDIS_UNAVAILABLE, Cache
from app.lua import LuaScript

log = structlog.get_logger("app.ratelimit")
FAIL_OPEN: Counter[str] = Counter()

_LUA = """
local capacity = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or capacity
local ts = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * capacity / 60000)
local allowed, retry = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 60000 / capacity / 1000)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 60000)
local cached = false
if allowed == 1 and KEYS[2] then cached = redis.call('GET', KEYS[2]) end
return {allowed, retry, math.floor(tokens), cached}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int
    remaining: int
    limit: int
    prefetched: bytes | None = None
    prefetch_done: bool = False


class RateLimiter:
    def __init__(self, cache: Cache, per_minute: int) -> None:
        self._cache = cache
        self.per_minute = per_minute
        self._script = LuaScript(_LUA)

    def check(self, client_id: str, prefetch_key: str | None = None) -> Decision:
        """Take a token for `client_id`. `prefetch_key`: a cache entry the request is about to read, fetched
        in the same round trip (cluster mode is disabled on the cache, so the two keys may live anywhere)."""
        keys = [self._cache.key("rl", client_id)]
        if prefetch_key:
            keys.append(prefetch_key)
        try:
            allowed, retry, remaining, cached = self._cache.call(lambda r: self._script(r, keys, [self.per_minute]))
        except REDIS_UNAVAILABLE as exc:
            FAIL_OPEN[type(exc).__name__] += 1
            log.warning("rate_limit_fail_open", reason=type(exc).__name__)
            return Decision(True, 0, self.per_minute, self.per_minute)
        return Decision(
            bool(allowed), int(retry), int(remaining), self.per_minute, cached or None, prefetch_key is not None
        )
