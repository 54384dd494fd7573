"""The app's own metrics and traces: what it emits is what the dashboard reads, sampled as the stack says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app import contract, observability
from app.bulkhead import Bulkhead, CompartmentFull
from app.observability import configure_logging
from app.resilience import CircuitBreaker
from app.settings import Settings
from app.worker import Worker
from tests.components.test_observability import app_metrics_in_use, run_observability

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACE = "Platform/App"
SETTING_SAMPLE_RATIO = "TRACE_SAMPLE_RATIO"  # spelled out: the name must not change under the stack's feet

Emitted = dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]]


class Boom(Exception):
    pass


@pytest.fixture
def info_logs() -> Iterator[None]:
    configure_logging("INFO")
    yield
    configure_logging("WARNING")


def emitted_metrics(out: str) -> Emitted:
    """Every (metric, dimension set) the embedded-metric-format records in `out` publish in NAMESPACE, with
    the records that publish it. A record must carry each dimension as a string and each metric as a number,
    or CloudWatch drops it."""
    emitted: Emitted = {}
    for line in out.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            if directive["Namespace"] != NAMESPACE:
                continue
            for dimensions in directive["Dimensions"]:
                assert all(isinstance(record[name], str) for name in dimensions), record
                for metric in directive["Metrics"]:
                    assert isinstance(record[metric["Name"]], int | float), record
                    emitted.setdefault((metric["Name"], tuple(dimensions)), []).append(record)
    return emitted


@pytest.fixture
def emitted(
    info_logs: None, make_app: Callable[..., Any], make_settings: Callable[..., Settings], queue_url: str, capsys: Any
) -> Emitted:
    """What the app really publishes on its four paths: a request, a worker batch, a breaker opening, a call shed
    by a full bulkhead."""
    capsys.readouterr()
    make_app(log_level="INFO", metrics_namespace=NAMESPACE).test_client().get("/api/user/me")
    worker = Worker(make_settings(queue_url=queue_url, metrics_namespace=NAMESPACE))
    try:
        worker._emit_metrics([], Counter(processed=2, duplicate=1))
    finally:
        worker.close()
    breaker = CircuitBreaker("dep", make_settings(metrics_namespace=NAMESPACE, breaker_min_calls=3), None, (Boom,))
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(lambda: (_ for _ in ()).throw(Boom()))
    compartment = Bulkhead("dep", 1, namespace=NAMESPACE)
    with compartment, pytest.raises(CompartmentFull), compartment:
        pass
    return emitted_metrics(capsys.readouterr().out)


def test_the_dashboard_reads_only_metrics_the_app_emits_under_their_dimensions(emitted: Emitted) -> None:
    plan = run_observability()
    used = app_metrics_in_use(plan, NAMESPACE)
    assert used
    # Shed calls are charted per dependency: a compartment that fills shows which dependency is slow.
    assert (contract.METRIC_BULKHEAD_REJECTED.name, ("Dependency",)) in {(name, dims) for name, dims, _ in used}
    for name, dimensions, kept in used:
        records = emitted.get((name, dimensions))
        assert records, f"the dashboard reads {name} by {list(dimensions)}; the app emits {sorted(emitted)}"
        # A line keeping one dimension value (a breaker's state "open") finds records with that value.
        assert any(all(record[key] == value for key, value in kept) for record in records), (name, kept)


def test_every_declared_metric_is_emitted_with_its_unit_and_dimensions(emitted: Emitted) -> None:
    assert set(emitted) == {(metric.name, metric.dimensions) for metric in contract.APP_METRICS}
    units = {
        (entry["Name"], tuple(dims)): entry["Unit"]
        for records in emitted.values()
        for record in records
        for directive in record["_aws"]["CloudWatchMetrics"]
        for dims in directive["Dimensions"]
        for entry in directive["Metrics"]
    }
    assert all(units[(metric.name, metric.dimensions)] == metric.unit for metric in contract.APP_METRICS)


def test_the_emitter_refuses_a_metric_or_dimension_set_the_contract_does_not_declare() -> None:
    undeclared = contract.AppMetric("CircuitBreakerOpened", "Count", ("breaker",), "never emitted")
    with pytest.raises(ValueError, match="CircuitBreakerOpened"):
        observability.metric_fields(NAMESPACE, {undeclared: 1}, {"breaker": "dep"})
    with pytest.raises(ValueError, match="BreakerTransitions"):
        observability.metric_fields(NAMESPACE, {contract.METRIC_BREAKER_TRANSITIONS: 1}, {"breaker": "dep"})


def sampled_spans(ratio: str | None, traceparent: str | None = None, spans: int = 400) -> int:
    """How many of `spans` spans the app's tracer records, configured as a task is (a fresh process: the
    tracer provider is process-wide), each a new trace or a child of the caller's `traceparent`."""
    code = f"""
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from app.observability import configure_tracing
from app.settings import Settings
configure_tracing(Settings())
tracer = trace.get_tracer("test")
parent = TraceContextTextMapPropagator().extract({{"traceparent": {traceparent!r}}}) if {traceparent!r} else None
print(sum(tracer.start_span("s", context=parent).get_span_context().trace_flags.sampled for _ in range({spans})))
"""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": "console", "PYTHONPATH": REPO}
    env.pop(SETTING_SAMPLE_RATIO, None)
    if ratio is not None:
        env[SETTING_SAMPLE_RATIO] = ratio
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_new_traces_are_sampled_at_the_configured_ratio() -> None:
    # 400 trace ids at 25 %: 100 expected, a standard deviation of about 9.
    assert 55 <= sampled_spans("0.25") <= 145
    assert sampled_spans("0") == 0
    assert sampled_spans(None) == 400  # locally, with no ratio given, every trace is kept


def test_a_callers_sampling_decision_is_followed_whatever_the_ratio() -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert sampled_spans("0", f"00-{trace_id}-{span_id}-01", spans=20) == 20
    assert sampled_spans("1", f"00-{trace_id}-{span_id}-00", spans=20) == 0


def test_a_ratio_outside_0_to_1_is_refused_naming_the_setting(monkeypatch: Any) -> None:
    monkeypatch.setenv(SETTING_SAMPLE_RATIO, "0.25")
    assert Settings().trace_sample_ratio == 0.25
    monkeypatch.setenv(SETTING_SAMPLE_RATIO, "1.5")
    with pytest.raises(ValueError, match=SETTING_SAMPLE_RATIO):
        Settings()


@pytest.mark.parametrize("now", [1_765_015_199.999_998, 1_765_015_200.0, 1_765_015_200.000_001, 1_765_015_200.5])
def test_the_request_records_timestamp_is_the_iso_time_to_the_microsecond_across_a_second(now: float) -> None:
    records = observability.RequestRecords(NAMESPACE)
    stamps = [records._stamp(t) for t in (now - 1.0, now, now + 0.25)]  # the cached second changes in between
    for t, stamp in zip((now - 1.0, now, now + 0.25), stamps, strict=True):
        expected = datetime.fromtimestamp(t, UTC)
        assert abs((datetime.fromisoformat(stamp) - expected).total_seconds()) <= 1e-6, (stamp, expected)
        assert stamp.endswith("+00:00") and len(stamp) == len("2026-01-01T00:00:00.000000+00:00")
