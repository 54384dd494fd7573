"""Sessions: create, who am I, end."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app import contract
from app.http.util import bearer_token, json_body, services
from app.problems import Problem
from app.sessions import SessionIn

bp = Blueprint("user", __name__)


def _no_session() -> Problem:
    return Problem(
        401,
        "Unauthorized",
        "'Authorization' header: the session does not exist or has expired",
        headers={"WWW-Authenticate": "Bearer"},
        kind="unauthorized",
    )


@bp.post("/api/user/sessions")
def create_session() -> tuple[Response, int]:
    token, user = services().sessions.create(json_body(SessionIn))
    return jsonify({"token": token, "expires_in": contract.SESSION_TTL_SECONDS, "user": user}), 201


@bp.get("/api/user/me")
def me() -> Response:
    user = services().sessions.touch(bearer_token())
    if user is None:
        raise _no_session()
    return jsonify(user)


@bp.delete("/api/user/sessions/current")
def end_session() -> tuple[str, int]:
    if not services().sessions.end(bearer_token()):
        raise _no_session()
    return "", 204
