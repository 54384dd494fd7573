"""Per-client rate limit: a token bucket per client address in Redis, spent through short local leases.

The bucket (capacity `per_minute`, refilled at `per_minute` a minute) lives in Redis, shared by every task. A
task does not ask Redis on every request: it takes a lease of tokens from the bucket in one round trip (a Lua
script) and spends them locally. The lease size adapts per client: a client not seen lately leases one token
(so a rarely seen client costs exactly what it spends), and each lease a client uses up before it expires
doubles the next one, up to `max_lease` (one second of the bucket's refill, at most `MAX_LEASE`); a lease that
expires unspent halves it. Every admitted request spends a token the bucket granted, so no more than the bucket
allows is ever admitted across all tasks; the only cost is under-use: tokens leased and not spent before the
lease expires (`LEASE_SECONDS`), at most `max_lease` per task per client at a time.

Fail-open by design: if Redis is slow (bounded by the Redis socket timeout) or down (its breaker is open, so
no time is spent at all), the request is allowed and the event is logged and counted. Losing the limiter
for a while is better than failing every request of the site.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import structlog

from app.cache import REDIS_UNAVAILABLE, Cache
from app.lua import LuaScript

log = structlog.get_logger("app.ratelimit")
FAIL_OPEN: Counter[str] = Counter()
LEASE_SECONDS = 1.0
MAX_LEASE = 1000
# Leases kept per task; beyond it, expired ones are dropped (a client without one simply leases again).
MAX_CLIENTS = 10_000

# ARGV: capacity, tokens wanted. Grants what the bucket has, up to the wanted number; 0 means refused.
_LUA = """
local capacity = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or capacity
local ts = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * capacity / 60000)
local granted = math.min(want, math.floor(tokens))
local retry = 0
if granted >= 1 then
  tokens = tokens - granted
else
  granted = 0
  retry = math.ceil((1 - tokens) * 60000 / capacity / 1000)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 60000)
return {granted, retry}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int
    limit: int


class _Lease:
    __slots__ = ("expires", "size", "tokens")

    def __init__(self, tokens: int, expires: float, size: int) -> None:
        self.tokens, self.expires, self.size = tokens, expires, size


class RateLimiter:
    def __init__(self, cache: Cache, per_minute: int) -> None:
        self._cache = cache
        self.per_minute = per_minute
        self.max_lease = max(1, min(MAX_LEASE, per_minute // 60))
        self._script = LuaScript(_LUA)
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._allowed = Decision(True, 0, per_minute)

    def check(self, client_id: str) -> Decision:
        """Admit one request of `client_id`: from this task's lease, else from a new lease of the bucket."""
        now = time.monotonic()
        with self._lock:
            lease = self._leases.get(client_id)
            if lease is not None and lease.tokens > 0 and lease.expires > now:
                lease.tokens -= 1
                return self._allowed
            size = self._next_size(lease, now)
        key = self._cache.key("rl", client_id)
        try:
            granted, retry = self._cache.call(lambda r: self._script(r, [key], [self.per_minute, size]))
        except REDIS_UNAVAILABLE as exc:
            FAIL_OPEN[type(exc).__name__] += 1
            log.warning("rate_limit_fail_open", reason=type(exc).__name__)
            return self._allowed
        if not granted:
            return Decision(False, int(retry), self.per_minute)
        with self._lock:
            now = time.monotonic()
            held = self._leases.get(client_id)
            if held is not None and held.tokens > 0 and held.expires > now:
                # Another thread renewed meanwhile: pool the tokens rather than drop either batch, under the
                # earlier expiry, so no token is spent later than LEASE_SECONDS after the bucket granted it.
                held.tokens += int(granted) - 1
                held.size = max(held.size, size)
                return self._allowed
            if len(self._leases) >= MAX_CLIENTS:
                self._leases = {c: lease for c, lease in self._leases.items() if lease.expires > now}
            self._leases[client_id] = _Lease(int(granted) - 1, now + LEASE_SECONDS, size)
        return self._allowed

    def _next_size(self, lease: _Lease | None, now: float) -> int:
        if lease is None or now - lease.expires > LEASE_SECONDS:
            return 1  # not seen lately
        if lease.tokens <= 0:
            return min(self.max_lease, lease.size * 2)  # spent before it expired: busy
        return max(1, lease.size // 2)
