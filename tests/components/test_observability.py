"""The observability layer: log groups, alarms on what they are given, the dashboard and the sampling rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.naming import Naming
from components.observability import Observability, ObservabilityArgs, alarm_name, cache_member_cluster_ids
from platformctl.plan import Plan, PlannedResource, run_program
from stack_config.schema import ObservabilityConfig
from tests.support import by_name

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "arn:aws:sns:us-east-1:123456789012:test-alerts"
ALB_SUFFIX = "app/test-alb/50dc6c495c0c9188"
TARGET_GROUP_SUFFIX = "targetgroup/test-api/6d0ecf831eec9f09"


def run_observability(**watched: Any) -> Plan:
    """The component alone under the mocks, watching the fake resources given."""

    def program() -> None:
        Observability(
            "obs",
            ObservabilityArgs(
                config=ObservabilityConfig.model_validate({"tracingSampleRate": 0.2}),
                naming=Naming("shop", "test", "staging"),
                region="us-east-1",
                logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
                alerts_topic_arn=TOPIC,
                **watched,
            ),
        )

    return run_program(program, project="platform", stack="test")


@pytest.fixture(scope="module")
def watching_everything() -> Plan:
    return run_observability(
        alb_arn_suffix=ALB_SUFFIX,
        target_group_arn_suffix=TARGET_GROUP_SUFFIX,
        ecs_cluster_name="shop-test",
        ecs_service_names={"api": "shop-test-api", "worker": "shop-test-worker"},
        aurora_cluster_id="shop-test-aurora",
        aurora_instance_ids=["shop-test-aurora-1", "shop-test-aurora-2"],
        cache_replication_group_id="shop-test-cache",
        # Node ids derived from the group id and node count, as the program derives them.
        cache_member_cluster_ids=cache_member_cluster_ids("shop-test-cache", 2),
        queue_names={"orders": "shop-test-orders"},
        dead_letter_queue_names={"orders": "shop-test-orders-dlq"},
    )


@pytest.fixture(scope="module")
def watching_nothing() -> Plan:
    return run_observability()


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


def test_target_5xx_and_p99_latency_watch_the_target_group(watching_everything: Plan) -> None:
    targets = {"LoadBalancer": ALB_SUFFIX, "TargetGroup": TARGET_GROUP_SUFFIX}
    target_5xx = alarm(watching_everything, "target-5xx")
    assert_alarm(target_5xx, "HTTPCode_Target_5XX_Count", "AWS/ApplicationELB", targets, 25, 60, 2)
    latency = alarm(watching_everything, "target-p99-latency")
    assert_alarm(latency, "TargetResponseTime", "AWS/ApplicationELB", targets, 1.0, 60, 5)
    assert latency["extendedStatistic"] == "p99" and "statistic" not in latency
    assert latency["datapointsToAlarm"] == 3


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


def test_no_watched_resource_no_alarm(watching_nothing: Plan, watching_everything: Plan) -> None:
    assert watching_nothing.of_type(ALARM) == []
    # 3 load balancer, 2 ECS, 2 x 3 + 1 Aurora, 2 x 3 cache, 2 queue alarms.
    assert len(watching_everything.of_type(ALARM)) == 3 + 2 + 7 + 6 + 2


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
    app = shown["App: circuit breaker opens and retries"]["metrics"]
    assert [m[0]["label"] for m in app] == ["CircuitBreakerOpened", "Retries"]
    assert "{Platform/App}" in app[0][0]["expression"]
    assert all(widget["region"] == "us-east-1" for widget in shown.values())
    assert list(widgets(watching_nothing)) == ["App: circuit breaker opens and retries"]


def test_sampling_rule_uses_the_configured_rate(watching_nothing: Plan, prod_plan: Plan) -> None:
    (rule,) = watching_nothing.of_type("aws:xray/samplingRule:SamplingRule")
    assert rule.inputs["fixedRate"] == 0.2 and rule.inputs["ruleName"] == "shop-test-default"
    assert (rule.inputs["serviceName"], rule.inputs["urlPath"], rule.inputs["version"]) == ("*", "*", 1)
    (prod_rule,) = prod_plan.of_type("aws:xray/samplingRule:SamplingRule")
    assert prod_rule.inputs["fixedRate"] == 0.05


def log_groups(plan: Plan) -> dict[str, PlannedResource]:
    return {service: by_name(plan, f"observability-{service}-logs") for service in ("api", "worker")}


def test_a_log_group_per_service_with_retention_and_the_logs_key(prod_plan: Plan, staging_plan: Plan) -> None:
    for plan, stack, days in ((prod_plan, "prod", 90), (staging_plan, "staging", 14)):
        logs_key = by_name(plan, "security-logs-key").outputs["arn"]
        for service, group in log_groups(plan).items():
            assert group.inputs["name"] == f"/platform/{stack}/{service}"
            assert group.inputs["retentionInDays"] == days
            assert group.inputs["kmsKeyId"] == logs_key


def test_the_program_wires_queues_database_and_cache_into_alarms(prod_plan: Plan, staging_plan: Plan) -> None:
    alerts = by_name(prod_plan, "messaging-alerts").outputs["arn"]
    prod_alarms = {a.name: a.inputs for a in prod_plan.of_type(ALARM)}
    assert all(inputs["alarmActions"] == [alerts] for inputs in prod_alarms.values())
    dlq_name = by_name(prod_plan, "messaging-orders-dlq").inputs["name"]
    assert prod_alarms["observability-orders-dlq-not-empty"]["dimensions"] == {"QueueName": dlq_name}
    writer = by_name(prod_plan, "database-writer").inputs["identifier"]
    assert prod_alarms["observability-aurora-0-cpu"]["dimensions"] == {"DBInstanceIdentifier": writer}
    # Prod: a writer and 2 readers, a primary and 2 replicas; staging: 1 reader and 1 replica.
    for plan, nodes in ((prod_plan, 3), (staging_plan, 2)):
        labels = {a.name for a in plan.of_type(ALARM)}
        assert sum(label.endswith("-cpu") and "aurora" in label for label in labels) == nodes
        assert sum(label.endswith("-evictions") for label in labels) == nodes
    assert prod_alarms["observability-cache-2-cpu"]["dimensions"] == {"CacheClusterId": "platform-prod-cache-003"}
