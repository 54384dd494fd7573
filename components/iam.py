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


def service_trust_policy(service: str, account: Account, source_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """A trust policy letting one AWS service assume a role only for this account's `source_arn` (the
    confused-deputy conditions AWS recommends for service roles)."""
    return policy_document(
        Statement(
            "ServiceAssumesForThisAccount",
            ("sts:AssumeRole",),
            principals={"Service": service},
            conditions={
                "StringEquals": {"aws:SourceAccount": account.account_id},
                "ArnLike": {"aws:SourceArn": source_arn},
            },
        )
    )


def assume_role_policy(service: str) -> str:
    """The trust policy that lets one AWS service assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )
