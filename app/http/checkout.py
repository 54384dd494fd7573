"""Checkout: idempotent order placement and read-your-writes order reads."""

from __future__ import annotations

import re
import uuid

from flask import Blueprint, Response, jsonify, request

from app.checkout import IDEMPOTENCY_KEY, OrderIn
from app.http.util import json_body, services
from app.observability import correlation_id, current_traceparent
from app.problems import Problem

bp = Blueprint("checkout", __name__)
_KEY = re.compile(IDEMPOTENCY_KEY)


@bp.post("/api/checkout/orders")
def place_order() -> tuple[Response, int]:
    environ = request.environ  # headers straight from the environ: werkzeug's EnvironHeaders rebuilds the key per get
    key = environ.get("HTTP_IDEMPOTENCY_KEY", "")
    if not _KEY.fullmatch(key):
        message = "required" if not key else "must be 1-255 visible ASCII characters"
        raise Problem.for_field(400, "Invalid request", "Idempotency-Key", "header", message, kind="idempotency-key")
    order = json_body(OrderIn)
    traceparent = current_traceparent(environ.get("HTTP_TRACEPARENT"))
    outcome = services().checkout.place("checkout", key, order, correlation_id.get(), traceparent)
    if outcome.status >= 400:
        # The only stored failure is place_order's rejection of the order (migration 0008).
        rejection = outcome.rejection()
        problem = Problem(
            outcome.status,
            rejection.get("title", "Invalid order"),
            rejection.get("detail"),
            errors=rejection.get("errors"),
            kind="invalid-order",
        )
        resp = problem.response(request.path)
    else:
        # The stored response as stored: a replay answers the same bytes as the first request.
        resp = Response(outcome.body, mimetype="application/json")
        resp.headers["Location"] = f"/api/checkout/orders/{outcome.order_id}"
    if outcome.replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp, outcome.status


@bp.get("/api/checkout/orders/<uuid:order_id>")
def get_order(order_id: uuid.UUID) -> Response:
    order = services().checkout.get(order_id)
    if order is None:
        raise Problem(404, "Not found", f"'id' in path: order {order_id} does not exist", kind="not-found")
    return jsonify(order)
