"""IAM policy documents built from typed statements and resource ARNs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Account:
    """Where the stack runs: account id, partition and region, for ARNs and service principals."""

    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: str

    @classmethod
    def lookup(cls, region: str, opts: pulumi.InvokeOutputOptions | None = None) -> Account:
        identity = aws.get_caller_identity_output(opts=opts)
        partition = aws.get_partition_output(opts=opts)
        return cls(identity.account_id, partition.partition, region)

    @property
    def root_arn(self) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:iam::{1}:root", self.partition, self.account_id)

    def arn(self, service: str, resource: str, region: bool = True) -> pulumi.Output[str]:
        """`arn:<partition>:<service>:<region>:<account>:<resource>`."""
        return pulumi.Output.format(
            "arn:{0}:{1}:{2}:{3}:{4}",
            self.partition,
            service,
            self.region if region else "",
            self.account_id,
            resource,
        )

    def managed_policy_arn(self, name: str) -> pulumi.Output[str]:
        """An AWS managed policy (`service-role/...` or a bare name) in this stack's partition."""
        return pulumi.Output.format("arn:{0}:iam::aws:policy/{1}", self.partition, name)

    def service_principal(self, service: str) -> str:
        """Regional principals (CloudWatch Logs) differ from global ones (`sqs.amazonaws.com`)."""
        if service == "logs":
            return f"logs.{self.region}.amazonaws.com"
        return f"{service}.amazonaws.com"


Principal = Mapping[Literal["AWS", "Service", "Federated"], Any]
Condition = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Statement:
    """One policy statement; actions are always named, never `*` or `service:*`."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]] = ()
    principals: Principal | None = None
    conditions: Condition = field(default_factory=dict)
    effect: Literal["Allow", "Deny"] = "Allow"

    def __post_init__(self) -> None:
        for action in self.actions:
            if action == "*" or action.endswith(":*"):
                raise ValueError(f"statement {self.sid}: name the actions instead of {action!r}")

    def render(self) -> pulumi.Output[dict[str, Any]]:
        body: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect, "Action": list(self.actions)}
        if self.principals is not None:
            body["Principal"] = dict(self.principals)
        if self.resources:
            body["Resource"] = list(self.resources)
        if self.conditions:
            body["Condition"] = {op: dict(values) for op, values in self.conditions.items()}
        return pulumi.Output.from_input(body)


def policy_document(*statements: Statement) -> pulumi.Output[str]:
    """A policy document's JSON, resolved once every ARN in it is known."""
    rendered = [statement.render() for statement in statements]
    return pulumi.Output.all(*rendered).apply(
        lambda bodies: json.dumps({"Version": "2012-10-17", "Statement": bodies}, sort_keys=True)
    )


# The `aws:SourceArn` AWS documents each service setting when it assumes a role or calls KMS for a resource of
# this account: service -> (ARN service, resource pattern, regional ARN). Sources: the confused-deputy sections
# of the VPC Flow Logs, ECS (task IAM role), RDS (enhanced monitoring), CloudWatch, SNS, EventBridge and Budgets
# guides.
SOURCE_ARNS: dict[str, tuple[str, str, bool]] = {
    "vpc-flow-logs": ("ec2", "vpc-flow-log/*", True),
    "ecs-tasks": ("ecs", "*", True),
    "monitoring.rds": ("rds", "db:*", True),
    "cloudwatch": ("cloudwatch", "alarm:*", True),
    "sns": ("sns", "*", True),
    "events": ("events", "rule/*", True),
    "budgets": ("budgets", "*", False),
    "fis": ("fis", "experiment/*", True),
    # Systems Manager's hybrid activations: the managed-instance role of the FIS agent sidecar (ecs/fis_agent.py).
    "ssm": ("ssm", "*", True),
}
# Services whose roles this stack creates but whose guides show no confused-deputy keys in the trust policy (AWS
# Backup, RDS Proxy, the ECS infrastructure role): `aws:SourceAccount` is checked whenever the service sends it
# (`...IfExists`), so the role keeps working if it does not and is guarded as soon as it does.
SOURCE_ACCOUNT_IF_SENT = frozenset({"backup", "rds", "ecs"})
# Services that name the calling account but no resource of theirs (SQS calling KMS for a queue it encrypts).
SOURCE_ACCOUNT_ONLY = frozenset({"sqs"})
TRUSTED_SERVICES = frozenset(SOURCE_ARNS) | SOURCE_ACCOUNT_IF_SENT | SOURCE_ACCOUNT_ONLY


def confused_deputy_conditions(service: str, account: Account) -> Condition:
    """The conditions that keep `service` acting for this account only: `aws:SourceAccount`, and `aws:SourceArn`
    (any resource of the service in this account) where the service sets it."""
    if service not in TRUSTED_SERVICES:
        raise ValueError(
            f"service {service!r}: no confused-deputy conditions known; allowed: {sorted(TRUSTED_SERVICES)}"
        )
    if service in SOURCE_ACCOUNT_IF_SENT:
        return {"StringEqualsIfExists": {"aws:SourceAccount": account.account_id}}
    if service in SOURCE_ACCOUNT_ONLY:
        return {"StringEquals": {"aws:SourceAccount": account.account_id}}
    arn_service, resource, regional = SOURCE_ARNS[service]
    return {
        "StringEquals": {"aws:SourceAccount": account.account_id},
        "ArnLike": {"aws:SourceArn": account.arn(arn_service, resource, region=regional)},
    }


def service_trust_policy(service: str, account: Account) -> pulumi.Output[str]:
    """The trust policy letting the AWS service `service` (`ecs-tasks`, `backup`...) assume a role, for this
    account's resources only (the confused-deputy conditions AWS recommends for service roles)."""
    return policy_document(
        Statement(
            "ServiceAssumesForThisAccount",
            ("sts:AssumeRole",),
            principals={"Service": account.service_principal(service)},
            conditions=confused_deputy_conditions(service, account),
        )
    )
