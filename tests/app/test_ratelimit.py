from __future__ import annotations

from typing import Any

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
