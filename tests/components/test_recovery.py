"""Recovery and cost: AWS Backup, RPO/RTO outputs, the monthly budget and cost-allocation tags."""

from __future__ import annotations

import json

import pytest

from components.naming import BACKUP_TAG
from platformctl.plan import Plan
from tests.support import by_name, config_for, plan_with

VAULT = "aws:backup/vault:Vault"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


@pytest.fixture(scope="module")
def custom_plan() -> Plan:
    """Staging with its own schedule, retention, thresholds and an account-wide budget."""
    return plan_with(
        config_for(
            "staging",
            recovery={"backupSchedule": "cron(30 1/6 * * ? *)", "backupRetentionDays": 14, "rpoMinutes": 30},
            budget={"monthlyUsd": 1234.5, "alertThresholdsPercent": [50, 90, 120], "scopeToStack": False},
        )
    )


def rule(plan: Plan) -> dict:
    (only,) = by_name(plan, "recovery-plan").inputs["rules"]
    return dict(only)


def test_vault_is_encrypted_with_the_data_key(prod_plan: Plan) -> None:
    vault = by_name(prod_plan, "recovery-vault")
    assert vault.inputs["kmsKeyArn"] == by_name(prod_plan, "security-data-key").outputs["arn"]
    assert vault.inputs["name"] == "platform-prod-backup"


def test_plan_runs_daily_with_the_configured_retention(prod_plan: Plan, staging_plan: Plan, custom_plan: Plan) -> None:
    prod = rule(prod_plan)
    assert prod["schedule"] == "cron(0 5 * * ? *)" and prod["targetVaultName"] == "platform-prod-backup"
    assert prod["lifecycle"] == {"deleteAfter": 35}
    assert prod["startWindow"] == 60 and prod["completionWindow"] > prod["startWindow"]
    assert rule(staging_plan)["lifecycle"] == {"deleteAfter": 7}
    custom = rule(custom_plan)
    assert custom["schedule"] == "cron(30 1/6 * * ? *)" and custom["lifecycle"] == {"deleteAfter": 14}


def test_backups_are_copied_to_the_copy_region_only_in_prod(prod_plan: Plan, staging_plan: Plan) -> None:
    copy_vault = by_name(prod_plan, "recovery-copy-vault")
    # The mocks answer in the region of the resource's provider: the copy vault lives in us-west-2.
    assert copy_vault.outputs["arn"].startswith("arn:aws:backup:us-west-2:")
    assert by_name(prod_plan, "recovery-vault").outputs["arn"].startswith("arn:aws:backup:us-east-1:")
    copy_key = by_name(prod_plan, "recovery-copy-key")
    assert copy_vault.inputs["kmsKeyArn"] == copy_key.outputs["arn"]
    assert copy_key.outputs["arn"].startswith("arn:aws:kms:us-west-2:")
    assert copy_key.inputs["enableKeyRotation"] is True
    (copy,) = rule(prod_plan)["copyActions"]
    assert copy == {"destinationVaultArn": copy_vault.outputs["arn"], "lifecycle": {"deleteAfter": 35}}
    provider = by_name(prod_plan, "recovery-us-west-2")
    assert provider.inputs["region"] == "us-west-2"
    assert json.loads(provider.inputs["defaultTags"])["tags"]["cost-center"] == "cc-1"
    assert "copyActions" not in rule(staging_plan)
    assert [vault.name for vault in staging_plan.of_type(VAULT)] == ["recovery-vault"]
    assert not any(r.name.startswith("recovery-copy") for r in staging_plan.resources)


def test_the_copy_key_lets_backup_and_rds_encrypt_copies_in_the_copy_region(prod_plan: Plan) -> None:
    # Backup encrypts the copies it fully manages (S3) itself; an Aurora recovery point is an RDS cluster
    # snapshot that RDS copies into the region with the copy vault's key, calling KMS through RDS there.
    copy_key = by_name(prod_plan, "recovery-copy-key")
    statements = {s["Sid"]: s for s in json.loads(copy_key.inputs["policy"])["Statement"]}
    through = {
        "kms:ViaService": ["backup.us-west-2.amazonaws.com", "rds.us-west-2.amazonaws.com"],
        "kms:CallerAccount": "123456789012",
    }
    assert statements["AccountUsesThroughServices"]["Condition"] == {"StringEquals": through}
    grants = statements["AccountGrantsToServiceResources"]
    assert grants["Action"] == ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    assert grants["Condition"] == {"StringEquals": through, "Bool": {"kms:GrantIsForAWSResource": "true"}}
    # The account administers the key (no lockout) but creates grants only through those services.
    assert "kms:PutKeyPolicy" in statements["AccountAdministers"]["Action"]
    assert not any(a.startswith("kms:Create") for a in statements["AccountAdministers"]["Action"])


