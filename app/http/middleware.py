"""Per-request middleware: correlation id, rate limit, media type, CORS, headers, metrics."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request

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


class StaticHeaders:
    """WSGI wrapper adding the security headers to every response (errors included) at list-append cost."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = list(headers.items())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + self.headers, exc_info)

        return self.app(environ, start)


def _preflight(origins: frozenset[str]) -> Response:
    resp = Response(status=204)
    if request.headers.get("Origin") in origins:
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        resp.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def install(app: Flask, settings: Settings, services: Services) -> None:
    app.wsgi_app = StaticHeaders(app.wsgi_app, SECURITY_HEADERS)  # type: ignore[method-assign]
    origins = settings.cors_origin_list
    limiter = services.limiter
    records = RequestRecords(settings.metrics_namespace)

    @app.before_request
    def before() -> Response | None:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per use
        g.start = time.perf_counter()
        headers = req.headers
        cid = pick_correlation_id(headers.get("X-Request-Id"), headers.get("traceparent"))
        correlation_id.set(cid)  # every log line of the request carries it (see observability._add_correlation)
        method = req.method
        if method == "OPTIONS" and headers.get("Access-Control-Request-Method"):
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
        if method in BODY_METHODS and (req.content_length or req.data) and req.mimetype != "application/json":
            raise Problem(
                415,
                "Unsupported media type",
                "'Content-Type' header: must be application/json",
                kind="unsupported-media-type",
            )
        return None

    @app.after_request
    def after(resp: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]
        headers = resp.headers
        headers["X-Request-Id"] = correlation_id.get()
        if resp.status_code == 204:
            # No content, so no content type (RFC 9110 section 8.3); Flask's response class sets a default one.
            headers.pop("Content-Type", None)
        if "Cache-Control" not in headers:
            # Nothing is shareable unless its view says so (product reads do): errors, sessions and orders never
            # land in CloudFront's or a browser's cache.
            headers["Cache-Control"] = "no-store"
        origin = req.headers.get("Origin")
        if origin and origin in origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
            headers.add("Vary", "Origin")
        start = g.get("start")
        path = req.path
        if start is not None and path != contract.HEALTH_LIVE_PATH:
            rule = req.url_rule
            latency_ms = (time.perf_counter() - start) * 1000
            records.write(rule.rule if rule else "unmatched", req.method, resp.status_code, latency_ms, path)
        return resp
