"""The API's progressive deployments: ECS's native canary and linear strategies, rendered from
`services.api.deployment`, shifting the ALB's traffic like blue/green and rolled back by the API's alarms."""

from __future__ import annotations

from typing import Any

import pytest

from platformctl.plan import Plan, PlannedResource
from tests.support import config_for, plan_with


def resource(plan: Plan, name: str) -> PlannedResource:
    (match,) = [r for r in plan.resources if r.name == name]
    return match


def api_deploying(environment: str, deployment: dict[str, Any]) -> Plan:
    return plan_with(config_for(environment, services={"api": {"deployment": deployment}}), stack=environment)


@pytest.fixture(scope="module")
def canary() -> Plan:
    return api_deploying(
        "staging", {"strategy": "canary", "bakeMinutes": 3, "canary": {"percent": 12.5, "bakeMinutes": 7}}
    )


@pytest.fixture(scope="module")
def linear() -> Plan:
    return api_deploying(
        "prod", {"strategy": "linear", "bakeMinutes": 4, "linear": {"stepPercent": 20, "stepBakeMinutes": 5}}
    )


def test_canary_sends_its_share_first_then_bakes(canary: Plan) -> None:
    assert resource(canary, "api-service").inputs["deploymentConfiguration"] == {
        "strategy": "CANARY",
        "bakeTimeInMinutes": "3",
        "canaryConfiguration": {"canaryPercent": 12.5, "canaryBakeTimeInMinutes": "7"},
    }


def test_linear_moves_traffic_in_configured_steps_then_bakes(linear: Plan) -> None:
    assert resource(linear, "api-service").inputs["deploymentConfiguration"] == {
        "strategy": "LINEAR",
        "bakeTimeInMinutes": "4",
        "linearConfiguration": {"stepPercent": 20, "stepBakeTimeInMinutes": "5"},
    }


@pytest.mark.parametrize("strategy", ["canary", "linear"])
def test_progressive_strategies_shift_the_listener_rule_between_two_target_groups(
    strategy: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(strategy)
    api = resource(plan, "api-service").inputs
    advanced = api["loadBalancers"][0]["advancedConfiguration"]
    green = resource(plan, "load-balancer-api-green")
    assert advanced["alternateTargetGroupArn"] == green.outputs["arn"]
    assert advanced["productionListenerRule"] == resource(plan, "load-balancer-forward-api").outputs["arn"]
    assert advanced["roleArn"] == resource(plan, "api-deploy-role").outputs["arn"]


@pytest.mark.parametrize("strategy", ["canary", "linear"])
def test_progressive_strategies_roll_back_on_the_api_alarms(strategy: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(strategy)
    alarms = resource(plan, "api-service").inputs["alarms"]
    assert alarms["enable"] is True and alarms["rollback"] is True
    alarm_names = {r.inputs["name"] for r in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["alarmNames"] and set(alarms["alarmNames"]) <= alarm_names


@pytest.mark.parametrize("strategy", ["canary", "linear"])
def test_the_worker_keeps_rolling_while_the_api_shifts_traffic(strategy: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(strategy)
    assert resource(plan, "worker-service").inputs["deploymentConfiguration"] == {"strategy": "ROLLING"}
