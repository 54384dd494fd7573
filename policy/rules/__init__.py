"""The platform's CrossGuard rules, one module per area."""

from __future__ import annotations

from pulumi_policy import Policy

from rules import (
    availability,
    edge,
    encryption,
    governance,
    identity,
    messaging,
    names,
    network,
    observability,
    recovery,
    transit,
)
from rules.common import Rule, build

AREAS = (encryption, transit, network, edge, identity, availability, recovery, messaging, observability, governance)
# Naming rules span areas; they report under governance.
AREAS += (names,)


def all_rules() -> list[Rule]:
    return [rule for area in AREAS for rule, _ in area.RULES]


def all_policies() -> list[Policy]:
    return [build(rule, check) for area in AREAS for rule, check in area.RULES]
