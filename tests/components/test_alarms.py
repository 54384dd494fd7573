"""Each layer's alarms (`components/alarms.py` and the layer's own module): what they watch, their thresholds,
that they go to the alerts topic, and that each lives with the layer whose metric it watches."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pytest

from components.alarms import (
    AlarmSet,
    Alerting,
    AuroraMetrics,
    CacheMetrics,
    QueueMetrics,
    RequestPathMetrics,
    ServiceMetrics,
    alarm_name,
)
from components.cache import cache_alarms, cache_member_cluster_ids
from components.database import aurora_alarms
from components.ecs.service import tasks_alarms
from components.load_balancer import request_path_alarms
from components.messaging import queue_alarms
from components.naming import Naming
from platformctl.plan import Plan, run_program
from stack_config.schema import ObservabilityConfig
from tests.support import by_name

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "arn:aws:sns:us-east-1:123456789012:test-alerts"
ALB_SUFFIX = "app/test-alb/50dc6c495c0c9188"
TARGET_GROUP_SUFFIX = "targetgroup/test-api/6d0ecf831eec9f09"
ALTERNATE_TARGET_GROUP_SUFFIX = "targetgroup/test-api-green/0a1b2c3d4e5f6a7b"
REQUEST_PATH_ALARMS = ("alb-5xx", "target-5xx", "target-p99-latency")
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"


class Layer(pulumi.ComponentResource):
    """A stand-in for the layer that owns the metrics: the alarms become its children."""

    def __init__(self, name: str) -> None:
        super().__init__("test:alarms:Layer", name, None, None)


def raise_alarms(
    request_path: RequestPathMetrics | None = None,
    services: ServiceMetrics | None = None,
    aurora: AuroraMetrics | None = None,
    cache: CacheMetrics | None = None,
    queues: QueueMetrics | None = None,
) -> Plan:
    """Each layer's alarm set on the fake metrics given, under the mocks, with the default thresholds."""

    def program() -> None:
        alerting = Alerting(TOPIC, ObservabilityConfig.model_validate({}).alarm_thresholds)
        alarms = AlarmSet(Layer("obs"), "obs", Naming("shop", "test", "staging"), alerting)
        if request_path is not None:
            request_path_alarms(alarms, request_path)
        if services is not None:
            tasks_alarms(alarms, services)
        if aurora is not None:
            aurora_alarms(alarms, aurora)
        if cache is not None:
            cache_alarms(alarms, cache)
        if queues is not None:
            queue_alarms(alarms, queues)

    return run_program(program, project="platform", stack="test")


@pytest.fixture(scope="module")
def watching_everything() -> Plan:
    return raise_alarms(
        request_path=RequestPathMetrics(ALB_SUFFIX, [TARGET_GROUP_SUFFIX]),
        services=ServiceMetrics("shop-test", {"api": "shop-test-api", "worker": "shop-test-worker"}),
        aurora=AuroraMetrics("shop-test-aurora", ["shop-test-aurora-1", "shop-test-aurora-2"]),
        # Node ids derived from the group id and node count, as the cache layer derives them.
        cache=CacheMetrics(cache_member_cluster_ids("shop-test-cache", 2)),
        queues=QueueMetrics({"orders": "shop-test-orders"}, {"orders": "shop-test-orders-dlq"}),
    )


@pytest.fixture(scope="module")
def watching_blue_green() -> Plan:
    return raise_alarms(
        request_path=RequestPathMetrics(ALB_SUFFIX, [TARGET_GROUP_SUFFIX, ALTERNATE_TARGET_GROUP_SUFFIX])
    )


def alarm(plan: Plan, label: str) -> dict[str, Any]:
    return by_name(plan, f"obs-{label}").inputs


