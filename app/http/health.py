"""Liveness (the process answers: what the ALB checks) and readiness (database and Redis, with latencies)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from app import contract
from app.http.util import services

bp = Blueprint("health", __name__)


def _check(fn: Callable[[], object]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type is reported
        return {"ok": False, "error": type(exc).__name__, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


@bp.get(contract.HEALTH_LIVE_PATH)
def live() -> Response:
    return jsonify({"status": "ok"})


@bp.get(contract.HEALTH_READY_PATH)
def ready() -> tuple[Response, int]:
    svc = services()
    checks = {"database": _check(svc.db.ping), "redis": _check(svc.cache.ping)}
    ok = all(c["ok"] for c in checks.values())
    if svc.db.reader is not None:
        checks["database_reader"] = _check(lambda: svc.db.ping(reader=True))  # informative: reads fall back
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503
