"""Helpers shared by the Pulumi tests: plan the real program with a given `platform:` config."""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path
from typing import Any

from platformctl.plan import Plan, PlannedResource, run_program
from stack_config.profiles import deep_merge

REPO = Path(__file__).resolve().parent.parent
PROJECT = "platform"

# The smallest valid stack config per environment; tests lay their own values over it.
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "prod": {
        "environment": "prod",
        "edge": {"domain": "shop.example.com", "hostedZone": "example.com"},
        "recovery": {"copyRegion": "us-west-2"},
        "tags": {"owner": "platform-team", "cost-center": "cc-1"},
    },
    "staging": {
        "environment": "staging",
        "edge": {"domain": "staging.shop.example.com", "hostedZone": "example.com"},
        "tags": {"owner": "platform-team", "cost-center": "cc-1"},
    },
}


def config_for(environment: str, **overrides: Any) -> dict[str, Any]:
    return deep_merge(copy.deepcopy(BASE_CONFIG[environment]), overrides)


def plan_with(platform_config: dict[str, Any], stack: str = "test", secret_keys: tuple[str, ...] = ()) -> Plan:
    """Run the project's real `__main__.py` under the offline mocks with this `platform:` config."""
    engine_config = {
        f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in platform_config.items()
    }
    return run_program(
        lambda: runpy.run_path(str(REPO / "__main__.py"), run_name="__main__"),
        project=PROJECT,
        stack=stack,
        config=engine_config,
        secret_keys=[f"{PROJECT}:{key}" for key in secret_keys],
    )


def layer(plan: Plan, component: str) -> Plan:
    """The part of a plan of the real program that one layer owns: the component named `component` and every
    resource beneath it. Tests of one layer read it as the program builds it, with no wiring of their own."""
    roots = {r.urn for r in plan.resources if not r.custom and r.name == component}
    assert len(roots) == 1, f"expected one component named {component}, found {len(roots)}"
    owned = set(roots)
    for resource in plan.resources:  # a parent registers before its children
        if resource.parent in owned:
            owned.add(resource.urn)
    return Plan(plan.stack, plan.project, [r for r in plan.resources if r.urn in owned], plan.outputs)


def by_name(plan: Plan, name: str) -> PlannedResource:
    matches = [resource for resource in plan.resources if resource.name == name]
    assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
    return matches[0]
