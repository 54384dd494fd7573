"""Chaos: fault-injection experiments exist only in stacks whose policy config opts in to them."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule

EXPERIMENT_TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"


@Rule(
    name="fis-templates-opted-in",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="AWS FIS experiment templates (which stop tasks, fail databases over, cut power to cache nodes) exist "
    "only in a stack whose policy config opts in; prod does not by default.",
    seed="seed 000 availability objectives (chaos testing in staging before prod)",
    checks="",
    remediation="Set platform:chaos.enabled to false in Pulumi.STACK.yaml, or, once the experiments have run in "
    "staging and the owners agree, set allowFaultInjection to true for this rule in policy/config/STACK.json.",
    resource_types=(EXPERIMENT_TEMPLATE,),
    config={"allowFaultInjection": {"type": "boolean", "default": False}},
)
def fis_opted_in(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if not config["allowFaultInjection"]:
        report(
            f"{resource.label}: a fault-injection experiment template in a stack whose policy config does not"
            " set allowFaultInjection"
        )
