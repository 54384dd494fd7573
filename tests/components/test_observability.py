"""The observability layer: log groups, the dashboard over what the layers offer to watch, the sampling rule."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app import contract
from components.alarms import AuroraMetrics, CacheMetrics, QueueMetrics, RequestPathMetrics, ServiceMetrics
from components.cache import cache_member_cluster_ids
from components.naming import LogPolicy, Naming
from components.observability import Observability, ObservabilityArgs
from platformctl.plan import Plan, PlannedResource, run_program
from stack_config.schema import ObservabilityConfig
from tests.support import by_name, config_for, plan_with

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ALB_SUFFIX = "app/test-alb/50dc6c495c0c9188"
TARGET_GROUP_SUFFIX = "targetgroup/test-api/6d0ecf831eec9f09"
ALTERNATE_TARGET_GROUP_SUFFIX = "targetgroup/test-api-green/0a1b2c3d4e5f6a7b"


def run_observability(**watched: Any) -> Plan:
    """The component alone under the mocks, showing the fake metrics given."""

    def program() -> None:
        Observability(
            "obs",
            ObservabilityArgs(
                config=ObservabilityConfig.model_validate({"tracingSampleRate": 0.2}),
                naming=Naming("shop", "test", "staging"),
                region="us-east-1",
                logs=LogPolicy(30, "arn:aws:kms:us-east-1:123456789012:key/logs"),
                **watched,
            ),
        )

    return run_program(program, project="platform", stack="test")


@pytest.fixture(scope="module")
def watching_everything() -> Plan:
    return run_observability(
        request_path=RequestPathMetrics(ALB_SUFFIX, [TARGET_GROUP_SUFFIX]),
        compute=ServiceMetrics("shop-test", {"api": "shop-test-api", "worker": "shop-test-worker"}),
        aurora=AuroraMetrics("shop-test-aurora", ["shop-test-aurora-1", "shop-test-aurora-2"]),
        cache=CacheMetrics(cache_member_cluster_ids("shop-test-cache", 2)),
        queues=QueueMetrics({"orders": "shop-test-orders"}, {"orders": "shop-test-orders-dlq"}),
    )


@pytest.fixture(scope="module")
def watching_blue_green() -> Plan:
    return run_observability(
        request_path=RequestPathMetrics(ALB_SUFFIX, [TARGET_GROUP_SUFFIX, ALTERNATE_TARGET_GROUP_SUFFIX])
    )


@pytest.fixture(scope="module")
def watching_nothing() -> Plan:
    return run_observability()


def test_the_observability_layer_raises_no_alarm_of_its_own(watching_everything: Plan) -> None:
    """Alarms live with the layer whose metric they watch (tests/components/test_alarms.py)."""
    assert watching_everything.of_type(ALARM) == []


def widgets(plan: Plan) -> dict[str, dict[str, Any]]:
    (dashboard,) = plan.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    return {widget["properties"]["title"]: widget["properties"] for widget in body["widgets"]}


def test_dashboard_is_built_from_the_watched_resources(watching_everything: Plan, watching_nothing: Plan) -> None:
    shown = widgets(watching_everything)
    latency = shown["Latency p50 / p95 / p99 (s)"]["metrics"]
    assert [metric[-1]["stat"] for metric in latency] == ["p50", "p95", "p99"]
    assert all(
        metric[:4] == ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", ALB_SUFFIX] for metric in latency
    )
    assert ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", ALB_SUFFIX] in shown["Traffic (requests)"]["metrics"]
    assert len(shown["4xx / 5xx"]["metrics"]) == 4
    depth = shown["Queue depth (visible messages)"]["metrics"]
    assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "shop-test-orders-dlq"] in depth
    assert ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "shop-test-aurora-2"] in shown["Aurora CPU (%)"][
        "metrics"
    ]
    assert ["AWS/ElastiCache", "Evictions", "CacheClusterId", "shop-test-cache-002"] in shown["Cache evictions"][
        "metrics"
    ]
    assert {"Service CPU (%)", "Service memory (%)", "Aurora replica lag (ms)"} <= set(shown)
    app = shown["App: circuit breaker opens and worker retries"]["metrics"]
    assert [m[0]["label"] for m in app] == ["Breaker opened", "Messages retried"]
    assert app[0][0]["expression"] == (
        """SEARCH('{"Platform/App",breaker,state} MetricName="BreakerTransitions" state="open"', 'Sum', 60)"""
    )
    assert all(widget["region"] == "us-east-1" for widget in shown.values())
    assert all(title.startswith("App: ") for title in widgets(watching_nothing))


def test_traffic_is_shown_per_target_group_with_blue_green(watching_blue_green: Plan) -> None:
    traffic = widgets(watching_blue_green)["Traffic (requests)"]["metrics"]
    groups = {line[line.index("TargetGroup") + 1] for line in traffic if "TargetGroup" in line}
    assert groups == {TARGET_GROUP_SUFFIX, ALTERNATE_TARGET_GROUP_SUFFIX}


SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\} (?P<terms>[^']*)', '(?P<stat>\w+)', \d+\)")


AppMetricUse = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]


def app_metrics_in_use(plan: Plan, namespace: str) -> set[AppMetricUse]:
    """(metric name, dimension names, dimension values kept) of every dashboard line and alarm in the app's
    namespace. A search whose schema names no dimensions matches any set: it counts as ()."""
    used: set[AppMetricUse] = set()
    for widget in widgets(plan).values():
        for line in widget["metrics"]:
            if line[0] == namespace:  # a plain line: namespace, name, dimension name/value pairs, options
                pairs = [part for part in line[2:] if isinstance(part, str)]
                used.add((line[1], tuple(pairs[::2]), ()))
            expression = line[0].get("expression", "") if isinstance(line[0], dict) else ""
            for search in SEARCH.finditer(expression):
                space, *dimensions = [part.strip().strip('"') for part in search["schema"].split(",")]
                if space == namespace:
                    terms = dict(re.findall(r'(\w+)="([^"]*)"', search["terms"]))
                    name = terms.pop("MetricName")
                    used.add((name, tuple(dimensions), tuple(sorted(terms.items()))))
    for alarm_inputs in (a.inputs for a in plan.of_type(ALARM)):
        metrics = [alarm_inputs, *[q["metric"] for q in alarm_inputs.get("metricQueries", []) if "metric" in q]]
        for metric in metrics:
            if metric.get("namespace") == namespace:
                used.add((metric["metricName"], tuple(metric.get("dimensions", {})), ()))
    return used


def test_every_app_metric_the_dashboard_and_alarms_read_is_declared_with_its_dimensions(prod_plan: Plan) -> None:
    declared = {(m.name, tuple(sorted(m.dimensions))) for m in contract.APP_METRICS}
    used = app_metrics_in_use(prod_plan, "Platform/App")
    assert used, "the dashboard shows the app's own metrics"
    for name, dimensions, kept in used:
        assert (name, tuple(sorted(dimensions))) in declared, f"{name} {dimensions} is not what the app emits"
        assert {key for key, _ in kept} <= set(dimensions)


def test_sampling_rule_uses_the_configured_rate(watching_nothing: Plan, prod_plan: Plan) -> None:
    (rule,) = watching_nothing.of_type("aws:xray/samplingRule:SamplingRule")
    assert rule.inputs["fixedRate"] == 0.2 and rule.inputs["ruleName"] == "shop-test-default"
    assert (rule.inputs["serviceName"], rule.inputs["urlPath"], rule.inputs["version"]) == ("*", "*", 1)
    (prod_rule,) = prod_plan.of_type("aws:xray/samplingRule:SamplingRule")
    assert prod_rule.inputs["fixedRate"] == 0.05


def sample_ratios(plan: Plan) -> dict[str, str | None]:
    """The trace sample ratio each app container is told (the ADOT sidecar records what the app sends)."""
    ratios = {}
    for task in plan.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        for container in json.loads(task.inputs["containerDefinitions"]):
            if container["name"] in ("api", "worker"):
                environment = {v["name"]: v["value"] for v in container.get("environment", [])}
                ratios[container["name"]] = environment.get(contract.TRACE_SAMPLE_RATIO)
    return ratios


def test_the_app_is_told_the_configured_trace_sample_rate(prod_plan: Plan) -> None:
    assert sample_ratios(prod_plan) == {"api": "0.05", "worker": "0.05"}
    sampled = plan_with(config_for("staging", observability={"tracingSampleRate": 0.3}), stack="staging")
    assert sample_ratios(sampled) == {"api": "0.3", "worker": "0.3"}
    (rule,) = sampled.of_type("aws:xray/samplingRule:SamplingRule")
    assert rule.inputs["fixedRate"] == 0.3


def log_groups(plan: Plan) -> dict[str, PlannedResource]:
    return {service: by_name(plan, f"observability-{service}-logs") for service in ("api", "worker")}


def test_a_log_group_per_service_with_retention_and_the_logs_key(prod_plan: Plan, staging_plan: Plan) -> None:
    for plan, stack, days in ((prod_plan, "prod", 365), (staging_plan, "staging", 14)):
        logs_key = by_name(plan, "security-logs-key").outputs["arn"]
        for service, group in log_groups(plan).items():
            assert group.inputs["name"] == f"/platform/{stack}/{service}"
            assert group.inputs["retentionInDays"] == days
            assert group.inputs["kmsKeyId"] == logs_key
