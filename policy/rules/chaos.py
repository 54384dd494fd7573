"""Chaos: fault-injection experiments, and the SSM agent sidecar FIS's task actions need, exist only in stacks whose
policy config opts in to them."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, items

EXPERIMENT_TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
# AWS's SSM agent sidecar for FIS's aws:ecs:task actions: root, writable root, as the FIS guide documents it. The
# pack cannot import components/ecs/fis_agent.py; tests/policy/test_chaos_policy.py holds both copies equal.
FIS_SSM_AGENT = "amazon-ssm-agent"
FIS_SSM_AGENT_REPOSITORY = "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent"
VERSION_TAG = re.compile(r"\d+(\.\d+)+")


def is_fis_agent(container: Any) -> bool:
    """The documented sidecar and nothing dressed as it: its name, AWS's image pinned by a version tag, not
    essential, not privileged. The hardened-container rules leave it to `fis-templates-opted-in`."""
    repository, _, tag = str(container.get("image") or "").partition(":")
    return (
        container.get("name") == FIS_SSM_AGENT
        and repository == FIS_SSM_AGENT_REPOSITORY
        and VERSION_TAG.fullmatch(tag) is not None
        and container.get("essential") is False
        and container.get("privileged") is not True
    )


@Rule(
    name="fis-templates-opted-in",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="AWS FIS experiment templates (which stop tasks, fail databases over, cut power to cache nodes), and "
    "the SSM agent sidecar (root, writable root) FIS's ECS task actions need, exist only in a stack whose policy "
    "config opts in; prod does not by default.",
    seed="seed 000 availability objectives (chaos testing in staging before prod)",
    checks="",
    remediation="Set platform:chaos.enabled to false (or drop database-latency from platform:chaos.experiments, "
    "which adds the sidecar) in Pulumi.STACK.yaml, or, once the experiments have run in "
    "staging and the owners agree, set allowFaultInjection to true for this rule in policy/config/STACK.json.",
    resource_types=(EXPERIMENT_TEMPLATE, TASK_DEFINITION),
    config={"allowFaultInjection": {"type": "boolean", "default": False}},
)
def fis_opted_in(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if config["allowFaultInjection"]:
        return
    if resource.type == EXPERIMENT_TEMPLATE:
        report(
            f"{resource.label}: a fault-injection experiment template in a stack whose policy config does not"
            " set allowFaultInjection"
        )
        return
    containers = [c for c in items(resource.json("containerDefinitions")) if hasattr(c, "get")]
    if any(c.get("name") == FIS_SSM_AGENT for c in containers):
        report(
            f"{resource.label}: the FIS SSM agent sidecar ({FIS_SSM_AGENT}, root, writable root) in a stack whose"
            " policy config does not set allowFaultInjection"
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
