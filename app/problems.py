"""RFC 9457 problem details: every error the API returns, naming the field at fault.

Each problem kind has a `type` of this API's own, `/problems/<kind>`: a URI reference resolved against the
API's base (RFC 9457 section 3.1.1), so one identifier holds on every stack's domain, and the API serves its
description there (`GET /problems/<kind>`). `instance` is the path the request asked for.
"""

from __future__ import annotations

from typing import Any

from flask import Response, json
from pydantic import ValidationError

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "/problems/"

# Every kind the API (and gunicorn in front of it) answers with, and what it means.
KINDS: dict[str, str] = {
    "validation": "A parameter or a field of the body breaks its schema; `errors` names each one.",
    "malformed-json": "The body is not a JSON document.",
    "invalid-order": "The order names a product that does not exist, wants more than is in stock (lines of one "
    "product counted together) or mixes currencies; `errors` names the item.",
    "idempotency-key": "The `Idempotency-Key` header is missing or not 1-255 visible ASCII characters.",
    "idempotency-key-reused": "The `Idempotency-Key` was already used with another request body.",
    "idempotency-in-flight": "A request with this `Idempotency-Key` is still being processed; retry after "
    "`Retry-After` seconds.",
    "unauthorized": "A valid Bearer token is required.",
    "forbidden": "The token may not do this.",
    "not-found": "No such resource.",
    "method-not-allowed": "The resource does not answer this method; `Allow` lists those it does.",
    "conflict": "The write conflicts with the current state (a unique field already taken).",
    "body-too-large": "The body is larger than the API accepts.",
    "uri-too-long": "The request line is longer than the API accepts.",
    "header-fields-too-large": "A header field, or the header section, is larger than the API accepts.",
    "unsupported-media-type": "The body must be `application/json`.",
    "bad-request": "The request is not well-formed HTTP the API can read.",
    "rate-limited": "Too many requests from this client; retry after `Retry-After` seconds.",
    "unavailable": "A backing service is unavailable; retry after `Retry-After` seconds.",
    "dependency-saturated": "A backing service is saturated: every call this process allows it at once is in "
    "progress, so the request was refused at once rather than queued; retry after `Retry-After` seconds.",
    "internal-error": "An unexpected error; the `X-Request-Id` header finds it in the logs.",
}


# The kinds of the errors the HTTP layer (werkzeug, gunicorn) answers by status alone.
HTTP_KINDS = {
    400: "bad-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    431: "header-fields-too-large",
}


def kind_for_status(status: int) -> str:
    return HTTP_KINDS.get(status, "internal-error" if status >= 500 else "bad-request")


def type_uri(kind: str) -> str:
    return TYPE_PREFIX + kind


def _known(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown problem kind {kind!r}: add it to app.problems.KINDS")
    return kind


def problem_body(
    kind: str, status: int, title: str, *, detail: str | None, instance: str | None, errors: list[dict[str, str]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_uri(_known(kind)), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers or {}
        self.kind = _known(kind)

    @classmethod
    def for_field(
        cls,
        status: int,
        title: str,
        field: str,
        where: str,
        message: str,
        *,
        kind: str = "validation",
        headers: dict[str, str] | None = None,
    ) -> Problem:
        """One field at fault: the detail names it (and where it is, outside the body) and `errors` lists it."""
        named = f"'{field}'" if where == "body" else f"'{field}' in {where}"
        return cls(
            status,
            title,
            f"{named}: {message}",
            errors=[{"field": field, "in": where, "message": message}],
            headers=headers,
            kind=kind,
        )

    def response(self, instance: str) -> Response:
        body = problem_body(
            self.kind, self.status, self.title, detail=self.detail, instance=instance, errors=self.errors
        )
        resp = Response(json.dumps(body), status=self.status, mimetype=PROBLEM_JSON)
        for k, v in self.headers.items():
            resp.headers[k] = v
        return resp


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{prefix}{path}" if path else prefix.rstrip(".") or "body"


def from_validation(exc: ValidationError, where: str) -> Problem:
    errors = [
        {"field": field_path(tuple(e["loc"])), "in": where, "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    status = 422 if where == "body" else 400
    if not errors:
        return Problem(status, "Invalid request", kind="validation")
    first = Problem.for_field(status, "Invalid request", errors[0]["field"], where, errors[0]["message"])
    first.errors = errors
    return first
