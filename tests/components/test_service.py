"""Fargate services as the program builds them (`components/app_services.py` on `components/ecs/`): task
definitions, IAM, networking, deployments and autoscaling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import contract
from platformctl.plan import Plan, PlannedResource
from tests.support import config_for, plan_with


@pytest.fixture
def prod(prod_plan: Plan) -> Plan:
    return prod_plan


@pytest.fixture
def staging(staging_plan: Plan) -> Plan:
    return staging_plan


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
            # A secret's ARN (where the app reads it at run time) is not its value.
            if not variable["value"].startswith("arn:"):
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
    secret_arns = prod.outputs["secret_arns"]
    assert app["secrets"] == [{"name": contract.REDIS_AUTH_TOKEN, "valueFrom": secret_arns["cache-auth-token"]}]
    # The admin token rotates: the API reads its current value by ARN, never a copy taken at the task's start.
    environment = {variable["name"]: variable["value"] for variable in app["environment"]}
    assert environment[contract.ADMIN_TOKEN_SECRET_ID] == secret_arns["admin-token"]
    assert app["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]


def test_services_run_private_without_public_ips_with_circuit_breaker(prod: Plan) -> None:
    for service in ("api", "worker"):
        inputs = resource(prod, f"{service}-service").inputs
        assert inputs["networkConfiguration"]["assignPublicIp"] is False
        assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert inputs["enableExecuteCommand"] is False  # prod's default; tests/components/test_service_deployability.py
        assert inputs["availabilityZoneRebalancing"] == "ENABLED"
    api = resource(prod, "api-service").inputs
    # The load balancer's own alarms (the site failing) and the API's SLO fast burns roll a deployment back.
    rollback = [
        "platform-prod-alb-5xx",
        "platform-prod-target-5xx",
        "platform-prod-slo-api-availability-page-1h-short",
        "platform-prod-slo-api-latency-page-1h-short",
    ]
    assert api["alarms"] == {"alarmNames": rollback, "enable": True, "rollback": True}
    # The worker, behind no load balancer, rolls back on alarms of its own (tests/components/test_slo.py).
    worker = ["platform-prod-worker-deploy-errors", "platform-prod-worker-dlq-arrivals"]
    assert resource(prod, "worker-service").inputs["alarms"] == {"alarmNames": worker, "enable": True, "rollback": True}


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
        assert dimensions["LoadBalancer"].startswith("app/load-balancer-alb/")
        assert dimensions["TargetGroup"].startswith(
            ("targetgroup/load-balancer-api/", "targetgroup/load-balancer-api-green/")
        )
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
    receive = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    orders = prod.outputs["queue_urls"]["orders"].rsplit("/", 1)[-1]
    if service == "api":
        # The API writes orders and their outbox rows only: the relay (in the worker's task) publishes them.
        assert not {a for statement in task.values() for a in statement["Action"] if a.startswith(("sqs:", "sns:"))}
    else:
        assert receive <= set(task["ConsumeOrders"]["Action"])
        assert task["ConsumeOrders"]["Resource"][0].endswith(f":{orders}")
        assert task["RedriveDeadLetters"]["Resource"][0].endswith(f":{orders}-dlq")


def test_security_group_chain_has_no_open_ingress(prod: Plan) -> None:
    alb_sg = resource(prod, "load-balancer-sg")
    api_sg = resource(prod, "app-api")
    chain = {alb_sg.id, api_sg.id, resource(prod, "app-worker").id}
    ingress = prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    into_chain = [r for r in ingress if r.inputs["securityGroupId"] in chain]
    assert into_chain and all("cidrIpv4" not in r.inputs and "cidrIpv6" not in r.inputs for r in into_chain)
    from_alb = resource(prod, "api-from-alb").inputs
    assert (from_alb["referencedSecurityGroupId"], from_alb["securityGroupId"], from_alb["fromPort"]) == (
        alb_sg.id,
        api_sg.id,
        8080,
    )
    egress = {r.name: r.inputs for r in prod.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")}
    # Through the proxy: its security group, not the cluster's (which only the migrating init container reaches).
    assert egress["api-to-database"]["referencedSecurityGroupId"] == resource(prod, "database-proxy-sg").id
    assert egress["api-to-aurora-writer"]["referencedSecurityGroupId"] == resource(prod, "database-sg").id
    assert "worker-to-aurora-writer" not in egress
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
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/w@sha256:abc"
    plan = plan_with(config_for("staging", services={"worker": {"image": image}}))
    assert [r.name for r in plan.resources if r.type == "awsx:ecr:Image"] == ["api-image"]
    assert containers(plan, "worker")["worker"]["image"].endswith("/w@sha256:abc")


def exec_key_policy(plan: Plan) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements(plan, "compute-exec-key-policy")}


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_exec_sessions_are_encrypted_with_a_key_of_their_own(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    (cluster,) = plan.of_type("aws:ecs/cluster:Cluster")
    key = resource(plan, "compute-exec-key")
    assert cluster.inputs["configuration"]["executeCommandConfiguration"]["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    # Dedicated: nothing else names the exec key as its encryption key.
    for other in plan.resources:
        if other.urn != cluster.urn:
            assert key.outputs["arn"] not in (other.inputs.get("kmsKeyId"), other.inputs.get("kmsMasterKeyId"))


def test_the_exec_key_admits_the_operator_and_exactly_the_tasks_with_exec_on(staging: Plan, prod: Plan) -> None:
    operator = resource(staging, "compute-exec-operator").outputs["arn"]
    staging_statements = exec_key_policy(staging)
    assert staging_statements["OperatorOpensSessions"]["Principal"] == {"AWS": operator}
    assert staging_statements["OperatorOpensSessions"]["Action"] == ["kms:GenerateDataKey"]
    # Staging turns ECS Exec on for both services, prod for neither: only those task roles may decrypt.
    task_roles = [resource(staging, f"{service}-task-role").outputs["arn"] for service in ("api", "worker")]
    assert staging_statements["TasksDecryptSessions"]["Principal"] == {"AWS": task_roles}
    assert staging_statements["TasksDecryptSessions"]["Action"] == ["kms:Decrypt"]
    assert set(exec_key_policy(prod)) == {"AccountAdministers", "OperatorOpensSessions"}


@pytest.mark.parametrize(("stack", "granted"), [("staging", True), ("prod", False)])
def test_a_task_may_decrypt_exec_sessions_only_with_ecs_exec_on(
    stack: str, granted: bool, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    key_arn = resource(plan, "compute-exec-key").outputs["arn"]
    decrypt = {"Sid": "EcsExecDecryptsSessions", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key_arn]}
    for service in ("api", "worker"):
        decrypts = [s for s in statements(plan, f"{service}-task-policy") if key_arn in s["Resource"]]
        assert decrypts == ([decrypt] if granted else []), service


def test_the_exec_operator_needs_mfa_and_reaches_only_this_clusters_tasks(prod: Plan) -> None:
    role = resource(prod, "compute-exec-operator")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    (cluster,) = prod.of_type("aws:ecs/cluster:Cluster")
    tasks = "arn:aws:ecs:us-east-1:123456789012:task/platform-prod-cluster/*"
    granted = {s["Sid"]: (s["Action"], s["Resource"]) for s in statements(prod, "compute-exec-operator-policy")}
    assert granted == {
        "ExecIntoClusterTasks": (["ecs:ExecuteCommand"], [cluster.outputs["arn"], tasks]),
        "FindClusterTasks": (["ecs:DescribeTasks"], [tasks]),
        "GenerateSessionKey": (["kms:GenerateDataKey"], [resource(prod, "compute-exec-key").outputs["arn"]]),
    }


def test_cluster_has_container_insights_and_records_exec_sessions(prod: Plan) -> None:
    (cluster,) = prod.of_type("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enhanced"} in cluster.inputs["settings"]
    exec_logging = cluster.inputs["configuration"]["executeCommandConfiguration"]
    log_group = resource(prod, "compute-exec-logs")
    assert exec_logging["logConfiguration"]["cloudWatchLogGroupName"] == log_group.inputs["name"]
    assert exec_logging["logConfiguration"]["cloudWatchEncryptionEnabled"] is True
    # The stack's log policy, as every service log group keeps it.
    policy = resource(prod, "observability-api-logs").inputs
    assert (log_group.inputs["kmsKeyId"], log_group.inputs["retentionInDays"]) == (
        policy["kmsKeyId"],
        policy["retentionInDays"],
    )
