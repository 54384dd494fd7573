"""Names: every physical name the stack sets is one AWS accepts for its resource type.

The mocks of an offline plan take any name; AWS refuses a name outside its rules at create time, or
(RDS, ElastiCache) stores it lowercased, so an uppercase name differs from the state on every refresh.
Only names the program sets are checked: a name Pulumi generates is valid by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule

FIFO_SUFFIX = ".fifo"
# ElastiCache identifiers: a letter first, then letters, digits and single hyphens, no trailing hyphen;
# stored lowercased, so only lowercase matches what AWS reports back.
ELASTICACHE_ID = r"[a-z](?:-?[a-z0-9])*"


@dataclass(frozen=True)
class NameRule:
    """Where a type keeps its name and what AWS accepts there."""

    prop: str
    pattern: str
    max_length: int
    allowed: str
    fifo_prop: str | None = None  # a FIFO resource's name ends in `.fifo`, a standard one's does not


NAME_RULES: dict[str, NameRule] = {
    "aws:elasticache/replicationGroup:ReplicationGroup": NameRule(
        "replicationGroupId", ELASTICACHE_ID, 40, "lowercase letters, digits and single hyphens, a letter first"
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": NameRule(
        "name", ELASTICACHE_ID, 255, "lowercase letters, digits and single hyphens, a letter first"
    ),
    "aws:elasticache/parameterGroup:ParameterGroup": NameRule(
        "name", ELASTICACHE_ID, 255, "lowercase letters, digits and single hyphens, a letter first"
    ),
    "aws:sqs/queue:Queue": NameRule(
        "name", r"[A-Za-z0-9_-]+(?:\.fifo)?", 80, "letters, digits, `-` and `_`", fifo_prop="fifoQueue"
    ),
    "aws:sns/topic:Topic": NameRule(
        "name", r"[A-Za-z0-9_-]+(?:\.fifo)?", 256, "letters, digits, `-` and `_`", fifo_prop="fifoTopic"
    ),
    "aws:backup/vault:Vault": NameRule("name", r"[A-Za-z0-9_-]{2,}", 50, "2 or more letters, digits, `-` and `_`"),
    "aws:backup/plan:Plan": NameRule("name", r"[A-Za-z0-9_.-]+", 50, "letters, digits, `-`, `_` and `.`"),
    "aws:backup/selection:Selection": NameRule("name", r"[A-Za-z0-9_.-]+", 50, "letters, digits, `-`, `_` and `.`"),
    "aws:budgets/budget:Budget": NameRule("name", r"[^:\\]+", 100, "any characters but `:` and `\\`"),
    "aws:kms/alias:Alias": NameRule(
        "name",
        r"alias/(?!aws/)[A-Za-z0-9/_-]+",
        256,
        "`alias/` then letters, digits, `/`, `_` and `-`, not `alias/aws/`",
    ),
    "aws:secretsmanager/secret:Secret": NameRule("name", r"[A-Za-z0-9/_+=.@-]+", 512, "letters, digits and `/_+=.@-`"),
}


@Rule(
    name="aws-names-valid",
    area="governance",
    kind="operations",
    severity=Severity.HIGH,
    summary="Names the program sets on ElastiCache, SQS, SNS, AWS Backup, Budgets, KMS aliases and Secrets Manager "
    "secrets keep AWS's length and character rules (a FIFO queue's or topic's name, and only theirs, ends in .fifo).",
    seed="seed 000 system design objectives (Infrastructure as Code for reproducibility and environment parity)",
    checks="",
    remediation="Build names with components.naming.Naming.name(..., max_length=<AWS's limit>): the stack name must "
    "be lowercase letters, digits and single hyphens, and short enough for the longest name (ElastiCache "
    "replication group ids: 40 characters).",
    resource_types=tuple(NAME_RULES),
)
def names_valid(resource: Resource, config: dict[str, Any], report: Report) -> None:
    rule = NAME_RULES[resource.type]
    name = resource.get(rule.prop)
    if name is None:
        return  # auto-named by Pulumi
    name = str(name)
    if len(name) > rule.max_length:
        report(f"{resource.label}: {rule.prop} {name!r} has {len(name)} characters, AWS allows {rule.max_length}")
    if not re.fullmatch(rule.pattern, name):
        report(f"{resource.label}: {rule.prop} {name!r} must be {rule.allowed}")
    if rule.fifo_prop is not None and name.endswith(FIFO_SUFFIX) != (resource.get(rule.fifo_prop) is True):
        report(
            f"{resource.label}: {rule.prop} {name!r} must end in {FIFO_SUFFIX} exactly when {rule.fifo_prop} is true"
        )
