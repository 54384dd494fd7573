"""Secrets that rotate: each generated secret's schedule, its Lambda, and what Pulumi leaves to the rotation."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from components.load_balancer import ORIGIN_SECRET_HEADER
from components.rotation import DEFAULT_ROTATION_DAYS, ROTATION_PACKAGE, rotation_code
from platformctl.plan import Plan, PlannedResource
from tests.support import by_name

FUNCTION = "aws:lambda/function:Function"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
# Secret key -> the module of `rotation/` that rotates it.
ROTATED = {"cache-auth-token": "cache_token", "origin-verify": "origin_secret", "admin-token": "admin_token"}


def statements(resource: PlannedResource, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(resource.inputs[key])["Statement"]
    return found


@pytest.fixture(params=["prod", "staging"])
def plan(request: pytest.FixtureRequest, prod_plan: Plan, staging_plan: Plan) -> Plan:
    return prod_plan if request.param == "prod" else staging_plan


@pytest.mark.parametrize(("secret", "module"), ROTATED.items())
def test_each_generated_secret_rotates_on_a_schedule_through_its_own_lambda(
    plan: Plan, secret: str, module: str
) -> None:
    arn = plan.outputs["secret_arns"][secret]
    rotation = by_name(plan, f"rotation-{secret}-rotation").inputs
    function = by_name(plan, f"rotation-{secret}-function")
    assert rotation["secretId"] == arn
    assert rotation["rotationLambdaArn"] == function.outputs["arn"]
    assert rotation["rotationRules"] == {"automaticallyAfterDays": DEFAULT_ROTATION_DAYS}
    assert rotation["rotateImmediately"] is False
    assert function.inputs["handler"] == f"rotation.{module}.handler"
    assert callable(importlib.import_module(f"rotation.{module}").handler)
    assert len(plan.of_type(ROTATION)) == len(ROTATED)


@pytest.mark.parametrize("secret", ROTATED)
def test_the_lambdas_trace_log_to_the_stacks_group_and_stay_out_of_the_vpc(plan: Plan, secret: str) -> None:
    function = by_name(plan, f"rotation-{secret}-function").inputs
    log_group = by_name(plan, f"rotation-{secret}-logs").inputs
    assert function["runtime"] in {"python3.12", "python3.13"}
    assert function["tracingConfig"] == {"mode": "Active"}
    assert function["reservedConcurrentExecutions"] == 1
    assert function["loggingConfig"]["logGroup"] == log_group["name"]
    app_logs = by_name(plan, "observability-api-logs").inputs
    assert log_group["retentionInDays"] == app_logs["retentionInDays"]
    assert log_group["kmsKeyId"] == app_logs["kmsKeyId"]
    # Control-plane calls only: no ENIs, no NAT path to depend on.
    assert "vpcConfig" not in function


@pytest.mark.parametrize("secret", ROTATED)
def test_secrets_manager_alone_invokes_each_lambda_for_its_own_secret(plan: Plan, secret: str) -> None:
    permission = by_name(plan, f"rotation-{secret}-invoke").inputs
    assert permission["principal"] == "secretsmanager.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["sourceArn"] == plan.outputs["secret_arns"][secret]
    assert permission["sourceAccount"] == "123456789012"
    assert permission["function"] == by_name(plan, f"rotation-{secret}-function").inputs["name"]


@pytest.mark.parametrize("secret", ROTATED)
def test_each_lambda_role_reaches_its_own_secret_and_only_lambda_assumes_it(plan: Plan, secret: str) -> None:
    (trust,) = statements(by_name(plan, f"rotation-{secret}-role"), "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    policy = statements(by_name(plan, f"rotation-{secret}-policy"), "policy")
    secret_statements = [s for s in policy if any(a.startswith("secretsmanager:") for a in s["Action"])]
    assert [s["Resource"] for s in secret_statements] == [[plan.outputs["secret_arns"][secret]]]


def _service_actions(plan: Plan, secret: str) -> dict[str, list[str]]:
    policy = statements(by_name(plan, f"rotation-{secret}-policy"), "policy")
    own = ("secretsmanager:", "kms:", "logs:", "xray:")
    return {
        action: statement["Resource"]
        for statement in policy
        for action in statement["Action"]
        if not action.startswith(own)
    }


def test_the_origin_lambda_may_change_that_rule_and_that_distribution_only(plan: Plan) -> None:
    rule, distribution = by_name(plan, "load-balancer-forward-api"), by_name(plan, "edge-distribution")
    assert _service_actions(plan, "origin-verify") == {
        "elasticloadbalancing:ModifyRule": [rule.outputs["arn"]],
        "cloudfront:GetDistributionConfig": [distribution.outputs["arn"]],
        "cloudfront:UpdateDistribution": [distribution.outputs["arn"]],
        "cloudfront:GetDistribution": [distribution.outputs["arn"]],
    }
    environment = by_name(plan, "rotation-origin-verify-function").inputs["environment"]["variables"]
    assert environment["LISTENER_RULE_ARN"] == rule.outputs["arn"]
    assert environment["DISTRIBUTION_ID"] == distribution.id
    assert environment["HEADER_NAME"] == ORIGIN_SECRET_HEADER
    # ModifyRule replaces every condition: the Lambda writes back exactly the paths the rule has.
    paths = next(c["pathPattern"]["values"] for c in rule.inputs["conditions"] if "pathPattern" in c)
    assert json.loads(environment["ROUTED_PATHS"]) == paths
    origins = {o["originId"] for o in distribution.inputs["origins"]}
    assert environment["ORIGIN_ID"] in origins


def test_the_cache_lambda_may_change_that_replication_group_only(plan: Plan) -> None:
    group = by_name(plan, "cache-replication-group")
    assert _service_actions(plan, "cache-auth-token") == {
        "elasticache:ModifyReplicationGroup": [group.outputs["arn"]],
        "elasticache:DescribeReplicationGroups": [group.outputs["arn"]],
    }
    environment = by_name(plan, "rotation-cache-auth-token-function").inputs["environment"]["variables"]
    assert environment == {"REPLICATION_GROUP_ID": group.id}
    assert _service_actions(plan, "admin-token") == {}


def test_pulumi_never_puts_a_rotated_value_back(plan: Plan) -> None:
    for secret in ROTATED:
        assert by_name(plan, f"security-{secret}-version").ignore_changes == ["secretString", "versionStages"]
    assert "authToken" in by_name(plan, "cache-replication-group").ignore_changes
    rule = by_name(plan, "load-balancer-forward-api")
    assert "conditions[0].httpHeader.values" in rule.ignore_changes
    # The ignored paths are by index: they must point at the origin header, wherever it is.
    assert rule.inputs["conditions"][0]["httpHeader"]["httpHeaderName"] == ORIGIN_SECRET_HEADER
    distribution = by_name(plan, "edge-distribution")
    assert distribution.ignore_changes == ["origins[0].customHeaders[0].value"]
    assert distribution.inputs["origins"][0]["customHeaders"][0]["name"] == ORIGIN_SECRET_HEADER


def test_the_code_archive_holds_the_rotation_sources_and_nothing_else() -> None:
    assets = rotation_code().assets
    assert sorted(assets) == sorted(f"rotation/{path.name}" for path in ROTATION_PACKAGE.glob("*.py"))
    assert {"rotation/steps.py", "rotation/cache_token.py", "rotation/origin_secret.py"} <= set(assets)
