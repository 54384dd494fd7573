"""What AWS needs of the services that the offline mocks would accept without: orderings, scaling that follows
blue/green traffic, and ECS Exec that can start in a read-only task. The real program, per environment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from platformctl.plan import Plan
from tests.support import by_name, config_for, plan_with

SERVICES = ("api", "worker")
EXEC_AGENT_PATHS = {"/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"}


@pytest.fixture(scope="module")
def prod() -> Plan:
    return plan_with(config_for("prod"))


@pytest.fixture(scope="module")
def staging() -> Plan:
    return plan_with(config_for("staging"))


@pytest.fixture(scope="module", params=["prod", "staging"])
def plan(request: pytest.FixtureRequest, prod: Plan, staging: Plan) -> Plan:
    return prod if request.param == "prod" else staging


def containers(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(by_name(plan, f"{service}-task").inputs["containerDefinitions"])}


def task_statements(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    document = json.loads(by_name(plan, f"{service}-task-policy").inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def actions(plan: Plan, service: str) -> set[str]:
    return {a for s in task_statements(plan, service).values() for a in s["Action"]}


# --- orderings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_waits_for_the_clusters_capacity_providers(plan: Plan, service: str) -> None:
    capacity = by_name(plan, "compute-capacity")
    strategies = by_name(plan, f"{service}-service").inputs["capacityProviderStrategies"]
    assert {s["capacityProvider"] for s in strategies} <= set(capacity.inputs["capacityProviders"])
    assert capacity.urn in by_name(plan, f"{service}-service").dependencies


def test_the_api_waits_for_the_listener_rule_that_attaches_its_target_groups(plan: Plan) -> None:
    rule = by_name(plan, "load-balancer-forward-api")
    forwarded = {g["arn"] for g in rule.inputs["actions"][0]["forward"]["targetGroups"]}
    api = by_name(plan, "api-service")
    assert api.inputs["loadBalancers"][0]["targetGroupArn"] in forwarded
    assert rule.urn in api.dependencies


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_waits_for_its_roles_policies(plan: Plan, service: str) -> None:
    """ECS uses the roles the moment the service exists: to pull the image, read secrets, shift traffic."""
    grants = [
        r
        for r in plan.resources
        if r.type in {"aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"}
        and r.name.startswith(f"{service}-")
    ]
    assert {g.name for g in grants} >= {f"{service}-task-policy", f"{service}-execution-managed"}
    dependencies = by_name(plan, f"{service}-service").dependencies
    assert [g.name for g in grants if g.urn not in dependencies] == []


# --- request scaling -------------------------------------------------------------------------------


def request_metrics(plan: Plan) -> dict[str, dict[str, Any]]:
    configuration = by_name(plan, "api-scale-on-requests").inputs["targetTrackingScalingPolicyConfiguration"]
    assert "predefinedMetricSpecification" not in configuration, "a predefined metric watches one target group"
    return {m["id"]: m for m in configuration["customizedMetricSpecification"]["metrics"]}


def target_groups_counted(metrics: dict[str, dict[str, Any]]) -> set[str]:
    return {
        d["value"]
        for m in metrics.values()
        if m.get("metricStat", {}).get("metric", {}).get("metricName") == "RequestCount"
        for d in m["metricStat"]["metric"]["dimensions"]
        if d["name"] == "TargetGroup"
    }


def test_blue_green_request_scaling_counts_both_target_groups(prod: Plan) -> None:
    metrics = request_metrics(prod)
    groups = {by_name(prod, name).outputs["arnSuffix"] for name in ("load-balancer-api", "load-balancer-api-green")}
    assert target_groups_counted(metrics) == groups
    (result,) = [m for m in metrics.values() if m.get("returnData")]
    # An idle group publishes no data points: without FILL the sum would be missing, and no scaling happen.
    for metric_id, metric in metrics.items():
        if metric.get("metricStat", {}).get("metric", {}).get("metricName") == "RequestCount":
            assert f"FILL({metric_id}, 0)" in result["expression"]
    assert result["expression"].endswith("/ tasks")
    assert metrics["tasks"]["metricStat"]["metric"]["metricName"] == "RunningTaskCount"


def test_rolling_request_scaling_counts_its_one_target_group(staging: Plan) -> None:
    assert target_groups_counted(request_metrics(staging)) == {
        by_name(staging, "load-balancer-api").outputs["arnSuffix"]
    }


# --- ECS Exec --------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_exec_off_gives_no_flag_no_permissions_and_no_volumes(prod: Plan, service: str) -> None:
    assert by_name(prod, f"{service}-service").inputs["enableExecuteCommand"] is False
    assert not {a for a in actions(prod, service) if a.startswith("ssmmessages:") or a.startswith("logs:")}
    volumes = {v["name"] for v in by_name(prod, f"{service}-task").inputs["volumes"]}
    assert volumes == {"tmp"}


@pytest.mark.parametrize("service", SERVICES)
def test_exec_on_keeps_the_root_read_only_and_the_agent_paths_writable(staging: Plan, service: str) -> None:
    assert by_name(staging, f"{service}-service").inputs["enableExecuteCommand"] is True
    volumes = {v["name"] for v in by_name(staging, f"{service}-task").inputs["volumes"]}
    shells = [name for name in containers(staging, service) if name not in {"otel-collector", "init"}]
    assert service in shells
    for name in shells:
        container = containers(staging, service)[name]
        assert container["readonlyRootFilesystem"] is True
        writable = {m["containerPath"]: m["sourceVolume"] for m in container["mountPoints"] if not m["readOnly"]}
        assert set(writable) >= EXEC_AGENT_PATHS, f"{service}/{name}: the exec agent cannot write"
        assert {writable[path] for path in EXEC_AGENT_PATHS} <= volumes
    # One agent per container: no two containers share an agent's state.
    agent_volumes = [
        m["sourceVolume"]
        for c in containers(staging, service).values()
        for m in c["mountPoints"]
        if m["containerPath"] in EXEC_AGENT_PATHS
    ]
    assert len(agent_volumes) == len(set(agent_volumes))


@pytest.mark.parametrize("service", SERVICES)
def test_exec_task_roles_may_write_the_session_log_and_only_there(staging: Plan, service: str) -> None:
    log_group = by_name(staging, "compute-exec-logs")
    cluster = by_name(staging, "compute-cluster")
    logging = cluster.inputs["configuration"]["executeCommandConfiguration"]["logConfiguration"]
    assert logging["cloudWatchLogGroupName"] == log_group.inputs["name"]
    granted = actions(staging, service)
    assert {
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "logs:DescribeLogGroups",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    } <= granted
    for statement in task_statements(staging, service).values():
        writes = set(statement["Action"]) & {"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"}
        if writes:
            assert {r.removesuffix(":*") for r in statement["Resource"]} == {log_group.outputs["arn"]}


def test_exec_is_chosen_per_service() -> None:
    plan = plan_with(config_for("prod", services={"api": {"executeCommand": True}}))
    assert by_name(plan, "api-service").inputs["enableExecuteCommand"] is True
    assert by_name(plan, "worker-service").inputs["enableExecuteCommand"] is False
    assert "ssmmessages:OpenDataChannel" in actions(plan, "api")
    assert "ssmmessages:OpenDataChannel" not in actions(plan, "worker")
