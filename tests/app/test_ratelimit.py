"""The per-client rate limit: a Redis token bucket spent through short local leases."""

from __future__ import annotations

import bisect
import multiprocessing
import threading
import time
from typing import Any

import redis

from app.cache import Cache
from app.ratelimit import LEASE_SECONDS, RateLimiter
from app.settings import Settings
from tests.app.conftest import free_port


def test_client_over_the_limit_gets_429_with_retry_after(make_app: Any) -> None:
    client = make_app(rate_limit_per_minute=3).test_client()
    codes = [client.get("/api/config").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    resp = client.get("/api/config")
    assert resp.mimetype == "application/problem+json" and int(resp.headers["Retry-After"]) >= 1


def test_limit_is_per_client_address_behind_trusted_proxies(make_app: Any) -> None:
    client = make_app(rate_limit_per_minute=2, trusted_proxy_hops=1).test_client()

    def get(xff: str) -> int:
        return int(client.get("/api/config", headers={"X-Forwarded-For": xff}).status_code)

    assert [get("10.0.0.1"), get("10.0.0.1"), get("10.0.0.1")] == [200, 200, 429]
    assert get("10.0.0.2") == 200
    # A client cannot dodge the limit by prepending a forged address: only the trusted hop's entry counts.
    assert get("6.6.6.6, 10.0.0.1") == 429


def test_health_checks_are_not_rate_limited(make_app: Any) -> None:
    client = make_app(rate_limit_per_minute=1).test_client()
    assert {client.get("/health/live").status_code for _ in range(5)} == {200}


def test_limiter_fails_open_when_redis_is_unreachable(make_app: Any) -> None:
    client = make_app(rate_limit_per_minute=1, redis_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    codes = {client.get("/api/config").status_code for _ in range(5)}
    assert codes == {200}


def test_limiter_keeps_counting_after_redis_lost_its_scripts(make_app: Any) -> None:
    app = make_app(rate_limit_per_minute=2)
    client = app.test_client()
    assert client.get("/api/config").status_code == 200
    app.extensions["services"].cache.client.script_flush()  # as after a failover to a fresh replica
    assert [client.get("/api/config").status_code for _ in range(2)] == [200, 429]


def _hammer(settings: dict[str, Any], client_id: str, seconds: float, threads: int, ready: Any, out: Any) -> None:
    """One task: its threads admit as fast as they can once every task is ready; sends the admissions' times."""
    limiter = RateLimiter(Cache(Settings(**settings)), settings["rate_limit_per_minute"])
    admitted: list[float] = []
    ready.wait(60)  # every process has imported the app and built its limiter
    stop_at = time.time() + seconds

    def run() -> None:
        while time.time() < stop_at:
            if limiter.check(client_id).allowed:
                admitted.append(time.time())

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(admitted)


def test_tasks_hammering_one_client_never_admit_more_than_the_bucket_allows(make_settings: Any) -> None:
    per_minute, tasks, seconds = 600, 4, 3.0
    settings = make_settings(rate_limit_per_minute=per_minute).model_dump()
    settings = {k: v.get_secret_value() if hasattr(v, "get_secret_value") else v for k, v in settings.items()}
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Barrier(tasks), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(settings, "10.9.9.9", seconds, 4, ready, out)) for _ in range(tasks)]
    for proc in procs:
        proc.start()
    runs = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    stamps = sorted(t for run in runs for t in run)
    rate = per_minute / 60
    # A token bucket admits at most its capacity plus its refill over any window; a leased token is spent at most
    # LEASE_SECONDS after the bucket granted it.
    for window in (0.5, 1.0, 2.0, seconds):
        most = max(bisect.bisect_right(stamps, t + window) - i for i, t in enumerate(stamps))
        assert most <= per_minute + rate * (window + LEASE_SECONDS), (window, most)
    # Under-used by at most the leases left unspent: each task holds at most one lease of at most max_lease.
    max_lease = RateLimiter(Cache(make_settings()), per_minute).max_lease
    assert len(stamps) >= per_minute - tasks * max_lease


def test_a_rarely_seen_client_leases_one_token_and_a_busy_one_leases_batches(make_settings: Any) -> None:
    cache = Cache(make_settings())
    limiter = RateLimiter(cache, 6000)
    calls = 0
    real_call = cache.call

    def counting(fn: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_call(fn)

    cache.call = counting  # type: ignore[method-assign]
    assert limiter.check("10.1.1.1").allowed and calls == 1
    tokens = float(redis.Redis().hget(cache.key("rl", "10.1.1.1"), "t") or 0)
    assert 5998.9 <= tokens < 6000  # one token taken (plus at most a moment's refill)
    calls = 0
    assert all(limiter.check("10.2.2.2").allowed for _ in range(1000))
    # Doubling up to max_lease (100): 1+2+4+...+64 = 127 in 7 leases, then 100 at a time.
    assert calls <= 7 + (1000 - 127) // 100 + 1
    cache.close()


def test_a_client_over_its_bucket_is_refused_even_with_leases_elsewhere(make_app: Any) -> None:
    # Two tasks (two apps) share one client's bucket: together they admit no more than the limit.
    first, second = make_app(rate_limit_per_minute=4).test_client(), make_app(rate_limit_per_minute=4).test_client()
    codes = [c.get("/api/config").status_code for c in (first, second, first, second, first, second)]
    assert codes.count(200) == 4 and codes[-2:] == [429, 429]
