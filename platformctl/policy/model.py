"""What the pack and platformctl say to each other: rules as served, violations, the analyzer's enums."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi.runtime.proto import analyzer_pb2

LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
LEVEL_CODES = {name: code for code, name in LEVELS.items()}
SEVERITIES = {
    analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED: "unspecified",
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}


class PolicyError(Exception):
    """The pack cannot run: it did not start, or the pack config does not fit its rules."""


@dataclass(frozen=True)
class RuleInfo:
    """A rule as the pack serves it (GetAnalyzerInfo)."""

    name: str
    description: str
    enforcement_level: str
    severity: str
    remediation: str
    tags: tuple[str, ...]
    config_schema: dict[str, Any]

    @property
    def area(self) -> str:
        return self.tags[0] if self.tags else ""

    def defaults(self) -> dict[str, Any]:
        return {key: value["default"] for key, value in self.config_schema.items() if "default" in value}


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    enforcement_level: str
    message: str
    severity: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "urn": self.urn, "enforcementLevel": self.enforcement_level, "message": self.message}
