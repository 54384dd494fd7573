from __future__ import annotations

import json
from typing import Any

import pytest

from app import contract
from tests.app.conftest import free_port


def test_unknown_path_is_a_404_problem(client: Any) -> None:
    resp = client.get("/nope")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert resp.json["status"] == 404 and "Traceback" not in resp.get_data(as_text=True)


def test_wrong_method_is_a_405_problem_with_allow(client: Any) -> None:
    resp = client.delete("/api/products")
    assert resp.status_code == 405 and resp.mimetype == "application/problem+json"
    assert "GET" in resp.headers["Allow"]


def test_oversized_body_is_413(client: Any) -> None:
    resp = client.post(
        "/api/user/sessions", data="x" * (contract.MAX_REQUEST_BYTES + 1), content_type="application/json"
    )
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/config", "/api/user/me", "/health/ready"])
def test_answers_other_than_product_reads_are_never_stored(client: Any, path: str) -> None:
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_non_json_body_is_415(client: Any) -> None:
    resp = client.post("/api/user/sessions", data="email=a", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415 and "Content-Type" in resp.json["detail"]


def test_malformed_json_is_400(client: Any) -> None:
    resp = client.post("/api/user/sessions", data="{", content_type="application/json")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("body", [[], "x", 3, None])
def test_json_that_is_not_an_object_is_422(client: Any, body: Any) -> None:
    resp = client.post("/api/user/sessions", data=json.dumps(body), content_type="application/json")
    assert resp.status_code in (400, 422) and resp.json["detail"].startswith("'body'")


def test_correlation_id_is_taken_from_x_request_id_and_returned(client: Any) -> None:
    assert client.get("/api/config", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"


def test_correlation_id_falls_back_to_the_trace_context(client: Any) -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert client.get("/api/config", headers={"traceparent": tp}).headers["X-Request-Id"] == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    generated = client.get("/api/config", headers={"X-Request-Id": "bad id <script>"}).headers["X-Request-Id"]
    assert len(generated) == 32 and "<" not in generated


def test_security_headers_are_set(client: Any) -> None:
    h = client.get("/api/config").headers
    assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in h["Content-Security-Policy"]


def test_cors_allows_only_configured_origins(make_app: Any) -> None:
    client = make_app(cors_origins="https://shop.example.com").test_client()
    ok = client.get("/api/config", headers={"Origin": "https://shop.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert (
        "Access-Control-Allow-Origin" not in client.get("/api/config", headers={"Origin": "https://evil.test"}).headers
    )
    pre = client.options(
        "/api/checkout/orders",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204 and "Idempotency-Key" in pre.headers["Access-Control-Allow-Headers"]


def test_request_log_is_an_emf_record_without_secrets(make_app: Any, capsys: Any) -> None:
    client = make_app(log_level="INFO").test_client()
    client.get("/api/user/me", headers={"Authorization": "Bearer super-secret-token", "X-Request-Id": "emf-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    record = next(line for line in lines if line.get("event") == "request" and line.get("correlation_id") == "emf-1")
    assert record["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "Latency"
    assert record["Route"] == "/api/user/me" and record["StatusCode"] == 401
    assert "super-secret-token" not in capsys.readouterr().out


def test_liveness_and_readiness_report_dependencies(client: Any) -> None:
    assert client.get("/health/live").json == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json["checks"]["database"]["ok"] and ready.json["checks"]["redis"]["ok"]
    assert "latency_ms" in ready.json["checks"]["redis"]


def test_readiness_fails_but_liveness_holds_when_redis_is_down(make_app: Any) -> None:
    client = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json["checks"]["redis"]["ok"] is False
