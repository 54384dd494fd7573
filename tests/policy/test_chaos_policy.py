"""fis-templates-opted-in through the real analyzer: fault experiments, and the FIS SSM agent sidecar, only where the
stack's policy config allows."""

from __future__ import annotations

import json

import pytest
from rules.chaos import (  # the pack's own module (policy/ is on the path, see conftest)
    EXPERIMENT_TEMPLATE,
    FIS_SSM_AGENT,
    FIS_SSM_AGENT_REPOSITORY,
    TASK_DEFINITION,
    VERSION_TAG,
)

from components.ecs.fis_agent import FIS_AGENT, FIS_AGENT_IMAGE
from platformctl.plan import PlannedResource
from platformctl.policy import PolicyPackProcess, check_plan
from stack_config.schema import DEFAULT_CHAOS_EXPERIMENTS
from tests.policy.conftest import stack_config_file
from tests.policy.test_pack import hand_plan, resource
from tests.support import config_for, plan_with

RULE = "fis-templates-opted-in"


def template() -> PlannedResource:
    return resource(
        EXPERIMENT_TEMPLATE, "stop-tasks", {"description": "stop tasks", "roleArn": "arn:aws:iam::1:role/f"}
    )


def test_staging_allows_fis_templates_and_prod_and_the_default_refuse_them(pack: PolicyPackProcess) -> None:
    plan = hand_plan(template())
    for config, level in ((stack_config_file("prod"), "mandatory"), ({}, "mandatory")):
        found = [v for v in check_plan(plan, pack=pack, pack_config=config).violations if v.rule == RULE]
        assert [v.enforcement_level for v in found] == [level], config.get(RULE)
        assert "stop-tasks" in found[0].message and "allowFaultInjection" in found[0].message
    staging = check_plan(plan, pack=pack, pack_config=stack_config_file("staging"))
    assert not [v for v in staging.violations if v.rule == RULE]


def test_a_prod_stack_that_enables_chaos_fails_policy_until_its_config_opts_in(pack: PolicyPackProcess) -> None:
    plan = plan_with(config_for("prod", chaos={"enabled": True}), stack="prod")
    assert len(plan.of_type(EXPERIMENT_TEMPLATE)) == len(DEFAULT_CHAOS_EXPERIMENTS)
    prod = stack_config_file("prod")
    refused = check_plan(plan, pack=pack, pack_config=prod).mandatory
    assert sorted({v.rule for v in refused}) == ["fis-templates-opted-in"]
    opted_in = {**prod, "fis-templates-opted-in": {**prod["fis-templates-opted-in"], "allowFaultInjection": True}}
    assert not check_plan(plan, pack=pack, pack_config=opted_in).mandatory


def test_a_template_nothing_stops_or_stopped_past_fis_quota_is_refused(pack: PolicyPackProcess) -> None:
    rule = "fis-templates-stop-on-alarms"
    alarm = {"source": "aws:cloudwatch:alarm", "value": "arn:aws:cloudwatch:us-east-1:1:alarm:a"}
    cases = {
        "unstoppable": [{"source": "none"}],
        "half": [alarm, {"source": "none"}],
        "six": [alarm] * 6,
        "stoppable": [alarm],
    }
    plan = hand_plan(
        *[
            resource(EXPERIMENT_TEMPLATE, name, {"roleArn": "arn:aws:iam::1:role/f", "stopConditions": stops})
            for name, stops in cases.items()
        ]
    )
    found = [v.message for v in check_plan(plan, pack=pack, pack_config={}).violations if v.rule == rule]
    assert sorted(m.split(" ")[0] for m in found) == ["half", "six", "unstoppable"]
    assert any("FIS allows 5" in m for m in found)


def test_staging_experiments_stop_on_the_fast_burn_within_fis_quota(pack: PolicyPackProcess) -> None:
    plan = plan_with(config_for("staging"), stack="staging")
    report = check_plan(plan, pack=pack, pack_config=stack_config_file("staging"))
    assert not [v for v in report.violations if v.rule == "fis-templates-stop-on-alarms"]


def test_staging_with_database_latency_opted_in_passes_the_mandatory_rules(pack: PolicyPackProcess) -> None:
    config = config_for(
        "staging", chaos={"experiments": ["database-latency"]}, services={"api": {"executeCommand": False}}
    )
    report = check_plan(plan_with(config, stack="staging"), pack=pack, pack_config=stack_config_file("staging"))
    assert not report.mandatory, [(v.rule, v.message) for v in report.mandatory]


# --- the FIS SSM agent sidecar (root, writable root): admitted by name, only where the opt-in applies ------------

LATENCY = {"experiments": ["database-latency"]}
NO_EXEC = {"api": {"executeCommand": False}}
HARDENED = ("ecs-container-non-root", "ecs-read-only-root-filesystem")


def test_the_pack_names_the_sidecar_as_the_component_does() -> None:
    assert FIS_AGENT == FIS_SSM_AGENT
    repository, tag = FIS_AGENT_IMAGE.split(":")
    assert repository == FIS_SSM_AGENT_REPOSITORY and VERSION_TAG.fullmatch(tag)


def test_a_prod_stack_with_the_sidecar_fails_policy_until_its_config_opts_in(pack: PolicyPackProcess) -> None:
    plan = plan_with(config_for("prod", chaos={"enabled": True, **LATENCY}, services=NO_EXEC), stack="prod")
    prod = stack_config_file("prod")
    refused = check_plan(plan, pack=pack, pack_config=prod).mandatory
    assert sorted({v.rule for v in refused}) == [RULE]
    sidecar = [v.message for v in refused if v.message.startswith("api-task")]
    assert len(sidecar) == 1 and FIS_SSM_AGENT in sidecar[0] and "allowFaultInjection" in sidecar[0]
    opted_in = {**prod, RULE: {**prod[RULE], "allowFaultInjection": True}}
    assert not check_plan(plan, pack=pack, pack_config=opted_in).mandatory


def agent(**overrides: object) -> dict[str, object]:
    return {
        "name": FIS_SSM_AGENT,
        "image": f"{FIS_SSM_AGENT_REPOSITORY}:3.2.2222.0",
        "essential": False,
        "user": "root",
        "readonlyRootFilesystem": False,
        **overrides,
    }


@pytest.mark.parametrize(
    "container",
    [
        agent(image=f"{FIS_SSM_AGENT_REPOSITORY}:latest"),
        agent(image="public.ecr.aws/someone/amazon-ssm-agent:3.2.2222.0"),
        agent(essential=True),
        agent(privileged=True),
        agent(name="app"),
    ],
    ids=["latest", "other-image", "essential", "privileged", "other-name"],
)
def test_only_the_documented_sidecar_escapes_the_hardened_container_rules(
    pack: PolicyPackProcess, container: dict[str, object]
) -> None:
    def hardened_findings(*definitions: dict[str, object]) -> list[str]:
        task = resource(TASK_DEFINITION, "task", {"containerDefinitions": json.dumps(list(definitions))})
        report = check_plan(hand_plan(task), pack=pack, pack_config=stack_config_file("staging"))
        return sorted(v.rule for v in report.violations if v.rule in HARDENED)

    assert hardened_findings(agent()) == []
    assert hardened_findings(container) == sorted(HARDENED)
