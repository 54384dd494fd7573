"""The pull request's comment for one stack: plan summary, diff against the base, policy, cost and diagram.

One comment per stack, found again on the next push by its marker (`marker(stack)`) and edited in
place by `.github/scripts/upsert_comment.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from platformctl import cost, diagram, diff

# What a reviewer reads first stays open; long sections fold.
FOLD_AFTER_LINES = 30


def marker(stack: str) -> str:
    return f"<!-- platformctl-report:{stack} -->"


def build(
    stack: str,
    *,
    base: Mapping[str, Any] | None,
    head: Mapping[str, Any],
    usage: cost.UsageAssumptions,
    remediation: Mapping[str, str],
    commit: str = "",
    base_usage: cost.UsageAssumptions | None = None,
) -> str:
    """The whole comment. `base` is None when the base branch could not be planned (its section says so).

    Each side is priced with its own commit's usage assumptions (`base_usage`, default `usage`), so a
    change to `cost:usage` shows in the cost change as a change to the infrastructure does.
    """
    at = f" at `{commit[:12]}`" if commit else ""
    sections = [
        marker(stack),
        f"## Offline plan of `{stack}`{at}",
        _plan_summary(head),
        "### Changes against the base branch",
        _diff_section(base, head),
        "### Policy",
        _policy_section(head.get("violations"), remediation),
        "### Cost",
        _cost_section(head, base, usage, base_usage or usage),
        "### Architecture",
        _fold("Diagram (from the plan)", diagram.to_markdown(head)),
        "_Made offline by `platformctl` under Pulumi's mock runtime; where cloud credentials are configured, "
        "the `pulumi preview --policy-pack` job comments beside it._",
    ]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def _plan_summary(head: Mapping[str, Any]) -> str:
    custom = [r for r in head.get("resources", []) if r.get("custom")]
    counts = Counter(r["type"] for r in custom)
    rows = ["| Type | Count |", "| --- | ---: |"] + [f"| `{t}` | {n} |" for t, n in sorted(counts.items())]
    summary = f"{len(custom)} resources of {len(counts)} types, {len(head.get('outputs') or {})} stack outputs."
    return summary + "\n\n" + _fold("Resources by type", "\n".join(rows) + "\n")


def _diff_section(base: Mapping[str, Any] | None, head: Mapping[str, Any]) -> str:
    if base is None:
        return "The base branch could not be planned, so there is nothing to compare against."
    text = diff.render_markdown(diff.diff_plans(base, head))
    first, _, rest = text.partition("\n")
    return first + ("\n\n" + _fold("Resource by resource", rest.strip() + "\n") if rest.strip() else "")


def _policy_section(violations: Sequence[Mapping[str, str]] | None, remediation: Mapping[str, str]) -> str:
    if violations is None:
        return "The policy pack did not run."
    if not violations:
        return ":white_check_mark: No violations."
    lines: list[str] = []
    for level in ("mandatory", "advisory"):
        found = [v for v in violations if v["enforcementLevel"] == level]
        if not found:
            continue
        icon = ":x:" if level == "mandatory" else ":warning:"
        lines.append(f"{icon} **{len(found)} {level}**")
        for rule in sorted({v["rule"] for v in found}):
            lines.append(f"- `{rule}`: fix: {remediation.get(rule, '(see the rule)')}")
            lines += [f"  - {v['message']}" for v in found if v["rule"] == rule]
    return "\n".join(lines)


def _cost_section(
    head: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    usage: cost.UsageAssumptions,
    base_usage: cost.UsageAssumptions,
) -> str:
    try:
        estimate = cost.estimate(head, usage)
        before = cost.estimate(base, base_usage) if base is not None else None
    except cost.CostError as error:
        return f"No estimate: {error}"
    return cost.render_markdown(estimate, before)


def _fold(title: str, body: str) -> str:
    if body.count("\n") <= FOLD_AFTER_LINES and not body.startswith("```"):
        return body
    return f"<details><summary>{title}</summary>\n\n{body}\n</details>"
