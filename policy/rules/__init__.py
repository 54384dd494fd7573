"""The platform's CrossGuard rules, one module per area; each rule is declared once, on its check."""

from __future__ import annotations

import importlib
import pkgutil

from pulumi_policy import Policy

from rules.common import AREAS, Rule


def all_rules() -> list[Rule]:
    """Every rule the modules of this package declare, grouped by area in `AREAS` order.

    A module's rules keep the order they are written in; a new module is found without being listed.
    """
    found: dict[int, Rule] = {}
    for module in pkgutil.iter_modules(__path__):
        for value in vars(importlib.import_module(f"{__name__}.{module.name}")).values():
            if isinstance(value, Rule):
                found.setdefault(id(value), value)
    return sorted(found.values(), key=lambda rule: AREAS.index(rule.area))


def all_policies() -> list[Policy]:
    return [rule.policy() for rule in all_rules()]
