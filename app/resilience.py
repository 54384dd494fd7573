"""Circuit breakers whose state is shared by every task through Redis, and bounded retries.

A breaker's state lives in Redis and changes only inside one Lua script, so transitions are atomic across
tasks: the failure rate is counted over a rolling window of one-second buckets; when it crosses the threshold
(after a minimum number of calls) the breaker opens; after the reset timeout exactly one caller across all
tasks wins the half-open probe (a key with a lease, not a lock held during the call: if the prober dies the
lease expires and another task probes); the probe's result closes or re-opens it.

While the breaker is closed, the common case, a task asks Redis only about what can change the state: every
failure is counted there at once, and judged against the window there; successes are counted in process
memory and go to Redis with the task's next failure (so the rate that failure is judged on includes them) or
within `SHARED_VIEW_SECONDS`. A task that saw the breaker closed that recently lets calls through without
asking again, so another task's opening reaches it within that time, and a healthy dependency costs no Redis
round trip per call. Open and half-open breakers are asked about on every call.

If Redis itself is unreachable, the breaker falls back to the same algorithm kept in process memory, so a
Redis outage degrades sharing, never availability. The breaker that guards Redis is process-local by design:
its state cannot live in the thing it protects.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_when_event_set, wait_random_exponential

from app import contract
from app.lua import LuaScript
from app.observability import metric_fields

if TYPE_CHECKING:
    import redis

    from app.settings import Settings

log = structlog.get_logger("app.resilience")
T = TypeVar("T")

MAX_ATTEMPTS = 5
# How long a task trusts that a shared breaker it saw closed is still closed, and keeps successes to itself.
SHARED_VIEW_SECONDS = 0.5
TRANSITIONS: Counter[tuple[str, str]] = Counter()

_LUA = """
local state_key, window_key, probe_key = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local min_calls = tonumber(ARGV[4])
local rate = tonumber(ARGV[5])
local reset = tonumber(ARGV[6])
local lease_ms = tonumber(ARGV[7])
local state = redis.call('HGET', state_key, 'state') or 'closed'
if op == 'allow' then
  if state == 'closed' then return {1, 0, ''} end
  local opened_at = tonumber(redis.call('HGET', state_key, 'opened_at') or '0')
  if state == 'open' and now - opened_at < reset then return {0, 0, ''} end
  if redis.call('SET', probe_key, '1', 'NX', 'PX', lease_ms) then
    if state ~= 'half_open' then
      redis.call('HSET', state_key, 'state', 'half_open')
      return {1, 1, 'half_open'}
    end
    return {1, 1, ''}
  end
  return {0, 0, ''}
end
-- op == 'record'
local success = ARGV[8] == '1'
local probe = ARGV[9] == '1'
if probe then
  redis.call('DEL', probe_key)
  if success then
    redis.call('HSET', state_key, 'state', 'closed')
    redis.call('DEL', window_key)
    return 'closed'
  end
  redis.call('HSET', state_key, 'state', 'open', 'opened_at', tostring(now))
  return 'open'
end
if state ~= 'closed' then return '' end
-- Successes the task counted in memory since it last reported: (second, count) pairs.
for i = 10, #ARGV, 2 do
  redis.call('HINCRBY', window_key, ARGV[i] .. ':t', tonumber(ARGV[i + 1]))
end
local bucket = math.floor(now)
redis.call('HINCRBY', window_key, bucket .. ':t', 1)
if not success then redis.call('HINCRBY', window_key, bucket .. ':f', 1) end
redis.call('EXPIRE', window_key, window * 2)
if success then return '' end
local total, failed = 0, 0
local fields = redis.call('HGETALL', window_key)
for i = 1, #fields, 2 do
  local sec, kind = string.match(fields[i], '(%d+):(%a)')
  sec = tonumber(sec)
  if sec <= now - window then
    redis.call('HDEL', window_key, fields[i])
  elseif kind == 't' then
    total = total + tonumber(fields[i + 1])
  else
    failed = failed + tonumber(fields[i + 1])
  end
end
if total >= min_calls and failed / total >= rate then
  redis.call('HSET', state_key, 'state', 'open', 'opened_at', tostring(now))
  redis.call('DEL', window_key)
  return 'open'
end
return ''
"""
_SCRIPT = LuaScript(_LUA)


class CircuitOpenError(Exception):
    """The dependency's breaker is open: the caller should use its fallback."""

    def __init__(self, name: str) -> None:
        super().__init__(f"circuit '{name}' is open")
        self.name = name


@dataclass
class _LocalState:
    """The same algorithm as the Lua script, in process memory (fallback and Redis's own breaker)."""

    state: str = "closed"
    opened_at: float = 0.0
    probe_until: float = 0.0
    buckets: dict[int, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, now: float, reset: float, lease: float) -> tuple[bool, bool, str]:
        with self.lock:
            if self.state == "closed":
                return True, False, ""
            if self.state == "open" and now - self.opened_at < reset:
                return False, False, ""
            if self.probe_until > now:
                return False, False, ""
            self.probe_until = now + lease
            if self.state != "half_open":
                self.state = "half_open"
                return True, True, "half_open"
            return True, True, ""

    def count_successes(self, pairs: list[Any]) -> None:
        """Successes counted while the shared store answered: (second, count) pairs, flattened."""
        with self.lock:
            if self.state == "closed":
                for second, count in zip(pairs[::2], pairs[1::2], strict=True):
                    self.buckets.setdefault(second, [0, 0])[0] += count

    def record(self, now: float, success: bool, probe: bool, *, window: int, min_calls: int, rate: float) -> str:
        with self.lock:
            if probe:
                self.probe_until = 0.0
                if success:
                    self.state, self.buckets = "closed", {}
                    return "closed"
                self.state, self.opened_at = "open", now
                return "open"
            if self.state != "closed":
                return ""
            sec = int(now)
            bucket = self.buckets.setdefault(sec, [0, 0])
            bucket[0] += 1
            if success:
                return ""
            bucket[1] += 1
            for old in [s for s in self.buckets if s <= now - window]:
                del self.buckets[old]
            total = sum(b[0] for b in self.buckets.values())
            failed = sum(b[1] for b in self.buckets.values())
            if total >= min_calls and failed / total >= rate:
                self.state, self.opened_at, self.buckets = "open", now, {}
                return "open"
            return ""


