"""Per-request middleware: correlation id, rate limit, media type, CORS, headers, metrics."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, request

from app import contract
from app.observability import RequestRecords, correlation_id, pick_correlation_id
from app.problems import Problem
from app.services import Services
from app.settings import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Resource-Policy": "same-site",
}
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
CORS_EXPOSE_HEADERS = "X-Request-Id, Retry-After, Idempotent-Replayed, Location"
EXEMPT = (contract.HEALTH_LIVE_PATH, contract.HEALTH_READY_PATH)
BODY_METHODS = ("POST", "PUT", "PATCH")
ROUTE_KEY = "app.url_rule"
JSON = "application/json"


class ResponseEnvelope:
    """WSGI wrapper for what every response carries and every request records, error responses included: the
    security headers, `X-Request-Id`, `Cache-Control: no-store` unless the view chose otherwise, CORS for allowed
    origins, and the request's access-log/EMF line.

    Done here on the plain header list rather than in an `after_request` hook on werkzeug's `Headers` (each set
    there validates and searches the whole list): the hot path's per-request overhead (`bench/api.py`; callgrind
    counts the instructions per order, see "Benchmarks" in app/README.md).
    """

    def __init__(self, app: Any, records: RequestRecords, origins: frozenset[str]) -> None:
        self.app = app
        self.static = list(SECURITY_HEADERS.items())
        self.records = records
        self.origins = origins

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        status_code = 0

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status_code
            status_code = int(status[:3])
            if status_code == 204:
                # No content, so no content type (RFC 9110 section 8.3); Flask's response class sets a default one.
                headers = [(name, value) for name, value in headers if name.lower() != "content-type"]
            if not any(name.lower() == "cache-control" for name, _ in headers):
                # Nothing is shareable unless its view says so (product reads do): errors, sessions and orders
                # never land in CloudFront's or a browser's cache.
                headers.append(("Cache-Control", "no-store"))
            headers.append(("X-Request-Id", correlation_id.get()))
            origin = environ.get("HTTP_ORIGIN")
            if origin and origin in self.origins:
                headers += [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS),
                    ("Vary", "Origin"),
                ]
            return start_response(status, headers + self.static, exc_info)

        body = self.app(environ, start)
        path = environ.get("PATH_INFO", "")
        if not path.isascii():
            path = path.encode("latin-1").decode("utf-8", "replace")  # WSGI's latin-1 string, read as the URL's UTF-8
        if path != contract.HEALTH_LIVE_PATH:
            rule = environ.get(ROUTE_KEY)
            latency_ms = (time.perf_counter() - started) * 1000
            self.records.write(
                rule.rule if rule else "unmatched", environ["REQUEST_METHOD"], status_code, latency_ms, path
            )
        return body


def _preflight(origins: frozenset[str]) -> Response:
    resp = Response(status=204)
    if request.headers.get("Origin") in origins:
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        resp.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def install(app: Flask, settings: Settings, services: Services) -> None:
    origins = settings.cors_origin_list
    limiter = services.limiter
    app.wsgi_app = ResponseEnvelope(app.wsgi_app, RequestRecords(settings.metrics_namespace), origins)  # type: ignore[method-assign]

    @app.before_request
    def before() -> Response | None:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per use
        environ = req.environ  # headers read from the environ: werkzeug's EnvironHeaders rebuilds the key per get
        environ[ROUTE_KEY] = req.url_rule  # for the request's record (Flask clears the request from the environ)
        cid = pick_correlation_id(environ.get("HTTP_X_REQUEST_ID"), environ.get("HTTP_TRACEPARENT"))
        correlation_id.set(cid)  # every log line of the request carries it (see observability._add_correlation)
        method = req.method
        if method == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return _preflight(origins)
        if req.path in EXEMPT:
            return None
        # Mostly from this task's lease of the client's bucket: no Redis round trip (app.ratelimit).
        decision = limiter.check(req.remote_addr or "unknown")
        if not decision.allowed:
            raise Problem(
                429,
                "Too many requests",
                f"the limit is {decision.limit} requests per minute per client",
                headers={"Retry-After": str(max(1, decision.retry_after))},
                kind="rate-limited",
            )
        if (
            method in BODY_METHODS
            # The usual JSON request is told at a glance; werkzeug's parsed mimetype and length decide the rest.
            and environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != JSON
            and req.mimetype != JSON
            and (req.content_length or req.data)
        ):
            raise Problem(
                415,
                "Unsupported media type",
                "'Content-Type' header: must be application/json",
                kind="unsupported-media-type",
            )
        return None
