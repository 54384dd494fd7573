"""Every rule, through the real analyzer interface: a violating case, a compliant case, its metadata."""

from __future__ import annotations

import pytest
from rules import all_rules  # the pack's own modules (policy/ is on the path, see conftest)
from rules.common import AREAS, Rule

from platformctl.policy import PolicyPackProcess, PolicyReport

RULES: list[Rule] = all_rules()
NAMES = [rule.name for rule in RULES]


def violated(report: PolicyReport, rule: str) -> list[str]:
    """Real violations of `rule` (not "can't run during preview" notices)."""
    return [v.message for v in report.violations if v.rule == rule and "can't run policy" not in v.message]


def test_the_pack_serves_every_rule_with_its_metadata(pack: PolicyPackProcess) -> None:
    served = pack.rules()
    assert sorted(rule.name for rule in served) == sorted(NAMES)
    assert len(served) >= 55
    assert len(set(NAMES)) == len(NAMES)
    for rule in served:
        assert rule.name == rule.name.lower() and " " not in rule.name, rule.name
        assert "Seed: seed " in rule.description, rule.name
        assert rule.remediation, rule.name
        assert rule.severity in {"low", "medium", "high", "critical"}, rule.name
        assert rule.area in AREAS, rule.name
        assert rule.tags[1] in {"security", "availability", "recovery", "operations"}, rule.name
        if rule.tags[1] == "security" and rule.name != "secrets-rotated":
            assert rule.enforcement_level == "mandatory", rule.name


def test_every_rule_has_a_violating_and_a_compliant_case(
    insecure_report: PolicyReport, secure_report: PolicyReport
) -> None:
    """The fixture programs are each rule's cases; a rule neither trips nor passes is a rule without a case."""
    untripped = [name for name in NAMES if not violated(insecure_report, name)]
    tripped_by_secure = sorted({v.rule for v in secure_report.violations})
    assert not untripped, f"rules without a violating case in tests/policy/fixtures.py: {untripped}"
    assert not tripped_by_secure, f"rules without a compliant case: {tripped_by_secure}"


@pytest.mark.parametrize("rule", NAMES)
def test_rule_trips_on_the_insecure_program(rule: str, insecure_report: PolicyReport) -> None:
    assert violated(insecure_report, rule), f"{rule} finds nothing in the insecure program"


@pytest.mark.parametrize("rule", NAMES)
def test_rule_passes_the_secure_program(rule: str, secure_report: PolicyReport) -> None:
    assert not [v.message for v in secure_report.violations if v.rule == rule]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("no-open-ingress", "alb-https (SecurityGroupIngressRule): cidrIpv4 0.0.0.0/0 port 443"),
        ("nat-gateway-per-az", "private-us-east-1b (Subnet) in us-east-1b: egress through nat-us-east-1a"),
        ("only-public-subnets-map-public-ip", "private-us-east-1a (Subnet): a private subnet maps public IPs"),
        ("data-stores-in-isolated-subnets", "db (Cluster): subnet group db-subnets has private subnet"),
        ("iam-wildcard-resources-allowlisted", "grants s3:*, sqs:SendMessage on Resource '*'"),
        ("ecs-no-secrets-in-environment", "container api has DB_PASSWORD in plain environment"),
        ("sqs-redrive-to-dlq", "jobs (Queue): maxReceiveCount 50, at most 5"),
        (
            "s3-block-public-access",
            "assets (Bucket): public access block leaves blockPublicPolicy, restrictPublicBuckets off",
        ),
        ("ecs-autoscaling-min-tasks", "api (Service): minCapacity 1 < 2 (2 AZs)"),
        (
            "ecs-exec-agent-can-write",
            "api (Service): ECS Exec is on but container shell of api-task has a read-only root and no writable "
            "volume at /managed-agents, /var/lib/amazon/ssm, /var/log/amazon/ssm",
        ),
        ("required-alarms-exist", "no Aurora CPU alarm (AWS/RDS CPUUtilization)"),
        ("tiers-span-azs", "isolated subnets span 1 AZ(s), need 2"),
        ("sqs-dlq-retention", "jobs-dlq (Queue): keeps messages 345600s, no longer than its standard source queue"),
        ("aws-names-valid", "cache (ReplicationGroup): replicationGroupId 'Platform_Test_Cache' must be lowercase"),
        ("aurora-audit-logging", "db-parameters (ClusterParameterGroup): neither log_statement ddl nor pgaudit"),
        ("s3-access-logging", "assets (Bucket): no server access logging"),
        ("s3-acls-disabled", "assets (Bucket): object ownership BucketOwnerPreferred keeps ACLs enabled"),
        ("ecs-exec-encrypted", "ecs (Cluster): ECS Exec sessions use no KMS key of their own"),
        ("cloudfront-access-logs", "cdn (Distribution): legacy logging (loggingConfig) writes with an ACL grant"),
        (
            "kms-key-policy-least-privilege",
            "data-key (Key): statement Root grants kms:CreateGrant, kms:CreateAlias to the whole account without "
            "conditions",
        ),
        ("kms-key-policy-least-privilege", "data-key (Key): statement Root lets the whole account use the key"),
        (
            "cloudfront-access-pinned-to-distribution",
            "data-key (Key): statement AnyDistribution admits any CloudFront distribution, not this stack's",
        ),
        (
            "iam-service-trust-confused-deputy",
            "task-role (Role): trust of ecs-tasks.amazonaws.com lacks aws:SourceAccount and aws:SourceArn",
        ),
        (
            "iam-service-trust-confused-deputy",
            "db-proxy-role (Role): trust of rds.amazonaws.com lacks aws:SourceAccount",
        ),
    ],
)
def test_violations_say_what_is_wrong_where(rule: str, expected: str, insecure_report: PolicyReport) -> None:
    messages = violated(insecure_report, rule)
    assert any(expected in message for message in messages), messages


def test_resource_violations_carry_the_resource_urn(insecure_report: PolicyReport) -> None:
    stack_level = {"required-alarms-exist", "budget-exists", "tiers-span-azs"}
    for violation in insecure_report.violations:
        if violation.rule not in stack_level:
            assert violation.urn.startswith("urn:pulumi:test::platform::"), violation