class CircuitBreaker:
    """A breaker for one dependency; `shared=True` keeps its state in Redis for every task."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        redis_client: Callable[[], redis.Redis | None] | None = None,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.name = name
        self._settings = settings
        self._redis = redis_client
        self._failures = failure_exceptions
        self._local = _LocalState()
        prefix = f"{settings.redis_key_prefix}breaker:{name}"
        self._keys = [f"{prefix}:state", f"{prefix}:window", f"{prefix}:probe"]
        self._lease = max(settings.outbound_timeout * 2, 1.0)
        # The shared view: closed until this monotonic time without asking; successes not yet reported.
        self._closed_until = 0.0
        self._unreported: Counter[int] = Counter()
        self._reported_at = 0.0
        self._view_lock = threading.Lock()
        self._view_generation = 0  # bumped whenever this task changes the shared state

    def _args(self, op: str) -> list[Any]:
        s = self._settings
        return [
            op,
            repr(time.time()),
            s.breaker_window_seconds,
            s.breaker_min_calls,
            s.breaker_failure_rate,
            s.breaker_reset_seconds,
            int(self._lease * 1000),
        ]

    def _shared(self, args: list[Any]) -> Any:
        """Run the script in Redis; None if Redis is unavailable (the caller then uses local state)."""
        client = self._redis() if self._redis else None
        if client is None:
            return None
        try:
            return _SCRIPT(client, self._keys, args)
        except Exception as exc:  # noqa: BLE001 - any store failure means "use local state"
            log.debug("breaker_store_unavailable", breaker=self.name, error=type(exc).__name__)
            return None

    def _transition(self, new_state: str | bytes) -> None:
        if isinstance(new_state, bytes):
            new_state = new_state.decode()
        if new_state:
            TRANSITIONS[(self.name, new_state)] += 1
            # Logged as an embedded-metric-format record too: CloudWatch counts transitions per breaker and state.
            log.warning(
                "circuit_breaker_transition",
                **metric_fields(
                    self._settings.metrics_namespace,
                    {contract.METRIC_BREAKER_TRANSITIONS: 1},
                    {"breaker": self.name, "state": new_state},
                ),
            )

    def _seen_closed(self) -> bool:
        return time.monotonic() < self._closed_until

    def allow(self) -> tuple[bool, bool]:
        if self._redis is not None and self._seen_closed():
            return True, False
        generation = self._view_generation
        result = self._shared(self._args("allow")) if self._redis is not None else None
        if result is None:
            allowed, probe, new_state = self._local.allow(
                time.time(), self._settings.breaker_reset_seconds, self._lease
            )
        else:
            allowed, probe, new_state = bool(result[0]), bool(result[1]), result[2]
            if allowed and not probe:  # the script lets a call through without a probe only when closed
                self._see_closed(generation)
        self._transition(new_state)
        return allowed, probe

    def _see_closed(self, generation: int) -> None:
        """Trust a closed answer for the view's length - unless another thread of this task changed the state
        (opened the breaker) while that answer was on its way, which would otherwise be hidden for the view."""
        with self._view_lock:
            if generation == self._view_generation:
                self._closed_until = time.monotonic() + SHARED_VIEW_SECONDS

    def _forget_view(self) -> None:
        with self._view_lock:
            self._view_generation += 1
            self._closed_until = 0.0

    def _take_unreported(self, success: bool, probe: bool) -> list[Any] | None:
        """The successes to report with this call, or None when this one joins them in memory instead."""
        with self._view_lock:
            now = time.monotonic()
            if success and not probe and self._seen_closed() and now - self._reported_at < SHARED_VIEW_SECONDS:
                self._unreported[int(time.time())] += 1
                return None
            pairs = [x for second_count in sorted(self._unreported.items()) for x in second_count]
            self._unreported.clear()
            self._reported_at = now
            return pairs

    def record(self, success: bool, probe: bool) -> None:
        s = self._settings
        result = None
        if self._redis is not None:
            unreported = self._take_unreported(success, probe)
            if unreported is None:
                return
            result = self._shared([*self._args("record"), "1" if success else "0", "1" if probe else "0", *unreported])
            if result not in (None, b"", ""):
                self._forget_view()  # this call changed the shared state: ask again next time
            elif result is None and unreported:
                self._local.count_successes(unreported)
        if result is None:
            result = self._local.record(
                time.time(),
                success,
                probe,
                window=s.breaker_window_seconds,
                min_calls=s.breaker_min_calls,
                rate=s.breaker_failure_rate,
            )
        self._transition(result)

    @property
    def state(self) -> str:
        if self._redis is not None and self._seen_closed():
            return "closed"
        client = self._redis() if self._redis else None
        if client is not None:
            try:
                value = client.hget(self._keys[0], "state")
                return value.decode() if isinstance(value, bytes) else (value or "closed")
            except Exception as exc:  # noqa: BLE001 - unreadable shared state: report the local view
                log.debug("breaker_state_unavailable", breaker=self.name, error=type(exc).__name__)
        return self._local.state

    def call(self, fn: Callable[[], T]) -> T:
        allowed, probe = self.allow()
        if not allowed:
            raise CircuitOpenError(self.name)
        try:
            result = fn()
        except self._failures:
            self.record(False, probe)
            raise
        except BaseException:
            # Not a dependency failure (e.g. bad input): release a probe lease without judging the dependency.
            if probe:
                self.record(True, probe)
            raise
        self.record(True, probe)
        return result

    @contextmanager
    def guard(self) -> Iterator[None]:
        allowed, probe = self.allow()
        if not allowed:
            raise CircuitOpenError(self.name)
        try:
            yield
        except self._failures:
            self.record(False, probe)
            raise
        self.record(True, probe)


def retrying(
    retry_on: tuple[type[BaseException], ...], attempts: int = MAX_ATTEMPTS, until: threading.Event | None = None
) -> Retrying:
    """For idempotent calls only: exponential backoff with full jitter, at most `attempts` tries; with `until`,
    no new try once that event is set (a process shutting down gives up rather than outlast its drain)."""
    stop = stop_after_attempt(min(attempts, MAX_ATTEMPTS))
    return Retrying(
        stop=stop if until is None else stop | stop_when_event_set(until),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception(lambda e: isinstance(e, retry_on) and not isinstance(e, CircuitOpenError)),
        reraise=True,
    )
