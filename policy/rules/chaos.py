"""Chaos: fault-injection experiments exist only in stacks whose policy config opts in to them."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, items

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


# FIS quota L-872EC72B: stop conditions per experiment template, 5, not adjustable.
MAX_STOP_CONDITIONS = 5


@Rule(
    name="fis-templates-stop-on-alarms",
    area="availability",
    # Operations, not availability: mandatory in staging too, where the experiments run.
    kind="operations",
    severity=Severity.HIGH,
    summary="Every AWS FIS experiment template stops on CloudWatch alarms (the SLO's fast burn): at least one, at "
    "most FIS's five, and no `none` stop condition.",
    seed="seed 000 availability objectives (chaos testing in staging before prod)",
    checks="",
    remediation="Pass the experiments' stop alarms through components.chaos.chaos_experiments (the API's rollback "
    "alarms and components.slo's fast_burn_alarms per service); drop any stop condition with source `none`.",
    resource_types=(EXPERIMENT_TEMPLATE,),
)
def fis_stops_on_alarms(resource: Resource, config: dict[str, Any], report: Report) -> None:
    conditions = [dict(c) for c in items(resource.get("stopConditions"))]
    alarms = [c for c in conditions if c.get("source") == "aws:cloudwatch:alarm" and c.get("value")]
    if not alarms or len(alarms) != len(conditions):
        report(f"{resource.label}: stops on {len(alarms)} alarm(s) of {len(conditions)} stop condition(s)")
    elif len(alarms) > MAX_STOP_CONDITIONS:
        report(f"{resource.label}: {len(alarms)} stop conditions; FIS allows {MAX_STOP_CONDITIONS} per template")
