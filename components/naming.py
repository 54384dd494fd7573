"""Names and tags for every resource, from one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

# The tag AWS Backup's selection matches: every stateful resource of a stack carries it.
BACKUP_TAG = "backup-plan"


@dataclass(frozen=True)
class Naming:
    """A stack's naming scheme: `<project>-<stack>-<part>` names and one tag set."""

    project: str
    stack: str
    environment: str
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def name(self, *parts: str) -> str:
        """A physical name, e.g. `shop-prod-vpc-flow-logs`."""
        return "-".join([self.prefix, *parts])

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
