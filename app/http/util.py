"""Request helpers shared by the blueprints: validated bodies and queries, the services, auth."""

from __future__ import annotations

import json
from typing import TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from app import contract
from app.problems import Problem, from_validation
from app.services import Services

M = TypeVar("M", bound=BaseModel)


def services() -> Services:
    return current_app.extensions["services"]  # type: ignore[no-any-return]


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# One decoder for every request: `json.loads` with an argument builds a new decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _body() -> bytes:
    """The request body. Where the server ends the input stream at Content-Length itself (gunicorn says so with
    `wsgi.input_terminated`), a body within the limit is read straight from it: werkzeug's bounded stream on top
    of gunicorn's costs more than the rest of the order's validation (bench/api.py). Everything else (no length,
    chunked, over the limit: 413) goes through werkzeug as before. Only `json_body` reads bodies."""
    environ = request.environ
    length = environ.get("CONTENT_LENGTH", "")
    if "wsgi.input_terminated" in environ and length.isdecimal() and int(length) <= contract.MAX_REQUEST_BYTES:
        return environ["wsgi.input"].read(int(length))  # type: ignore[no-any-return]
    return request.get_data(cache=True)


def json_body(model: type[M]) -> M:
    # Parsed here rather than by `request.get_json`, which answers None for a malformed body and for `null`
    # alike: `null` is well-formed JSON and gets the 422 any other non-object gets. NaN and Infinity are not
    # JSON (RFC 8259) and PostgreSQL's jsonb refuses them.
    try:
        raw = _body()
        # As `json.loads` reads bytes: UTF-8, -16 or -32 by the leading bytes (RFC 8259 allows only UTF-8 on the
        # wire, and `detect_encoding` takes its BOM too).
        data = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except ValueError:
        raise Problem(
            400, "Malformed JSON", "'body': the request body is not valid JSON", kind="malformed-json"
        ) from None
    if not isinstance(data, dict):
        raise Problem.for_field(422, "Invalid request", "body", "body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, "body") from None


def query_args(model: type[M]) -> M:
    raw: dict[str, str] = {}
    for name in request.args:
        values = request.args.getlist(name)
        if len(values) > 1:
            raise Problem.for_field(400, "Invalid request", name, "query", "given more than once")
        raw[name] = values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc, "query") from None


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Unauthorized",
            "'Authorization' header: a Bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
            kind="unauthorized",
        )
    return token.strip()


def require_admin() -> None:
    token = bearer_token()
    if not services().admin_token.matches(token):
        raise Problem(403, "Forbidden", "'Authorization' header: not an admin token", kind="forbidden")