def assert_alarm(
    inputs: dict[str, Any],
    metric: str,
    namespace: str,
    dimensions: dict[str, str],
    threshold: float,
    period: int,
    periods: int,
    comparison: str = "GreaterThanThreshold",
) -> None:
    assert (inputs["metricName"], inputs["namespace"], inputs["dimensions"]) == (metric, namespace, dimensions)
    assert (inputs["threshold"], inputs["period"], inputs["evaluationPeriods"]) == (threshold, period, periods)
    assert inputs["comparisonOperator"] == comparison
    assert inputs["alarmActions"] == [TOPIC] and inputs["okActions"] == [TOPIC]


def test_alb_5xx_over_50_a_minute_for_2_periods(watching_everything: Plan) -> None:
    inputs = alarm(watching_everything, "alb-5xx")
    balancer = {"LoadBalancer": ALB_SUFFIX}
    assert_alarm(inputs, "HTTPCode_ELB_5XX_Count", "AWS/ApplicationELB", balancer, 50, 60, 2)
    assert inputs["statistic"] == "Sum" and inputs["name"] == "shop-test-alb-5xx"
    # Known before the alarm exists, so ECS deployment rollback can name it.
    assert (
        alarm_name(Naming("shop", "test", "staging"), "target-5xx") == alarm(watching_everything, "target-5xx")["name"]
    )


