"""Security primitives: KMS keys per domain and the app's secrets, as the program registers them."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.iam import Account
from components.naming import Naming
from components.security import DATA_DOMAIN, Security, SecurityArgs, key_statements
from platformctl.mocks import generated_password
from platformctl.plan import SECRET_MASK, Plan, PlannedResource, run_program
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


KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
ACCOUNT = "123456789012"
ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


def key_policy(key: PlannedResource, plan: Plan | None = None) -> list[dict[str, Any]]:
    """The key's policy: its own, or the KeyPolicy written for it (the data key's, once the edge exists)."""
    text = key.inputs.get("policy")
    if text is None and plan is not None:
        (separate,) = [p for p in plan.of_type(KEY_POLICY) if p.inputs["keyId"] == key.outputs["keyId"]]
        text = separate.inputs["policy"]
    assert isinstance(text, str), f"{key.name} has no key policy"
    return json.loads(text)["Statement"]  # type: ignore[no-any-return]


def by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in statements}


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
        for statement in key_policy(by_name(prod_plan, f"security-{name}-key"), prod_plan):
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
    assert principals == [{"Service": "logs.us-east-1.amazonaws.com"}]
    (waf_logs,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "edge-waf-logs"]
    assert waf_logs.inputs["kmsKeyId"] == edge_key.outputs["arn"]


def test_in_us_east_1_the_edge_uses_the_logs_key(prod_plan: Plan) -> None:
    assert [k.name for k in prod_plan.of_type(KEY) if k.name == "security-edge-logs-key"] == []
    (waf_logs,) = [g for g in prod_plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "edge-waf-logs"]
    assert waf_logs.inputs["kmsKeyId"] == by_name(prod_plan, "security-logs-key").outputs["arn"]


def test_the_account_administers_every_key_but_creates_no_grant_or_alias_unconditionally(prod_plan: Plan) -> None:
    for name in ("data", "logs", "messaging"):
        statements = by_sid(key_policy(by_name(prod_plan, f"security-{name}-key"), prod_plan))
        admin = statements["AccountAdministers"]
        # The lockout safety check: the account can always replace the policy.
        assert admin["Principal"] == ROOT and "kms:PutKeyPolicy" in admin["Action"] and "Condition" not in admin
        assert not any(action.startswith("kms:Create") or "*" in action for action in admin["Action"]), name
        unconditioned = [s for s in statements.values() if s["Principal"] == ROOT and "Condition" not in s]
        assert unconditioned == [admin], name


def test_the_account_uses_the_data_key_only_through_its_services(prod_plan: Plan) -> None:
    statements = by_sid(key_policy(by_name(prod_plan, "security-data-key"), prod_plan))
    use = statements["AccountUsesThroughServices"]["Condition"]["StringEquals"]
    assert use["kms:CallerAccount"] == ACCOUNT
    grants = statements["AccountGrantsToServiceResources"]
    assert grants["Action"] == ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    assert grants["Condition"]["StringEquals"] == use


def test_the_data_key_admits_only_the_stacks_distribution_through_a_separate_policy(prod_plan: Plan) -> None:
    key = by_name(prod_plan, "security-data-key")
    # The key writes no policy and ignores the one it has: the KeyPolicy is its one owner.
    assert "policy" not in key.inputs and "policy" in key.ignore_changes
    assert by_name(prod_plan, "security-data-key-policy").inputs["keyId"] == key.outputs["keyId"]
    cloudfront = by_sid(key_policy(key, prod_plan))["DistributionDecrypts"]
    assert cloudfront["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert cloudfront["Action"] == ["kms:Decrypt"]
    distribution = by_name(prod_plan, "edge-distribution").outputs["arn"]
    assert cloudfront["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution}}


def test_alarm_and_budget_publishers_use_the_messaging_key_only_for_this_accounts_resources(prod_plan: Plan) -> None:
    statements = by_sid(key_policy(by_name(prod_plan, "security-messaging-key")))
    alarms = statements["CloudwatchEncrypts"]["Condition"]
    assert alarms["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert alarms["ArnLike"] == {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"}
    assert statements["BudgetsEncrypts"]["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:budgets::{ACCOUNT}:*"}
    assert all(
        "aws:SourceAccount" in s["Condition"]["StringEquals"]
        for s in statements.values()
        if "Service" in s["Principal"]
    )


def test_the_data_key_admits_one_distribution_and_never_any() -> None:
    def program() -> None:
        account = Account(pulumi.Output.from_input(ACCOUNT), pulumi.Output.from_input("aws"), "us-east-1")
        security = Security("security", SecurityArgs(Naming("shop", "qa", "staging"), account))
        with pytest.raises(ValueError, match="key data: CloudFront is admitted only with its distribution's ARN"):
            key_statements(DATA_DOMAIN, account)
        security.admit_distribution(f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1")
        with pytest.raises(ValueError, match="the data key already admits a distribution"):
            security.admit_distribution(f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2")

    plan = run_program(program, project="platform", stack="test")
    assert [p.name for p in plan.of_type(KEY_POLICY)] == ["security-data-key-policy"]