def test_selection_takes_every_resource_tagged_for_the_stack(prod_plan: Plan) -> None:
    selection = by_name(prod_plan, "recovery-selection")
    assert selection.inputs["planId"] == by_name(prod_plan, "recovery-plan").id
    assert selection.inputs["selectionTags"] == [{"type": "STRINGEQUALS", "key": BACKUP_TAG, "value": "platform-prod"}]
    tagged = {r.name for r in prod_plan.custom_resources() if (r.inputs.get("tags") or {}).get(BACKUP_TAG)}
    assert {"database-cluster", "storage-assets"} <= tagged
    role = by_name(prod_plan, "recovery-role")
    assert selection.inputs["iamRoleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole"]
    # AWS Backup documents no confused-deputy keys for its role: checked whenever it sends one.
    assert trust["Condition"] == {"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}}
    attached = {a.inputs["policyArn"] for a in prod_plan.of_type(ATTACHMENT) if a.inputs["role"] == role.id}
    assert attached == {
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
    }


def test_rpo_and_rto_are_stack_outputs(prod_plan: Plan, staging_plan: Plan, custom_plan: Plan) -> None:
    assert (prod_plan.outputs["rpo_minutes"], prod_plan.outputs["rto_minutes"]) == (15, 60)
    assert (staging_plan.outputs["rpo_minutes"], staging_plan.outputs["rto_minutes"]) == (60, 480)
    assert custom_plan.outputs["rpo_minutes"] == 30
    assert prod_plan.outputs["backup_copy_vault_arn"].startswith("arn:aws:backup:us-west-2:")
    assert staging_plan.outputs.get("backup_copy_vault_arn") is None


def test_monthly_cost_budget_alerts_the_alerts_topic_on_actual_and_forecast(prod_plan: Plan) -> None:
    budget = by_name(prod_plan, "budget-monthly")
    assert (budget.inputs["budgetType"], budget.inputs["timeUnit"]) == ("COST", "MONTHLY")
    assert (budget.inputs["limitAmount"], budget.inputs["limitUnit"]) == ("5000.0", "USD")
    alerts = by_name(prod_plan, "messaging-alerts").outputs["arn"]
    notifications = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
    assert notifications == {("ACTUAL", 80), ("FORECASTED", 80), ("ACTUAL", 100), ("FORECASTED", 100)}
    for notification in budget.inputs["notifications"]:
        assert notification["subscriberSnsTopicArns"] == [alerts]
        assert (notification["thresholdType"], notification["comparisonOperator"]) == ("PERCENTAGE", "GREATER_THAN")
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": ["user:stack$prod"]}]


def test_budget_follows_the_config(custom_plan: Plan) -> None:
    budget = by_name(custom_plan, "budget-monthly")
    assert budget.inputs["limitAmount"] == "1234.5"
    assert sorted(n["threshold"] for n in budget.inputs["notifications"]) == [50, 50, 90, 90, 120, 120]
    assert "costFilters" not in budget.inputs


def test_cost_allocation_tags_reach_every_resource_through_the_provider(prod_plan: Plan) -> None:
    provider = by_name(prod_plan, "aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert {key: tags[key] for key in ("project", "environment", "owner", "cost-center")} == {
        "project": "platform",
        "environment": "prod",
        "owner": "platform-team",
        "cost-center": "cc-1",
    }
    # A second region's provider (the backup copy's) carries the same tags.
    for provider in prod_plan.of_type("pulumi:providers:aws"):
        assert json.loads(provider.inputs["defaultTags"])["tags"] == tags, provider.name
