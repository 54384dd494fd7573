"""Fargate services: task definitions, IAM, networking, deployments and autoscaling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from platformctl.plan import Plan, PlannedResource, run_program
from tests.components import request_path


def _plan(environment: str) -> Plan:
    cfg = request_path.config(environment)
    return run_program(lambda: request_path.services(cfg), project="platform", stack="test")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return _plan("prod")


@pytest.fixture(scope="module")
def staging() -> Plan:
    return _plan("staging")


def resource(plan: Plan, name: str) -> PlannedResource:
    (match,) = [r for r in plan.resources if r.name == name]
    return match


def containers(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    definitions = json.loads(resource(plan, f"{service}-task").inputs["containerDefinitions"])
    return {c["name"]: c for c in definitions}


@pytest.mark.parametrize("service", ["api", "worker"])
def test_containers_are_non_root_read_only_and_take_secrets_by_arn(prod: Plan, service: str) -> None:
    for container in containers(prod, service).values():
        assert container["user"] == "10001:10001"
        assert container["readonlyRootFilesystem"] is True and container["privileged"] is False
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False} in container["mountPoints"]
        for variable in container.get("environment", []):
            assert "SECRET" not in variable["name"] and "TOKEN" not in variable["name"]
    app = containers(prod, service)[service]
    assert app["healthCheck"]["startPeriod"] == 60
    assert app["stopTimeout"] >= 30
    assert app["linuxParameters"]["initProcessEnabled"] is True  # ECS Exec
    assert containers(prod, service)["otel-collector"]["image"].startswith(
        "public.ecr.aws/aws-observability/aws-otel-collector:v"
    )


def test_api_secret_comes_from_secrets_manager(prod: Plan) -> None:
    app = containers(prod, "api")["api"]
    assert app["secrets"] == [{"name": "REDIS_AUTH_TOKEN", "valueFrom": request_path.SECRET_ARN}]
    assert app["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]


def test_services_run_private_without_public_ips_with_circuit_breaker(prod: Plan) -> None:
    for service in ("api", "worker"):
        inputs = resource(prod, f"{service}-service").inputs
        assert inputs["networkConfiguration"]["assignPublicIp"] is False
        assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert inputs["enableExecuteCommand"] is False  # prod's default; tests/components/test_service_deployability.py
        assert inputs["availabilityZoneRebalancing"] == "ENABLED"
    api = resource(prod, "api-service").inputs
    assert api["alarms"] == {"alarmNames": ["platform-test-alb-5xx"], "enable": True, "rollback": True}


def test_blue_green_only_in_prod(prod: Plan, staging: Plan) -> None:
    api = resource(prod, "api-service").inputs
    assert api["deploymentConfiguration"] == {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": "10"}
    advanced = api["loadBalancers"][0]["advancedConfiguration"]
    assert set(advanced) == {"alternateTargetGroupArn", "productionListenerRule", "roleArn"}
    staging_api = resource(staging, "api-service").inputs
    assert staging_api["deploymentConfiguration"] == {"strategy": "ROLLING"}
    assert (staging_api["deploymentMinimumHealthyPercent"], staging_api["deploymentMaximumPercent"]) == (100, 200)
    assert "advancedConfiguration" not in staging_api["loadBalancers"][0]


def test_worker_runs_on_spot_when_configured(prod: Plan, staging: Plan) -> None:
    providers = [
        s["capacityProvider"] for s in resource(staging, "worker-service").inputs["capacityProviderStrategies"]
    ]
    assert providers == ["FARGATE", "FARGATE_SPOT"]
    prod_providers = [
        s["capacityProvider"] for s in resource(prod, "worker-service").inputs["capacityProviderStrategies"]
    ]
    assert prod_providers == ["FARGATE"]


def policies(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    return {
        p.name.removeprefix(f"{service}-scale-on-"): p.inputs["targetTrackingScalingPolicyConfiguration"]
        for p in plan.of_type("aws:appautoscaling/policy:Policy")
        if p.name.startswith(f"{service}-")
    }


def test_api_scales_on_cpu_memory_and_requests_with_asymmetric_cooldowns(prod: Plan) -> None:
    api = policies(prod, "api")
    assert {k: v["targetValue"] for k, v in api.items()} == {"cpu": 70, "memory": 80, "requests": 1000}
    metrics = {m["id"]: m for m in api["requests"]["customizedMetricSpecification"]["metrics"]}
    assert metrics["requests_per_task"]["expression"] == "(FILL(requests_0, 0) + FILL(requests_1, 0)) / tasks"
    for group in ("requests_0", "requests_1"):
        dimensions = {d["name"]: d["value"] for d in metrics[group]["metricStat"]["metric"]["dimensions"]}
        assert dimensions["LoadBalancer"].startswith("app/lb-alb/")
        assert dimensions["TargetGroup"].startswith(("targetgroup/lb-api/", "targetgroup/lb-api-green/"))
    assert all((v["scaleOutCooldown"], v["scaleInCooldown"]) == (60, 300) for v in api.values())
    (target,) = [t for t in prod.of_type("aws:appautoscaling/target:Target") if t.name == "api-scaling"]
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (6, 50)


def test_worker_scales_on_backlog_per_task_through_metric_math(prod: Plan) -> None:
    (backlog,) = policies(prod, "worker").values()
    metrics = {m["id"]: m for m in backlog["customizedMetricSpecification"]["metrics"]}
    assert metrics["backlog_per_task"]["expression"] == "visible / tasks"
    assert metrics["backlog_per_task"]["returnData"] is True
    assert metrics["visible"]["metricStat"]["metric"]["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert backlog["targetValue"] == 100


def statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    return json.loads(resource(plan, name).inputs["policy"])["Statement"]


@pytest.mark.parametrize("service", ["api", "worker"])
def test_iam_is_scoped_to_this_stacks_arns(prod: Plan, service: str) -> None:
    for statement in [*statements(prod, f"{service}-task-policy"), *statements(prod, f"{service}-execution-secrets")]:
        assert all(action != "*" and not action.endswith(":*") for action in statement["Action"])
        if statement["Resource"] == ["*"]:
            assert all(
                a.startswith(("xray:", "ssmmessages:")) or a == "logs:DescribeLogGroups" for a in statement["Action"]
            )
        else:
            assert all(":123456789012:" in arn for arn in statement["Resource"])
    task = {s["Sid"]: s for s in statements(prod, f"{service}-task-policy")}
    if service == "api":
        assert task["SendOrders"]["Action"] == ["sqs:SendMessage"]
    else:
        assert set(task["ConsumeOrders"]["Action"]) == {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
        }


def test_security_group_chain_has_no_open_ingress(prod: Plan) -> None:
    ingress = prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert all("cidrIpv4" not in r.inputs and "cidrIpv6" not in r.inputs for r in ingress)
    from_alb = resource(prod, "api-from-alb").inputs
    alb_sg = resource(prod, "lb-sg")
    api_sg = resource(prod, "app-sg-api")
    assert (from_alb["referencedSecurityGroupId"], from_alb["securityGroupId"], from_alb["fromPort"]) == (
        alb_sg.id,
        api_sg.id,
        8080,
    )
    egress = {r.name: r.inputs for r in prod.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")}
    assert egress["api-to-database"]["referencedSecurityGroupId"] == request_path.DB_SG
    assert egress["worker-to-cache"]["fromPort"] == 6379


def test_images_come_from_immutable_scanned_repositories(prod: Plan) -> None:
    for repository in prod.of_type("aws:ecr/repository:Repository"):
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    (image,) = [r for r in prod.resources if r.type == "awsx:ecr:Image" and r.name == "api-image"]
    # Relative to the working directory, where the program and the builder both run (the repository root here).
    assert (image.inputs["context"], image.inputs["dockerfile"]) == (".", "app/Dockerfile")
    assert image.inputs["target"] == "api" and image.inputs["imageTag"].startswith("api-")
    assert containers(prod, "api")["api"]["image"] == image.outputs["imageUri"]


def test_a_prebuilt_image_skips_the_build() -> None:
    cfg = request_path.config(
        "staging", services={"worker": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/w@sha256:abc"}}
    )
    plan = run_program(lambda: request_path.services(cfg), project="platform", stack="test")
    assert [r.name for r in plan.resources if r.type == "awsx:ecr:Image"] == ["api-image"]
    assert containers(plan, "worker")["worker"]["image"].endswith("/w@sha256:abc")


def test_cluster_has_container_insights_and_records_exec_sessions(prod: Plan) -> None:
    (cluster,) = prod.of_type("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enhanced"} in cluster.inputs["settings"]
    exec_logging = cluster.inputs["configuration"]["executeCommandConfiguration"]
    log_group = resource(prod, "compute-exec-logs")
    assert exec_logging["logConfiguration"]["cloudWatchLogGroupName"] == log_group.inputs["name"]
    assert exec_logging["logConfiguration"]["cloudWatchEncryptionEnabled"] is True
    assert log_group.inputs["kmsKeyId"] and log_group.inputs["retentionInDays"] == 30
