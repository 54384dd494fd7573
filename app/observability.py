"""Structured JSON logs with a correlation id, CloudWatch embedded-metric-format request metrics, OTel."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from flask import Flask

    from app.settings import Settings

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_SECRET_KEY = re.compile("password|token|secret|authorization|cookie|auth|credential", re.IGNORECASE)
_configured = ""


class _Stdout:
    """Whatever sys.stdout is at write time (gunicorn, tests and capture tools may swap it)."""

    def write(self, data: str) -> int:
        return sys.stdout.write(data)

    def flush(self) -> None:
        sys.stdout.flush()


_tracing = False


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if _is_secret_key(key):
            event[key] = "[redacted]"
    return event


def _add_correlation(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    cid = correlation_id.get()
    if cid and "correlation_id" not in event:
        event["correlation_id"] = cid
    return event


_request_log_enabled = True


def write_request_record(record: dict[str, Any], path: str) -> None:
    """The per-request access-log + EMF line: fixed keys (no secrets), written without the processor chain."""
    if not _request_log_enabled:
        return
    record["event"] = "request"
    record["level"] = "info"
    record["path"] = path
    record["correlation_id"] = correlation_id.get()
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


def configure_logging(level: str = "INFO") -> None:
    global _configured, _request_log_enabled  # noqa: PLW0603 - process-wide logging configuration
    if _configured == level.upper():
        return
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(stream=sys.stdout, level=numeric, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_correlation,
            _redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_Stdout()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _configured = level.upper()
    _request_log_enabled = numeric <= logging.INFO


def pick_correlation_id(request_id: str | None, traceparent: str | None) -> str:
    if request_id and _REQUEST_ID.match(request_id):
        return request_id
    if traceparent:
        m = _TRACEPARENT.match(traceparent.strip())
        if m:
            return m.group(1)
    return uuid.uuid4().hex


def emf_record(namespace: str, route: str, method: str, status: int, latency_ms: float) -> dict[str, Any]:
    """A CloudWatch embedded-metric-format document (one log line = access log + metrics)."""
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Route", "Method"]],
                    "Metrics": [
                        {"Name": "Latency", "Unit": "Milliseconds"},
                        {"Name": "Requests", "Unit": "Count"},
                        {"Name": "Errors5xx", "Unit": "Count"},
                    ],
                }
            ],
        },
        "Route": route,
        "Method": method,
        "StatusCode": status,
        "Latency": round(latency_ms, 3),
        "Requests": 1,
        "Errors5xx": 1 if status >= 500 else 0,
    }


def configure_tracing(settings: Settings, app: Flask | None = None) -> bool:
    """OTLP traces for Flask, psycopg, Redis and botocore; off when no endpoint is set, console for 'console'."""
    global _tracing  # noqa: PLW0603 - one tracer provider per process
    endpoint = settings.otel_exporter_otlp_endpoint.strip()
    if not endpoint:
        return False
    from opentelemetry import trace  # noqa: PLC0415 - heavy, only when tracing is on
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter  # noqa: PLC0415

    if not _tracing:
        provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
        if endpoint == "console":
            exporter: Any = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=3)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor  # noqa: PLC0415
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # noqa: PLC0415
        from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

        PsycopgInstrumentor().instrument(skip_dep_check=True)
        RedisInstrumentor().instrument()
        BotocoreInstrumentor().instrument()
        _tracing = True
    if app is not None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415

        FlaskInstrumentor().instrument_app(app, excluded_urls="health/live")
    return True


def current_trace_id() -> str | None:
    if not _tracing:
        return None
    from opentelemetry import trace  # noqa: PLC0415

    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None
