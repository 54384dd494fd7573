"""What a policy check found, and how it reads: text for a terminal, Markdown for the README, JSON for tools."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pulumi.runtime.proto import analyzer_pb2

from platformctl.policy.model import LEVELS, RuleInfo, Violation

SEVERITY_ORDER = ("critical", "high", "medium", "low", "unspecified")


@dataclass
class PolicyReport:
    stack: str
    rules: list[RuleInfo]
    resources: int  # custom (cloud) resources checked
    violations: list[Violation] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)
    components: int = 0  # component resources (and the stack) checked too: the pack sees every registration

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement_level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement_level != "mandatory"]

    def summary(self) -> str:
        return (
            f"policy: stack={self.stack} rules={len(self.rules)} resources={self.resources} "
            f"components={self.components} mandatory={len(self.mandatory)} advisory={len(self.advisory)}"
        )

    def text(self) -> list[str]:
        """The violations grouped by severity, then rule, each rule with its remediation; the summary last."""
        remediation = {rule.name: rule.remediation for rule in self.rules}
        lines = []
        if self.violations:
            lines.append(
                f"Policy violations of {self.stack}: {len(self.mandatory)} mandatory, {len(self.advisory)} advisory"
                " (by severity, then rule)"
            )
        current_severity, current_rule = "", ""
        for violation in self.violations:
            if violation.severity != current_severity:
                current_severity, current_rule = violation.severity, ""
                lines.append(f"{current_severity.upper()} severity")
            if violation.rule != current_rule:
                current_rule = violation.rule
                level = self.levels.get(violation.rule, violation.enforcement_level)
                lines.append(f"  {violation.rule} [{level}]")
                lines.append(f"    fix: {remediation.get(violation.rule, '')}")
            lines.append(f"    - {violation.message}")
        lines.append(self.summary())
        return lines


def violations(diagnostics: list[tuple[analyzer_pb2.AnalyzeDiagnostic, str]], rules: list[RuleInfo]) -> list[Violation]:
    """The pack's diagnostics as violations (each with its rule's severity), most severe first."""
    severity = {rule.name: rule.severity for rule in rules}
    found = []
    for diagnostic, analyzed_urn in diagnostics:
        message = diagnostic.message
        if message.startswith(diagnostic.description + "\n"):
            message = message[len(diagnostic.description) + 1 :]
        found.append(
            Violation(
                rule=diagnostic.policyName,
                urn=diagnostic.urn or analyzed_urn,
                enforcement_level=LEVELS.get(diagnostic.enforcementLevel, "advisory"),
                message=message,
                severity=severity.get(diagnostic.policyName, "unspecified"),
            )
        )
    order = {name: index for index, name in enumerate(SEVERITY_ORDER)}
    return sorted(found, key=lambda v: (order.get(v.severity, 9), v.rule, v.urn, v.message))


def rules_markdown(rules: list[RuleInfo], levels: Mapping[str, Mapping[str, str]]) -> str:
    """The README's rule table: one row per rule, in the order the pack serves them (grouped by area, in
    the pack's order of areas), with its enforcement per stack config."""
    stacks = sorted(levels)
    header = ["Rule", "Area", "Severity", *stacks, "What it checks", "Fix"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for rule in rules:
        cells = [
            f"`{rule.name}`",
            rule.area,
            rule.severity,
            *(levels[stack].get(rule.name, rule.enforcement_level) for stack in stacks),
            rule.description,
            rule.remediation,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
