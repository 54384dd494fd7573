"""Governance: cost-allocation tags on everything taggable, and a budget that alerts someone."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, Stack, StackReport, items

BUDGET = "aws:budgets/budget:Budget"
REQUIRED_TAGS = ["project", "environment", "stack", "managed-by", "owner", "cost-center"]
# Types that carry no tags although they are AWS resources (associations, rules, attachments...).
UNTAGGED_SUFFIXES = (
    "Association",
    "Attachment",
    "Policy",
    "Rule",
    "Route",
    "Alias",
    "Version",
    "Configuration",
    "Block",
    "Selection",
    "Subscription",
    "Rotation",
    "Target",
    "Listener",
    "DefaultSecurityGroup",
)
# Taggable types the rule checks even when the program sets no `tags` at all.
ALWAYS_TAGGABLE = (
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/natGateway:NatGateway",
    "aws:kms/key:Key",
    "aws:rds/cluster:Cluster",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:sqs/queue:Queue",
    "aws:sns/topic:Topic",
    "aws:s3/bucket:Bucket",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:ecs/service:Service",
    "aws:ecs/cluster:Cluster",
    "aws:cloudfront/distribution:Distribution",
    "aws:secretsmanager/secret:Secret",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:backup/vault:Vault",
)


def _taggable(resource: Resource) -> bool:
    if not resource.type.startswith("aws:"):
        return False
    if resource.type in ALWAYS_TAGGABLE:
        return True
    if resource.type.rsplit(":", 1)[-1].endswith(UNTAGGED_SUFFIXES):
        return False
    return "tags" in resource.props


@Rule(
    name="required-tags",
    area="governance",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="Every taggable resource carries the cost-allocation tags (its own tags plus the provider's default tags).",
    seed="seed 000 cost optimization objectives, seed 004 secure and cost-aware",
    checks="",
    remediation="Keep the aws.Provider's default_tags=naming.base_tags in __main__.py and set platform:tags (owner, "
    "cost-center) in Pulumi.STACK.yaml; resources on another provider need tags=naming.tags(...). The list is "
    "the requiredTags knob of policy/config/STACK.json.",
    resource_types=(),
    config={"requiredTags": {"type": "array", "items": {"type": "string"}, "default": REQUIRED_TAGS}},
)
def required_tags(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if not _taggable(resource):
        return
    tags = resource.tags()
    missing = [tag for tag in config["requiredTags"] if not tags.get(tag)]
    if missing:
        report(f"{resource.label}: missing tags {', '.join(missing)}")


@Rule(
    name="budget-exists",
    area="governance",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="The stack has a cost budget whose notifications reach someone.",
    seed="seed 000 cost optimization objectives, seed 004 cost-aware",
    checks="",
    remediation="Create an aws.budgets.Budget (budget_type COST, limit from platform:budget.monthlyUsd) with "
    "notifications to the alert emails or the alerts topic in the observability layer.",
    stack=True,
)
def budget(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    budgets = stack.of(BUDGET)
    if not budgets:
        report("no aws:budgets/budget:Budget in the stack", None)

    def check(resource: Resource) -> None:
        notified = [
            n
            for n in items(resource.get("notifications"))
            if items(n.get("subscriberEmailAddresses")) or items(n.get("subscriberSnsTopicArns"))
        ]
        if not notified:
            report(f"{resource.label}: no notification with a subscriber", resource.urn)

    stack.check_each(budgets, check)
