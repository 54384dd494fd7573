from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest

from app import contract
from app.problems import KINDS, Problem
from tests.app.conftest import ADMIN, free_port
from tests.app.gunicorn_support import served

KIND_BY_STATUS = {414: "uri-too-long", 431: "header-fields-too-large"}


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


@pytest.mark.parametrize("body", [[], "x", 3, None, True])
def test_json_that_is_not_an_object_is_422(client: Any, body: Any) -> None:
    # `null` included: it is well-formed JSON, so not the 400 a malformed body gets.
    resp = client.post("/api/user/sessions", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 422 and resp.json["detail"] == "'body': must be a JSON object"


@pytest.mark.parametrize("body", ['{"email": NaN}', '{"value": Infinity}', b'{"email": "\xff"}'])
def test_what_json_does_not_allow_is_a_malformed_body(client: Any, body: str | bytes) -> None:
    resp = client.post("/api/user/sessions", data=body, content_type="application/json")
    assert resp.status_code == 400 and resp.json["type"] == "/problems/malformed-json"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32-le"])
def test_a_json_body_is_read_in_any_encoding_json_itself_reads(client: Any, encoding: str) -> None:
    # The body is decoded as `json.loads` decodes bytes: by its leading bytes, BOM included.
    body = json.dumps({"email": "a@example.com"}).encode(encoding)
    resp = client.post("/api/user/sessions", data=body, content_type="application/json")
    assert resp.status_code == 201 and resp.json["token"], resp.get_data(as_text=True)


def _problem(resp: Any, status: int, kind: str, instance: str) -> dict[str, Any]:
    assert resp.status_code == status and resp.mimetype == "application/problem+json", resp.get_data(as_text=True)
    body: dict[str, Any] = resp.json
    assert body["type"] == f"/problems/{kind}" and body["status"] == status
    assert body["instance"] == instance and body["title"]
    return body


def test_every_error_is_a_problem_with_a_type_of_the_apis_own_and_its_instance(make_app: Any, add_product: Any) -> None:
    client = make_app().test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    _problem(client.get("/nope"), 404, "not-found", "/nope")
    _problem(client.delete("/api/products"), 405, "method-not-allowed", "/api/products")
    big = "x" * (contract.MAX_REQUEST_BYTES + 1)
    _problem(
        client.post("/api/user/sessions", data=big, content_type="application/json"),
        413,
        "body-too-large",
        "/api/user/sessions",
    )
    _problem(
        client.post("/api/user/sessions", data="a=b", content_type="text/plain"),
        415,
        "unsupported-media-type",
        "/api/user/sessions",
    )
    _problem(
        client.post("/api/user/sessions", data="{", content_type="application/json"),
        400,
        "malformed-json",
        "/api/user/sessions",
    )
    _problem(client.post("/api/user/sessions", json={"email": "x"}), 422, "validation", "/api/user/sessions")
    _problem(client.get("/api/products?page=0"), 400, "validation", "/api/products")
    _problem(client.get("/api/user/me"), 401, "unauthorized", "/api/user/me")
    _problem(
        client.delete("/api/admin/products/1", headers={"Authorization": "Bearer nope"}),
        403,
        "forbidden",
        "/api/admin/products/1",
    )
    _problem(
        client.get("/api/checkout/orders/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12),
        404,
        "not-found",
        "/api/checkout/orders/00000000-0000-0000-0000-000000000000",
    )
    _problem(client.post("/api/checkout/orders", json={}), 400, "idempotency-key", "/api/checkout/orders")
    order = {"email": "a@example.com", "items": [{"product_id": add_product(stock=1), "quantity": 2}]}
    rejected = client.post("/api/checkout/orders", json=order, headers={"Idempotency-Key": uuid.uuid4().hex})
    _problem(rejected, 422, "invalid-order", "/api/checkout/orders")
    taken = {"sku": "DUP-" + uuid.uuid4().hex[:8], "name": "n", "price_cents": 1}
    assert client.post("/api/admin/products", json=taken, headers=admin).status_code == 201
    _problem(client.post("/api/admin/products", json=taken, headers=admin), 409, "conflict", "/api/admin/products")
    limited = make_app(rate_limit_per_minute=1).test_client()
    limited.get("/api/config")
    _problem(limited.get("/api/config"), 429, "rate-limited", "/api/config")
    down = make_app(db_port=free_port(), outbound_timeout=1.0).test_client()
    _problem(down.get("/api/config"), 503, "unavailable", "/api/config")


def test_each_problem_type_dereferences_to_its_description(client: Any) -> None:
    for kind, description in KINDS.items():
        resp = client.get(f"/problems/{kind}")
        assert resp.status_code == 200 and resp.json == {"type": f"/problems/{kind}", "description": description}
    _problem(client.get("/problems/nope"), 404, "not-found", "/problems/nope")


def test_a_problem_of_no_known_kind_cannot_be_raised() -> None:
    with pytest.raises(ValueError, match="unknown problem kind 'made-up'"):
        Problem(400, "Bad", kind="made-up")


def test_no_content_answers_have_no_content_type(client: Any) -> None:
    token = client.post("/api/user/sessions", json={"email": "a@example.com"}).json["token"]
    ended = client.delete("/api/user/sessions/current", headers={"Authorization": f"Bearer {token}"})
    preflight = client.options(
        "/api/admin/products/1", headers={"Origin": "https://x.test", "Access-Control-Request-Method": "PATCH"}
    )
    for resp in (ended, preflight):
        assert resp.status_code == 204 and "Content-Type" not in resp.headers and resp.data == b""


def test_gunicorns_own_refusals_are_problems_too(database: str, prefix: str) -> None:
    with served(database, prefix) as base:
        host, port = base.removeprefix("http://").split(":")
        answers = {
            414: f"GET /api/products?q={'x' * 9000} HTTP/1.1\r\nHost: a\r\n\r\n",
            431: f"GET /api/config HTTP/1.1\r\nHost: a\r\nX-Big: {'y' * 9000}\r\n\r\n",
        }
        for status, raw in answers.items():
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(raw.encode())
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
            assert headers["Content-Type"] == "application/problem+json"
            assert headers["X-Content-Type-Options"] == "nosniff" and int(headers["Content-Length"]) == len(body)
            problem = json.loads(body)
            assert problem["status"] == status and problem["type"] == f"/problems/{KIND_BY_STATUS[status]}"
            assert problem["type"].removeprefix("/problems/") in KINDS and problem["detail"]


def _exchange(sock: socket.socket, raw: bytes) -> tuple[int, bytes]:
    """Send `raw`, read one response (Content-Length framed); its status and body."""
    sock.sendall(raw)
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(65536)
    head, _, body = reply.partition(b"\r\n\r\n")
    length = int(
        next(v for k, _, v in (h.partition(": ") for h in head.decode().split("\r\n")) if k.lower() == "content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), body


def test_request_bodies_under_gunicorn_are_read_whole_however_framed(database: str, prefix: str) -> None:
    # A body with a length within the limit is read straight from gunicorn's stream: exactly that many bytes, so
    # the next request on the connection parses; chunked and over-limit bodies go through werkzeug (413).
    sessions = "POST /api/user/sessions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    body = json.dumps({"email": "a@example.com"}).encode()
    with served(database, prefix) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sized = f"{sessions}Content-Length: {len(body)}\r\n\r\n".encode() + body
            first, second = _exchange(sock, sized), _exchange(sock, sized)
            assert first[0] == second[0] == 201 and json.loads(first[1])["token"] != json.loads(second[1])["token"]
            chunked = (
                f"{sessions}Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            )
            assert _exchange(sock, chunked)[0] == 201
            big = json.dumps({"email": "a@example.com", "pad": "x" * contract.MAX_REQUEST_BYTES}).encode()
            status, problem = _exchange(sock, f"{sessions}Content-Length: {len(big)}\r\n\r\n".encode() + big)
            assert status == 413 and json.loads(problem)["status"] == 413


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


def test_every_response_carries_the_envelope_and_every_request_is_recorded_under_its_route(
    make_app: Any, capsys: Any
) -> None:
    # Errors too: the headers and the record are added around the app (a 404 has no route, a 429 its own).
    client = make_app(log_level="INFO", rate_limit_per_minute=2).test_client()
    capsys.readouterr()
    answers = [
        (client.get("/api/config", headers={"X-Request-Id": "env-1"}), "/api/config"),
        (client.get("/nowhere/caf\u00e9", headers={"X-Request-Id": "env-2"}), "unmatched"),
        (client.get("/api/config", headers={"X-Request-Id": "env-3"}), "/api/config"),
    ]
    paths = ["/api/config", "/nowhere/caf\u00e9", "/api/config"]
    assert [resp.status_code for resp, _ in answers] == [200, 404, 429]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    records = {line["correlation_id"]: line for line in lines if line.get("event") == "request"}
    for n, (resp, route) in enumerate(answers, start=1):
        headers = resp.headers
        assert headers["X-Request-Id"] == f"env-{n}" and headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store" and headers.getlist("Cache-Control") == ["no-store"]
        record = records[f"env-{n}"]
        assert record["Route"] == route and record["StatusCode"] == resp.status_code and record["Latency"] >= 0
        assert record["path"] == paths[n - 1]


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
