"""Offline policy enforcement: the pack in `policy/` run against an offline plan, as the engine runs it.

`process` starts the pack and drives its analyzer interface, `config` resolves a stack's pack config
against the rules the pack serves, `report` groups the diagnostics into violations and renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platformctl.plan import Plan
from platformctl.policy.config import load_pack_config, resolve_config
from platformctl.policy.model import PolicyError, RuleInfo, Violation
from platformctl.policy.process import PACK_DIR, PolicyPackProcess
from platformctl.policy.report import PolicyReport, rules_markdown, violations


def check_plan(
    plan: Plan,
    *,
    pack_dir: Path = PACK_DIR,
    pack_config: Mapping[str, Any] | None = None,
    stack_config: Mapping[str, str] | None = None,
    pack: PolicyPackProcess | None = None,
) -> PolicyReport:
    """Run the pack over the plan; `pack` reuses a running pack process (tests share one)."""
    owned = pack is None
    process = pack or PolicyPackProcess(pack_dir, project=plan.project, stack=plan.stack, stack_config=stack_config)
    try:
        rules = process.rules()
        levels = process.configure(resolve_config(rules, pack_config or {}))
        diagnostics = process.analyze(plan)
    finally:
        if owned:
            process.close()
    custom = len(plan.custom_resources())
    return PolicyReport(
        plan.stack, rules, custom, violations(diagnostics, rules), levels, components=len(plan.resources) - custom
    )


__all__ = [
    "PACK_DIR",
    "PolicyError",
    "PolicyPackProcess",
    "PolicyReport",
    "RuleInfo",
    "Violation",
    "check_plan",
    "load_pack_config",
    "resolve_config",
    "rules_markdown",
]
