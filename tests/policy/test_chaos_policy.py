"""fis-templates-opted-in through the real analyzer: fault experiments only where the stack's policy config allows."""

from __future__ import annotations

from rules.chaos import EXPERIMENT_TEMPLATE  # the pack's own module (policy/ is on the path, see conftest)

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
