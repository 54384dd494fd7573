"""Names and tags for every resource, from one place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

# The tag AWS Backup's selection matches: every stateful resource of a stack carries it.
BACKUP_TAG = "backup-plan"
# What every physical name must be made of: S3 buckets, ECR repositories and RDS and ElastiCache
# identifiers take lowercase letters, digits and single hyphens only, starting with a letter (AWS
# stores RDS and ElastiCache identifiers lowercased, so an uppercase name would differ on every
# refresh). Pulumi allows uppercase, `_` and `.` in project and stack names; AWS does not here.
NAME_PART = re.compile(r"[a-z](?:-?[a-z0-9])*")


@dataclass(frozen=True)
class Naming:
    """A stack's naming scheme: `<project>-<stack>-<part>` names and one tag set."""

    project: str
    stack: str
    environment: str
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label, value in (("project", self.project), ("stack", self.stack)):
            if not NAME_PART.fullmatch(value):
                raise ValueError(
                    f"{label} name {value!r} cannot prefix AWS resource names: use lowercase letters, digits"
                    " and single hyphens, starting with a letter and not ending with a hyphen"
                )

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def name(self, *parts: str, max_length: int | None = None) -> str:
        """A physical name, e.g. `shop-prod-vpc-flow-logs`; longer than `max_length` (AWS's limit for
        the resource) is an error naming the limit, never a name AWS would refuse at `pulumi up`."""
        name = "-".join([self.prefix, *parts])
        if max_length is not None and len(name) > max_length:
            raise ValueError(
                f"the name {name!r} is {len(name)} characters; AWS allows {max_length} here:"
                " use a shorter project or stack name"
            )
        return name

    def log_group(self, *parts: str) -> str:
        """A CloudWatch log group name, e.g. `/shop/prod/vpc/flow-logs`."""
        return "/" + "/".join([self.project, self.stack, *parts])

    @property
    def base_tags(self) -> dict[str, str]:
        """The cost-allocation tags every resource carries (also the provider's default tags)."""
        return {
            "project": self.project,
            "environment": self.environment,
            "stack": self.stack,
            "managed-by": "pulumi",
            **self.extra_tags,
        }

    def tags(self, *parts: str) -> dict[str, str]:
        """Tags for one resource: the base tags and a `Name`."""
        return {**self.base_tags, "Name": self.name(*parts)}

    def stateful_tags(self, *parts: str) -> dict[str, str]:
        """Tags for a resource holding state: AWS Backup's plan selects what carries `BACKUP_TAG`."""
        return {**self.tags(*parts), BACKUP_TAG: self.prefix}


def child_options(parent: pulumi.Resource, **kwargs: object) -> pulumi.ResourceOptions:
    """Options for a component's child: always parented to the component."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LogPolicy:
    """How every log group of the stack is kept: `observability.logRetentionDays`, encrypted with the logs key."""

    retention_days: int
    key_arn: pulumi.Input[str]
