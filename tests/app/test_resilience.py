from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest
import redis

from app.lua import LuaScript
from app.resilience import SHARED_VIEW_SECONDS, TRANSITIONS, CircuitBreaker, CircuitOpenError, retrying


class Boom(Exception):
    pass


def _breakers(settings: Any, n: int) -> list[CircuitBreaker]:
    client = redis.Redis()
    return [CircuitBreaker("dep", settings, lambda: client, (Boom,)) for _ in range(n)]


def _fail(b: CircuitBreaker) -> None:
    with pytest.raises(Boom):
        b.call(lambda: (_ for _ in ()).throw(Boom()))


def test_breaker_state_is_shared_across_tasks_through_redis(make_settings: Any) -> None:
    task_a, task_b = _breakers(make_settings(breaker_min_calls=3, breaker_reset_seconds=60), 2)
    _fail(task_a)
    _fail(task_a)
    assert task_b.state == "closed"  # fewer calls than the minimum
    _fail(task_a)
    assert task_a.state == task_b.state == "open"
    with pytest.raises(CircuitOpenError):
        task_b.call(lambda: "never runs")


def test_exactly_one_half_open_probe_runs_across_all_tasks(make_settings: Any) -> None:
    tasks = _breakers(make_settings(breaker_min_calls=2, breaker_reset_seconds=0.2), 8)
    _fail(tasks[0])
    _fail(tasks[0])
    time.sleep(0.3)
    probes: list[int] = []
    release = threading.Event()

    def attempt(i: int) -> None:
        def probe() -> str:
            probes.append(i)
            release.wait(5)  # no lock is held while the call runs; the others are refused meanwhile
            return "ok"

        with contextlib.suppress(CircuitOpenError):
            tasks[i].call(probe)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    release.set()
    for t in threads:
        t.join()
    assert len(probes) == 1
    assert tasks[3].state == "closed"


class CountingRedis(redis.Redis):
    """A client that counts the commands it sends (a breaker's script calls among them)."""

    sent = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        CountingRedis.sent += 1
        return super().execute_command(*args, **options)


def test_a_healthy_dependency_costs_no_redis_round_trip_per_call_and_every_call_is_counted(
    make_settings: Any,
) -> None:
    settings = make_settings(breaker_min_calls=5, breaker_failure_rate=0.5, breaker_reset_seconds=60)
    client = CountingRedis()
    breaker = CircuitBreaker("dep", settings, lambda: client, (Boom,))
    CountingRedis.sent = 0
    for _ in range(200):
        breaker.call(lambda: None)
    assert CountingRedis.sent <= 4  # one look at the state, one report of the first success, and refreshes
    _fail(breaker)  # the failure goes to Redis at once, with the successes counted since the last report
    window = client.hgetall(f"{settings.redis_key_prefix}breaker:dep:window")
    assert sum(int(v) for k, v in window.items() if k.endswith(b":t")) == 201
    assert sum(int(v) for k, v in window.items() if k.endswith(b":f")) == 1
    assert breaker.state == "closed"


def test_another_tasks_opening_reaches_a_task_within_its_shared_view(make_settings: Any) -> None:
    task_a, task_b = _breakers(make_settings(breaker_min_calls=2, breaker_reset_seconds=60), 2)
    task_b.call(lambda: None)  # task B has just seen the breaker closed (and reported its success)
    _fail(task_a)  # 1 failure in 2 calls: open
    assert task_a.state == "open"
    time.sleep(SHARED_VIEW_SECONDS)
    with pytest.raises(CircuitOpenError):
        task_b.call(lambda: "never runs")
    assert task_b.state == "open"


def test_an_opening_by_another_thread_is_not_hidden_by_a_closed_answer_still_on_its_way(make_settings: Any) -> None:
    (breaker,) = _breakers(make_settings(breaker_min_calls=2, breaker_reset_seconds=60), 1)
    breaker.call(lambda: None)
    time.sleep(SHARED_VIEW_SECONDS)  # the view has lapsed: the next call asks Redis
    real_shared = breaker._shared

    def answer_then_open(args: list[Any]) -> Any:
        answer = real_shared(args)  # closed: the call may go ahead ...
        if args[0] == "allow":
            breaker._shared = real_shared  # type: ignore[method-assign]
            _fail(breaker)  # ... but meanwhile another thread's failure opens the breaker
        return answer

    breaker._shared = answer_then_open  # type: ignore[method-assign]
    breaker.call(lambda: None)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "never runs")


def test_successes_counted_while_redis_is_away_join_the_local_window(make_settings: Any) -> None:
    settings = make_settings(breaker_min_calls=2, breaker_failure_rate=0.6, breaker_reset_seconds=60)
    client: list[redis.Redis | None] = [redis.Redis()]
    breaker = CircuitBreaker("dep", settings, lambda: client[0], (Boom,))
    for _ in range(3):
        breaker.call(lambda: None)  # the first is reported to Redis, the next two kept in memory
    client[0] = None  # Redis's own breaker opened: the local window decides
    for _ in range(2):
        _fail(breaker)
    # 2 failures in 4 local calls stays under 60 %; without the two successes it would be 2 in 2.
    assert breaker._local.state == "closed"


def test_a_script_runs_by_its_digest_and_is_sent_again_where_the_server_lost_it() -> None:
    r = redis.Redis()
    script = LuaScript("return {KEYS[1], ARGV[1]}")
    try:
        r.script_flush()  # as after a restart or a failover to a fresh replica
        assert script(r, ["k"], ["v"]) == [b"k", b"v"]  # NOSCRIPT, then EVAL
        assert r.script_exists(script.sha) == [True]  # cached there by the EVAL
        assert script(r, ["k2"], ["v2"]) == [b"k2", b"v2"]
    finally:
        r.close()


def test_failed_probe_reopens_the_breaker(make_settings: Any) -> None:
    (b,) = _breakers(make_settings(breaker_min_calls=1, breaker_reset_seconds=0.1), 1)
    _fail(b)
    time.sleep(0.15)
    _fail(b)
    assert b.state == "open"


def test_failure_rate_is_over_a_rolling_window(make_settings: Any) -> None:
    (b,) = _breakers(make_settings(breaker_min_calls=4, breaker_failure_rate=0.5, breaker_window_seconds=1), 1)
    _fail(b)
    _fail(b)
    time.sleep(1.1)  # those two failures leave the window
    for _ in range(6):
        b.call(lambda: None)
    _fail(b)
    assert b.state == "closed"  # 1 failure in 7 calls
    for _ in range(4):
        _fail(b)
    assert b.state == "closed"  # 5 of 11
    _fail(b)
    assert b.state == "open"  # 6 of 12 reaches the 50 % threshold


def test_redis_outage_serves_reads_from_the_database_and_the_breaker_recovers(
    make_app: Any, own_redis: Any, add_product: Any
) -> None:
    app = make_app(redis_url=own_redis.url, breaker_min_calls=3, breaker_reset_seconds=0.5)
    client, cache = app.test_client(), app.extensions["services"].cache
    pid = add_product(price=99)
    assert client.get(f"/api/products/{pid}").headers["X-Cache"] == "miss"
    assert client.get(f"/api/products/{pid}").headers["X-Cache"] == "hit"
    opened = TRANSITIONS[("redis", "open")]
    own_redis.stop()
    for _ in range(5):
        resp = client.get(f"/api/products/{pid}")
        assert resp.status_code == 200 and resp.json["price_cents"] == 99 and resp.headers["X-Cache"] == "miss"
    assert cache.breaker.state == "open" and TRANSITIONS[("redis", "open")] == opened + 1
    assert client.get("/api/config").status_code == 200  # the limiter fails open, config from the database
    own_redis.start()
    time.sleep(0.6)
    assert client.get(f"/api/products/{pid}").status_code == 200  # the probe succeeds
    assert cache.breaker.state == "closed"
    client.get(f"/api/products/{pid}")
    assert client.get(f"/api/products/{pid}").headers["X-Cache"] == "hit"


def test_reads_fall_back_to_the_writer_when_the_reader_is_unreachable(make_app: Any, add_product: Any) -> None:
    # 127.0.0.2 is loopback with nothing listening on the PostgreSQL port.
    app = make_app(db_reader_host="127.0.0.2", outbound_timeout=0.3, breaker_min_calls=2, breaker_reset_seconds=60)
    client, db = app.test_client(), app.extensions["services"].db
    pid = add_product(price=7)
    for _ in range(4):
        resp = client.get(f"/api/products?per_page=1&page=1&min_price={_}")
        assert resp.status_code == 200
    assert db.reader_breaker.state == "open"
    start = time.monotonic()
    assert client.get(f"/api/products/{pid}").json["price_cents"] == 7
    assert time.monotonic() - start < 0.3  # the open breaker sends reads straight to the writer


def test_reads_use_the_reader_when_it_is_up(make_app: Any, add_product: Any) -> None:
    app = make_app(db_reader_host="127.0.0.1")
    client, db = app.test_client(), app.extensions["services"].db
    pid = add_product()
    before = db.reader.get_stats().get("requests_num", 0)
    assert client.get(f"/api/products/{pid}").status_code == 200
    assert db.reader.get_stats().get("requests_num", 0) == before + 1


def _attempts(until: threading.Event | None, set_during_first: bool) -> int:
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        if set_during_first and until is not None:
            until.set()
        raise Boom()

    with pytest.raises(Boom):
        for attempt in retrying((Boom,), attempts=3, until=until):
            with attempt:
                call()
    return calls


def test_retries_stop_once_the_process_is_shutting_down() -> None:
    # The failure is still raised, after the one try: the caller settles the work as failed rather than retry on.
    assert _attempts(threading.Event(), set_during_first=True) == 1
    assert _attempts(threading.Event(), set_during_first=False) == 3
    assert _attempts(None, set_during_first=False) == 3