def metric_queries(inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {query["id"]: query for query in inputs["metricQueries"]}


def watched_target_groups(inputs: dict[str, Any]) -> set[str]:
    """The target groups a request-path alarm reads (a load-balancer-level metric covers them all: "*")."""
    metrics = [q["metric"] for q in inputs["metricQueries"] if "metric" in q] if "metricQueries" in inputs else [inputs]
    return {metric["dimensions"].get("TargetGroup", "*") for metric in metrics}


def evaluate(inputs: dict[str, Any], per_group: dict[str, float | None]) -> float:
    """The value a metric math alarm compares for one period, given each target group's datapoint (None:
    no datapoint, as CloudWatch has none for an idle group or a minute without a 5xx). Covers the functions
    the request-path alarms use: FILL(id, 0), SUM([ids]) and MAX([ids])."""
    values: dict[str, float | None] = {}
    for query in inputs["metricQueries"]:
        if "metric" in query:
            values[query["id"]] = per_group.get(query["metric"]["dimensions"]["TargetGroup"])
            continue
        expression = query["expression"]
        if fill := re.fullmatch(r"FILL\((\w+), (\d+)\)", expression):
            value = values[fill[1]]
            values[query["id"]] = float(fill[2]) if value is None else value
        elif combine := re.fullmatch(r"(SUM|MAX)\(\[([\w, ]+)\]\)", expression):
            present = [v for v in (values[name.strip()] for name in combine[2].split(",")) if v is not None]
            values[query["id"]] = (sum if combine[1] == "SUM" else max)(present) if present else None
        else:
            raise AssertionError(f"unexpected expression {expression}")
    (returned,) = [query["id"] for query in inputs["metricQueries"] if query.get("returnData")]
    result = values[returned]
    assert result is not None, "no datapoint: TreatMissingData would decide, not the traffic"
    return result


def assert_valid_metric_math_alarm(inputs: dict[str, Any]) -> None:
    """What PutMetricAlarm accepts of an alarm on metric math: no single-metric fields beside the queries,
    at most 10 metrics and 10 expressions, exactly one returned, ids starting with a lowercase letter,
    standard-resolution periods, expressions naming only ids defined before them."""
    assert not {"metricName", "namespace", "dimensions", "statistic", "extendedStatistic", "period"} & set(inputs)
    queries = inputs["metricQueries"]
    fetched = [q for q in queries if "metric" in q]
    expressions = [q for q in queries if "expression" in q]
    assert len(fetched) <= 10 and len(expressions) <= 10 and len(fetched) + len(expressions) == len(queries)
    assert sum(bool(q.get("returnData")) for q in queries) == 1
    seen: set[str] = set()
    for query in queries:
        assert re.fullmatch(r"[a-z][A-Za-z0-9_]*", query["id"]) and query["id"] not in seen
        if "metric" in query:
            assert query["metric"]["period"] % 60 == 0
        else:
            assert set(re.findall(r"\b[a-z][A-Za-z0-9_]*\b", query["expression"])) <= seen, query["expression"]
        seen.add(query["id"])


def test_target_5xx_and_p99_latency_watch_the_target_group(watching_everything: Plan) -> None:
    target_5xx = alarm(watching_everything, "target-5xx")
    assert_valid_metric_math_alarm(target_5xx)
    (group,) = [q["metric"] for q in target_5xx["metricQueries"] if "metric" in q]
    assert (group["namespace"], group["metricName"], group["stat"], group["period"]) == (
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
        "Sum",
        60,
    )
    assert group["dimensions"] == {"LoadBalancer": ALB_SUFFIX, "TargetGroup": TARGET_GROUP_SUFFIX}
    assert (target_5xx["threshold"], target_5xx["evaluationPeriods"], target_5xx["alarmActions"]) == (25, 2, [TOPIC])
    assert target_5xx["treatMissingData"] == "notBreaching"
    latency = alarm(watching_everything, "target-p99-latency")
    assert_valid_metric_math_alarm(latency)
    (group,) = [q["metric"] for q in latency["metricQueries"] if "metric" in q]
    assert (group["metricName"], group["stat"]) == ("TargetResponseTime", "p99")
    assert (latency["threshold"], latency["evaluationPeriods"], latency["datapointsToAlarm"]) == (1.0, 5, 3)


def test_request_path_alarms_watch_both_target_groups_with_blue_green(
    watching_blue_green: Plan, watching_everything: Plan
) -> None:
    both = {TARGET_GROUP_SUFFIX, ALTERNATE_TARGET_GROUP_SUFFIX}
    for label in REQUEST_PATH_ALARMS:
        covered = watched_target_groups(alarm(watching_blue_green, label))
        assert covered == {"*"} or covered == both, label
        covered = watched_target_groups(alarm(watching_everything, label))
        assert covered == {"*"} or covered == {TARGET_GROUP_SUFFIX}, label
    for label in ("target-5xx", "target-p99-latency"):
        assert_valid_metric_math_alarm(alarm(watching_blue_green, label))


def test_errors_and_slowness_on_either_group_alone_breach(watching_blue_green: Plan) -> None:
    target_5xx, latency = (alarm(watching_blue_green, label) for label in ("target-5xx", "target-p99-latency"))
    blue, green = TARGET_GROUP_SUFFIX, ALTERNATE_TARGET_GROUP_SUFFIX
    # After a swap the alternate group serves everything and the first has no datapoint at all.
    assert evaluate(target_5xx, {green: 30}) == 30 > target_5xx["threshold"]
    assert evaluate(target_5xx, {blue: 30}) == 30
    # During the shift both serve: their 5xx add up.
    assert evaluate(target_5xx, {blue: 15, green: 15}) == 30
    assert evaluate(target_5xx, {}) == 0 <= target_5xx["threshold"]
    # The union's p99 is above the threshold only if one group's p99 is: the slower group decides.
    assert evaluate(latency, {blue: 0.2, green: 2.5}) == 2.5 > latency["threshold"]
    assert evaluate(latency, {green: 0.3}) == 0.3 <= latency["threshold"]


def test_the_program_alarms_on_every_target_group_it_creates(prod_plan: Plan, staging_plan: Plan) -> None:
    # Prod deploys the API blue/green (two target groups); staging rolls (one).
    for plan, groups in ((prod_plan, 2), (staging_plan, 1)):
        suffixes = {group.outputs["arnSuffix"] for group in plan.of_type(TARGET_GROUP)}
        assert len(suffixes) == groups
        for label in REQUEST_PATH_ALARMS:
            covered = watched_target_groups(by_name(plan, f"load-balancer-{label}").inputs)
            assert covered == {"*"} or covered == suffixes, (plan.stack, label)


def test_every_metric_math_alarm_is_one_aws_accepts(prod_plan: Plan, staging_plan: Plan) -> None:
    for plan in (prod_plan, staging_plan):
        math = [a.inputs for a in plan.of_type(ALARM) if "metricQueries" in a.inputs]
        assert len(math) >= 4  # both request-path alarms and a tasks-below-desired alarm per service
        for inputs in math:
            assert_valid_metric_math_alarm(inputs)


def test_aurora_cpu_over_80_percent_for_5_minutes_on_each_instance(watching_everything: Plan) -> None:
    for index, instance in enumerate(("shop-test-aurora-1", "shop-test-aurora-2")):
        dims = {"DBInstanceIdentifier": instance}
        cpu = alarm(watching_everything, f"aurora-{index}-cpu")
        assert_alarm(cpu, "CPUUtilization", "AWS/RDS", dims, 80, 300, 1)
        assert cpu["statistic"] == "Average"
        memory = alarm(watching_everything, f"aurora-{index}-freeable-memory")
        assert_alarm(memory, "FreeableMemory", "AWS/RDS", dims, 256 * 1024 * 1024, 60, 5, "LessThanThreshold")
        connections = alarm(watching_everything, f"aurora-{index}-connections")
        assert_alarm(connections, "DatabaseConnections", "AWS/RDS", dims, 800, 60, 5)
    lag = alarm(watching_everything, "aurora-replica-lag")
    assert_alarm(lag, "AuroraReplicaLagMaximum", "AWS/RDS", {"DBClusterIdentifier": "shop-test-aurora"}, 1000, 60, 5)


def test_cache_cpu_memory_and_evictions_on_each_node(watching_everything: Plan) -> None:
    for index, node in enumerate(("shop-test-cache-001", "shop-test-cache-002")):
        dims = {"CacheClusterId": node}
        assert_alarm(
            alarm(watching_everything, f"cache-{index}-cpu"), "EngineCPUUtilization", "AWS/ElastiCache", dims, 75, 60, 5
        )
        memory = alarm(watching_everything, f"cache-{index}-memory")
        assert_alarm(memory, "DatabaseMemoryUsagePercentage", "AWS/ElastiCache", dims, 80, 60, 5)
        evictions = alarm(watching_everything, f"cache-{index}-evictions")
        assert_alarm(evictions, "Evictions", "AWS/ElastiCache", dims, 100, 300, 1)
        assert evictions["statistic"] == "Sum"


def test_queue_age_and_any_message_in_a_dlq(watching_everything: Plan) -> None:
    age = alarm(watching_everything, "orders-oldest-message")
    assert_alarm(age, "ApproximateAgeOfOldestMessage", "AWS/SQS", {"QueueName": "shop-test-orders"}, 600, 60, 3)
    dlq = alarm(watching_everything, "orders-dlq-not-empty")
    assert_alarm(dlq, "ApproximateNumberOfMessagesVisible", "AWS/SQS", {"QueueName": "shop-test-orders-dlq"}, 0, 60, 1)
    assert dlq["statistic"] == "Maximum"


def test_ecs_running_tasks_below_desired(watching_everything: Plan) -> None:
    for service in ("api", "worker"):
        inputs = alarm(watching_everything, f"{service}-tasks-below-desired")
        queries = {query["id"]: query for query in inputs["metricQueries"]}
        dims = {"ClusterName": "shop-test", "ServiceName": f"shop-test-{service}"}
        assert queries["running"]["metric"]["metricName"] == "RunningTaskCount"
        assert queries["desired"]["metric"]["metricName"] == "DesiredTaskCount"
        assert queries["running"]["metric"]["dimensions"] == dims == queries["desired"]["metric"]["dimensions"]
        assert queries["running"]["metric"]["namespace"] == "ECS/ContainerInsights"
        assert queries["missing"]["expression"] == "desired - running" and queries["missing"]["returnData"] is True
        assert (inputs["threshold"], inputs["comparisonOperator"]) == (0, "GreaterThanThreshold")
        assert inputs["evaluationPeriods"] == 5 and inputs["alarmActions"] == [TOPIC]


def test_every_watched_resource_gets_its_alarms(watching_everything: Plan) -> None:
    # 3 load balancer, 2 ECS, 2 x 3 + 1 Aurora, 2 x 3 cache, 2 queue alarms.
    assert len(watching_everything.of_type(ALARM)) == 3 + 2 + 7 + 6 + 2


def test_the_program_wires_queues_database_and_cache_into_alarms(prod_plan: Plan, staging_plan: Plan) -> None:
    alerts = by_name(prod_plan, "messaging-alerts").outputs["arn"]
    prod_alarms = {a.name: a.inputs for a in prod_plan.of_type(ALARM)}
    # SLO windows notify through their composites, the health check pages (tests/components/test_slo.py).
    assert all(
        inputs["alarmActions"] == [alerts]
        for name, inputs in prod_alarms.items()
        if not name.startswith(ADDED_AFTER_THE_MOVE)
    )
    dlq_name = by_name(prod_plan, "messaging-orders-dlq").inputs["name"]
    assert prod_alarms["messaging-orders-dlq-not-empty"]["dimensions"] == {"QueueName": dlq_name}
    writer = by_name(prod_plan, "database-writer").inputs["identifier"]
    assert prod_alarms["database-aurora-0-cpu"]["dimensions"] == {"DBInstanceIdentifier": writer}
    # Prod: a writer and 2 readers, a primary and 2 replicas; staging: 1 reader and 1 replica.
    for plan, nodes in ((prod_plan, 3), (staging_plan, 2)):
        labels = {a.name for a in plan.of_type(ALARM)}
        assert sum(label.endswith("-cpu") and "aurora" in label for label in labels) == nodes
        assert sum(label.endswith("-evictions") for label in labels) == nodes
    assert prod_alarms["cache-2-cpu"]["dimensions"] == {"CacheClusterId": "platform-prod-cache-003"}


# The layer each alarm's metric belongs to, by the alarm's label.
OWNERS = {
    "alb-5xx": "load-balancer",
    "target-5xx": "load-balancer",
    "target-p99-latency": "load-balancer",
    "api-tasks-below-desired": "api",
    "worker-tasks-below-desired": "worker",
    "aurora-": "database",
    "cache-": "cache",
    "orders-": "messaging",
    "worker-deploy-errors": "worker",
    "worker-dlq-arrivals": "worker",
    "slo-": "slo",
    "edge-health": "edge",
}
# Alarms first made after every layer owned its alarms (issue 20): none ever lived in observability.
ADDED_AFTER_THE_MOVE = ("slo-", "edge-health")


def test_each_alarm_lives_with_the_layer_whose_metric_it_watches(prod_plan: Plan, staging_plan: Plan) -> None:
    for plan in (prod_plan, staging_plan):
        components = {r.urn: r.name for r in plan.resources if not r.custom}
        for alarm_resource in plan.of_type(ALARM):
            label = alarm_resource.inputs["name"].removeprefix(f"platform-{plan.stack}-")
            (owner,) = [layer for prefix, layer in OWNERS.items() if label.startswith(prefix)]
            assert components[alarm_resource.parent or ""] == owner, label
        assert not [a for a in plan.of_type(ALARM) if components.get(a.parent or "") == "observability"]


def test_every_alarm_moved_out_of_observability_keeps_its_old_urn_as_an_alias(prod_plan: Plan) -> None:
    """Pulumi would otherwise delete each alarm under the observability layer and create it again elsewhere."""
    # A URN qualifies a child's type by its parent's type only.
    old_type = "platform:observability:Observability$aws:cloudwatch/metricAlarm:MetricAlarm"
    for alarm_resource in prod_plan.of_type(ALARM):
        label = alarm_resource.inputs["name"].removeprefix("platform-prod-")
        if label.startswith(ADDED_AFTER_THE_MOVE):
            continue
        old = f"urn:pulumi:prod::platform::{old_type}::observability-{label}"
        assert old in alarm_resource.aliases, alarm_resource.name


def test_an_alarm_name_is_the_stack_prefix_and_its_label() -> None:
    assert alarm_name(Naming("shop", "test", "staging"), "target-5xx") == "shop-test-target-5xx"
