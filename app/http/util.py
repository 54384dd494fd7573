"""Request helpers shared by the blueprints: validated bodies and queries, the services, auth."""

from __future__ import annotations

import json
from typing import TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from app.problems import Problem, from_validation
from app.services import Services

M = TypeVar("M", bound=BaseModel)


def services() -> Services:
    return current_app.extensions["services"]  # type: ignore[no-any-return]


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_body(model: type[M]) -> M:
    # Parsed here rather than by `request.get_json`, which answers None for a malformed body and for `null`
    # alike: `null` is well-formed JSON and gets the 422 any other non-object gets. NaN and Infinity are not
    # JSON (RFC 8259) and PostgreSQL's jsonb refuses them.
    try:
        data = json.loads(request.get_data(cache=True), parse_constant=_no_constant)
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
