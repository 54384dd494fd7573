"""Error handlers: every error is an RFC 9457 problem document; never a traceback."""

from __future__ import annotations

import psycopg
import structlog
from flask import Flask, Response, jsonify, request
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import HTTPException

from app import contract
from app.bulkhead import CompartmentFull
from app.cache import REDIS_ERRORS
from app.problems import KINDS, TYPE_PREFIX, Problem, kind_for_status, type_uri
from app.resilience import CircuitOpenError

log = structlog.get_logger("app.http")


def _unavailable(detail: str) -> Response:
    return Problem(503, "Dependency unavailable", detail, headers={"Retry-After": "5"}, kind="unavailable").response(
        request.path
    )


def describe(kind: str) -> Response:
    """What a problem `type` means: its URI dereferences here."""
    if kind not in KINDS:
        raise Problem(404, "Not found", f"'kind' in path: no problem type '{kind}'", kind="not-found")
    return jsonify({"type": type_uri(kind), "description": KINDS[kind]})


def install(app: Flask) -> None:
    app.add_url_rule(TYPE_PREFIX + "<kind>", "problems.describe", describe, methods=["GET"])

    @app.errorhandler(Problem)
    def on_problem(problem: Problem) -> Response:
        return problem.response(request.path)

    @app.errorhandler(HTTPException)
    def on_http(exc: HTTPException) -> Response:
        code = exc.code or 500
        detail = {
            404: f"no resource at '{request.path}'",
            405: f"method {request.method} is not allowed on '{request.path}'",
            413: f"'body': larger than {contract.MAX_REQUEST_BYTES} bytes",
        }.get(code, exc.description)
        resp = Problem(code, exc.name, detail, kind=kind_for_status(code)).response(request.path)
        valid = getattr(exc, "valid_methods", None)
        if code == 405 and valid:
            resp.headers["Allow"] = ", ".join(valid)
        return resp

    @app.errorhandler(CircuitOpenError)
    def on_open(exc: CircuitOpenError) -> Response:
        return _unavailable(f"{exc.name} is unavailable")

    @app.errorhandler(CompartmentFull)
    def on_saturated(exc: CompartmentFull) -> Response:
        # Shed, not broken: a slot frees within a call's time, so the client may come back sooner than for an
        # outage.
        return Problem(
            503,
            "Dependency saturated",
            f"{exc.dependency} is saturated",
            headers={"Retry-After": "1"},
            kind="dependency-saturated",
        ).response(request.path)

    @app.errorhandler(Exception)
    def on_error(exc: Exception) -> Response:
        if isinstance(exc, psycopg.DataError):
            # Safety net: input the validators let through but PostgreSQL refuses is still the client's error.
            log.warning("data_error", error=type(exc).__name__)
            return Problem(422, "Invalid value", "a value in the request cannot be stored", kind="validation").response(
                request.path
            )
        if isinstance(exc, (*REDIS_ERRORS, psycopg.OperationalError, PoolTimeout)):
            log.warning("dependency_error", error=type(exc).__name__)
            return _unavailable("a backing service is unavailable")
        log.exception("unhandled_error")
        return Problem(
            500, "Internal error", "an unexpected error occurred; see logs by X-Request-Id", kind="internal-error"
        ).response(request.path)
