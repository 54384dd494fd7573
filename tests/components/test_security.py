"""Security primitives: KMS keys per domain and the app's secrets, as the program registers them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from platformctl.mocks import generated_password
from platformctl.plan import SECRET_MASK, Plan, PlannedResource
from tests.support import by_name, config_for, plan_with

KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
NOTIFICATION_KEY = "key-s3cr3t-notification-9876"


@pytest.fixture(scope="module")
def notification_plan() -> Plan:
    return plan_with(
        config_for("staging", app={"notificationApiKey": NOTIFICATION_KEY}), stack="staging", secret_keys=("app",)
    )


def key_policy(key: PlannedResource) -> list[dict[str, Any]]:
    return json.loads(key.inputs["policy"])["Statement"]  # type: ignore[no-any-return]


def data_key_arn(plan: Plan) -> str:
    return str(plan.outputs["kms_key_arns"]["data"])


def secrets_by_name(plan: Plan) -> dict[str, PlannedResource]:
    return {secret.inputs["name"]: secret for secret in plan.of_type(SECRET)}


def test_one_rotating_key_per_data_domain(prod_plan: Plan) -> None:
    keys = [key for key in prod_plan.of_type(KEY) if key.name.startswith("security-")]
    assert {key.name for key in keys} == {"security-data-key", "security-logs-key", "security-messaging-key"}
    assert all(key.inputs["enableKeyRotation"] is True for key in keys)
    assert all(key.inputs["deletionWindowInDays"] == 30 for key in keys)


def test_key_policies_let_exactly_their_services_use_them(prod_plan: Plan) -> None:
    def services(name: str) -> tuple[set[str], set[str]]:
        principals: set[str] = set()
        via: set[str] = set()
        for statement in key_policy(by_name(prod_plan, f"security-{name}-key")):
            assert all(action != "*" and not action.endswith(":*") for action in statement["Action"])
            principal = statement.get("Principal", {}).get("Service", [])
            principals.update([principal] if isinstance(principal, str) else principal)
            via.update(statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", []))
        return principals, via

    data_principals, data_via = services("data")
    assert data_principals == {"cloudfront.amazonaws.com"}  # reads KMS-encrypted assets through OAC
    assert {service.split(".")[0] for service in data_via} == {"rds", "elasticache", "secretsmanager", "s3", "backup"}
    logs_principals, _ = services("logs")
    assert logs_principals == {"logs.us-east-1.amazonaws.com"}
    messaging_principals, messaging_via = services("messaging")
    assert {"sns.amazonaws.com", "sqs.amazonaws.com"} <= messaging_principals
    assert {service.split(".")[0] for service in messaging_via} == {"sqs", "sns"}


def test_app_secrets_are_encrypted_with_the_data_key(prod_plan: Plan) -> None:
    secrets = secrets_by_name(prod_plan)
    assert set(secrets) == {
        "platform-prod-cache-auth-token",
        "platform-prod-origin-verify",
        "platform-prod-admin-token",
    }
    assert all(secret.inputs["kmsKeyId"] == data_key_arn(prod_plan) for secret in secrets.values())
    assert all(secret.inputs["recoveryWindowInDays"] == 30 for secret in secrets.values())
    # Each secret has one version, whose value is passed as a secret.
    versions = prod_plan.of_type(SECRET_VERSION)
    assert sorted(version.inputs["secretId"] for version in versions) == sorted(s.id for s in secrets.values())
    assert all(version.inputs["secretString"] == SECRET_MASK for version in versions)


def test_generated_secrets_are_long_and_valid_as_redis_auth_tokens(prod_plan: Plan) -> None:
    passwords = prod_plan.of_type(RANDOM_PASSWORD)
    assert len(passwords) == 3
    # Redis/Valkey AUTH tokens: 16 to 128 characters, none of space, quote, `/` or `@`: letters and digits.
    assert all(p.inputs["length"] >= 32 and p.inputs["special"] is False for p in passwords)
    assert all(p.outputs["result"] == SECRET_MASK for p in passwords)


def test_the_plan_never_contains_a_generated_secret_value(prod_plan: Plan) -> None:
    text = json.dumps(prod_plan.to_json())
    passwords = prod_plan.of_type(RANDOM_PASSWORD)
    values = [generated_password(p.name, int(p.inputs["length"])) for p in passwords]
    assert len(values) == 3 and all(len(value) == 64 for value in values)
    assert not any(value in text for value in values)


def test_no_notification_secret_without_a_key(prod_plan: Plan) -> None:
    assert not any("notification" in name for name in secrets_by_name(prod_plan))


def test_the_notification_api_key_is_stored_as_a_secret_and_never_shown(notification_plan: Plan) -> None:
    secret = secrets_by_name(notification_plan)["platform-staging-notification-api-key"]
    assert secret.inputs["kmsKeyId"] == data_key_arn(notification_plan)
    (version,) = [v for v in notification_plan.of_type(SECRET_VERSION) if v.inputs["secretId"] == secret.id]
    assert version.inputs["secretString"] == SECRET_MASK
    assert NOTIFICATION_KEY not in json.dumps(notification_plan.to_json())
    assert "notification-api-key" in notification_plan.outputs["secret_arns"]


def test_a_stack_outside_us_east_1_gets_an_edge_logs_key_there() -> None:
    plan = plan_with(config_for("staging", region="us-west-2"), stack="staging")
    edge_key = by_name(plan, "security-edge-logs-key")
    (edge_provider,) = [p for p in plan.of_type("pulumi:providers:aws") if p.name == "security-us-east-1"]
    assert edge_provider.inputs["region"] == "us-east-1"
    assert edge_key.outputs["arn"].startswith("arn:aws:kms:us-east-1:")
    principals = [s["Principal"] for s in key_policy(edge_key) if "Service" in s.get("Principal", {})]
    assert principals == [{"Service": ["logs.us-east-1.amazonaws.com"]}]
    (waf_logs,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "edge-waf-logs"]
    assert waf_logs.inputs["kmsKeyId"] == edge_key.outputs["arn"]


def test_in_us_east_1_the_edge_uses_the_logs_key(prod_plan: Plan) -> None:
    assert [k.name for k in prod_plan.of_type(KEY) if k.name == "security-edge-logs-key"] == []
    (waf_logs,) = [g for g in prod_plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "edge-waf-logs"]
    assert waf_logs.inputs["kmsKeyId"] == by_name(prod_plan, "security-logs-key").outputs["arn"]
