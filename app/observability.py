"""Structured JSON logs with a correlation id, CloudWatch embedded-metric-format request metrics, OTel."""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

import structlog

from app import contract
from app.contract import AppMetric

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace import TracerProvider

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


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if _is_secret_key(key):
            event[key] = "[redacted]"
    return event


def _add_correlation(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    cid = correlation_id.get()
    if cid and "correlation_id" not in event:
        event["correlation_id"] = cid
    return event


_request_log_enabled = True


# What `json.dumps` does with a str, without its keyword checks.
_escape = encode_basestring_ascii


@functools.lru_cache(maxsize=256)
def _json_str(value: str) -> str:
    return _escape(value)


class RequestRecords:
    """The per-request access-log line, which is also a CloudWatch embedded-metric-format document.

    Fixed keys, no secrets, written without structlog's processor chain: it is the one line every request
    writes, so the parts that never change (the metric directive) are rendered once and the rest is formatted
    straight into the line.
    """

    METRICS = (contract.METRIC_REQUEST_LATENCY, contract.METRIC_REQUESTS, contract.METRIC_REQUEST_ERRORS_5XX)

    def __init__(self, namespace: str) -> None:
        self._directive = json.dumps(metric_directives(namespace, self.METRICS), separators=(",", ":"))
        # Member names come from the contract, rendered once: the line itself is formatted by hand for speed.
        self._route_key, self._method_key = (_json_str(name) for name in contract.REQUEST_DIMENSIONS)
        self._latency_key, self._requests_key, self._errors_key = (_json_str(m.name) for m in self.METRICS)
        self._second: tuple[int, str] = (-1, "")  # the current second, ISO-formatted once (isoformat's printf)

    def _stamp(self, now: float) -> str:
        """`now` as `isoformat()` writes it with microseconds; the date and time part formatted once a second."""
        second, micros = divmod(int(now * 1_000_000), 1_000_000)
        cached_second, text = self._second
        if cached_second != second:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)  # one tuple, swapped whole: threads see either second, never a mix
        return f"{text}.{micros:06d}+00:00"

    def write(self, route: str, method: str, status: int, latency_ms: float, path: str) -> None:
        if not _request_log_enabled:
            return
        now = time.time()
        stamp = self._stamp(now)
        sys.stdout.write(
            f'{{"_aws":{{"Timestamp":{int(now * 1000)},"CloudWatchMetrics":{self._directive}}},'
            f'"timestamp":"{stamp}","event":"request","level":"info",'
            f'{self._route_key}:{_json_str(route)},{self._method_key}:{_json_str(method)},"StatusCode":{int(status)},'
            f"{self._latency_key}:{latency_ms:.3f},{self._requests_key}:1,"
            f"{self._errors_key}:{1 if status >= 500 else 0},"
            f'"path":{_escape(path)},"correlation_id":{_escape(correlation_id.get())}}}\n'
        )


@functools.lru_cache(maxsize=64)
def metric_directives(namespace: str, metrics: tuple[AppMetric, ...]) -> list[dict[str, Any]]:
    """The `CloudWatchMetrics` directives of a record publishing `metrics`: one per dimension set.

    Only metrics `app.contract.APP_METRICS` declares may be published, so the dashboard and alarms that read
    that list find every metric the app writes, under the dimensions it is written with.
    """
    unknown = [metric.name for metric in metrics if metric not in contract.APP_METRICS]
    if unknown:
        raise ValueError(f"metrics not declared in app.contract.APP_METRICS: {', '.join(unknown)}")
    by_dimensions: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for metric in metrics:
        by_dimensions.setdefault(metric.dimensions, []).append({"Name": metric.name, "Unit": metric.unit})
    return [
        {"Namespace": namespace, "Dimensions": [list(dimensions)], "Metrics": entries}
        for dimensions, entries in by_dimensions.items()
    ]


def metric_fields(namespace: str, values: Mapping[AppMetric, float], dimensions: Mapping[str, str]) -> dict[str, Any]:
    """The members a structured log record needs to publish `values` as embedded-metric-format metrics.

    `_aws` with the directives, one member per dimension and one per metric. Every metric must be declared in
    the contract and take exactly the `dimensions` given.
    """
    metrics = tuple(values)
    wrong = [m.name for m in metrics if set(m.dimensions) != set(dimensions)]
    if wrong:
        raise ValueError(f"{', '.join(wrong)}: published with dimensions {sorted(dimensions)}, declared otherwise")
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": metric_directives(namespace, metrics)},
        **dimensions,
        **{metric.name: value for metric, value in values.items()},
    }


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
    # A label to join log lines, not a secret: 128 random bits without uuid4's system call.
    return f"{random.getrandbits(128):032x}"


def configure_tracing(settings: Settings, app: Flask | None = None) -> bool:
    """OTLP traces for Flask, psycopg, Redis and botocore; off when no endpoint is set, console for 'console'."""
    global _tracing  # noqa: PLW0603 - one tracer provider per process
    endpoint = settings.otel_exporter_otlp_endpoint.strip()
    if not endpoint:
        return False
    from opentelemetry import trace  # noqa: PLC0415 - heavy, only when tracing is on
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter  # noqa: PLC0415

    if not _tracing:
        provider = tracer_provider(settings)
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


def tracer_provider(settings: Settings) -> TracerProvider:
    """The process's tracer provider, before any exporter: named for the service, sampling as configured.

    New traces (a request without a traceparent, a worker's message span, which links to its request rather
    than joining it) are recorded at `TRACE_SAMPLE_RATIO`, the stack's `tracingSampleRate`. A request that
    arrives with a traceparent follows its caller's sampled flag, so a trace is kept whole or not at all.
    """
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - heavy, only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: PLC0415

    return TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )


def flush_traces(timeout_ms: int = 1000) -> None:
    """Export the spans still buffered (for a process about to leave without its exit handlers)."""
    if _tracing:
        from opentelemetry import trace  # noqa: PLC0415

        provider = trace.get_tracer_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush(timeout_ms)


def current_traceparent(incoming: str | None = None) -> str | None:
    """The W3C `traceparent` to hand on with work this request causes (an outbox event).

    With tracing on, the current span's context (a child of the caller's trace); with it off, the caller's own
    header, forwarded unchanged as W3C Trace Context asks of a hop that records no spans, so the chain still
    links; None when neither exists or the header is malformed.
    """
    if _tracing:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        if carrier.get("traceparent"):
            return carrier["traceparent"]
    if incoming and _TRACEPARENT.match(incoming.strip()):
        return incoming.strip()
    return None


def current_trace_id() -> str | None:
    if not _tracing:
        return None
    from opentelemetry import trace  # noqa: PLC0415

    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None
