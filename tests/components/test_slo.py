"""Service level objectives: burn-rate alarms computed from the objective, routed by severity, on the dashboard;
the health check's alarm and the worker's rollback alarms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from components.alarms import RequestPathMetrics
from components.naming import Naming
from components.slo import ServiceLevelObjectives, SloArgs, dashboard_row, indicators
from platformctl.plan import Plan, PlannedResource, run_program
from stack_config.schema import PlatformConfig, SloConfig
from tests.support import by_name, config_for, plan_with

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
PAGE_TOPIC, TICKET_TOPIC = "arn:aws:sns:us-east-1:123456789012:page", "arn:aws:sns:us-east-1:123456789012:alerts"
GROUPS = ["targetgroup/blue/1", "targetgroup/green/2"]
HOUR = 3600
# The SRE workbook's table for a 30-day window, written out: (pair, burn rate, long window s, short window s).
WORKBOOK = [
    ("page-1h", 14.4, HOUR, 300),
    ("page-6h", 6, 6 * HOUR, 1800),
    ("ticket-1d", 3, 24 * HOUR, 2 * HOUR),
    ("ticket-3d", 1, 72 * HOUR, 6 * HOUR),
]


def run_slos(config: dict[str, Any]) -> Plan:
    slos = SloConfig.model_validate(config)

    def program() -> None:
        found = indicators(slos, RequestPathMetrics("app/alb/1", GROUPS), "Platform/App")
        ServiceLevelObjectives("slo", SloArgs(slos, Naming("shop", "test", "staging"), found, PAGE_TOPIC, TICKET_TOPIC))

    return run_program(program, project="platform", stack="test")


@pytest.fixture(scope="module")
def seeds() -> Plan:
    return run_slos({})


def window_alarm(plan: Plan, indicator: str, pair: str, span: str) -> PlannedResource:
    return by_name(plan, f"slo-{indicator}-{pair}-{span}")


def returned(alarm: PlannedResource) -> dict[str, Any]:
    (expression,) = [q for q in alarm.inputs["metricQueries"] if q.get("returnData")]
    return dict(expression)


def evaluate(expression: str, **values: float | None) -> float:
    """The metric math of an indicator for one period's values (None: no data point), as CloudWatch reads it."""

    def fill(value: float | None, default: float) -> float:
        return default if value is None else value

    python = re.sub(r"\bFILL\(", "fill(", expression)
    return float(eval(python, {"fill": fill}, dict(values)))


@pytest.mark.parametrize(("pair", "burn", "long", "short"), WORKBOOK)
@pytest.mark.parametrize("indicator", ["api-availability", "worker-availability"])
def test_99_9_availability_thresholds_are_the_workbook_burn_rates_times_the_budget(
    seeds: Plan, indicator: str, pair: str, burn: float, long: int, short: int
) -> None:
    # 99.9 % leaves a budget of 0.001: the 1 h page fires above a 1.44 % error ratio.
    for span, seconds in (("long", long), ("short", short)):
        alarm = window_alarm(seeds, indicator, pair, span)
        assert alarm.inputs["threshold"] == pytest.approx(burn * 0.001)
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["evaluationPeriods"] == 1
        # Every metric is read over one period as long as the window: the window's own ratio.
        periods = {q["metric"]["period"] for q in alarm.inputs["metricQueries"] if "metric" in q}
        assert periods == {seconds}
        assert len([q for q in alarm.inputs["metricQueries"] if "metric" in q]) <= 10


def test_the_latency_objective_counts_answers_slower_than_its_bound_against_a_p95_budget(seeds: Plan) -> None:
    alarm = window_alarm(seeds, "api-latency", "page-1h", "long")
    # p95 within 500 ms: 5 % of requests may be slower, so the 1 h page fires above 14.4 x 0.05 of them.
    assert alarm.inputs["threshold"] == pytest.approx(0.72)
    stats = {q["id"]: q["metric"]["stat"] for q in alarm.inputs["metricQueries"] if "metric" in q}
    assert stats == {"p0": "PR(:0.5)", "p1": "PR(:0.5)", "r0": "Sum", "r1": "Sum"}
    # 90 % of the blue group's 200 requests within 500 ms, the green group idle: 20 of 200 were slow.
    ratio = evaluate(returned(alarm)["expression"], p0=90.0, r0=200.0, p1=None, r1=None)
    assert ratio == pytest.approx(0.1)


def test_availability_counts_5xx_of_both_target_groups_and_an_idle_group_as_zero(seeds: Plan) -> None:
    alarm = window_alarm(seeds, "api-availability", "page-1h", "short")
    expression = returned(alarm)["expression"]
    assert evaluate(expression, e0=3.0, r0=100.0, e1=None, r1=None) == pytest.approx(0.03)
    assert evaluate(expression, e0=1.0, r0=100.0, e1=1.0, r1=100.0) == pytest.approx(0.01)
    metrics = {
        (q["metric"]["metricName"], q["metric"]["dimensions"]["TargetGroup"])
        for q in alarm.inputs["metricQueries"]
        if "metric" in q
    }
    assert metrics == {(m, g) for m in ("HTTPCode_Target_5XX_Count", "RequestCount") for g in GROUPS}


@pytest.mark.parametrize(("pair", "burn", "long", "short"), WORKBOOK)
def test_a_pair_alerts_only_while_its_long_and_short_windows_both_breach(
    seeds: Plan, pair: str, burn: float, long: int, short: int
) -> None:
    composite = by_name(seeds, f"slo-worker-availability-{pair}")
    names = [window_alarm(seeds, "worker-availability", pair, span).inputs["name"] for span in ("long", "short")]
    assert composite.inputs["alarmRule"] == f'ALARM("{names[0]}") AND ALARM("{names[1]}")'
    # The windows alone notify nobody: a stopped burst (long still high, short recovered) stays quiet.
    for span in ("long", "short"):
        window = window_alarm(seeds, "worker-availability", pair, span)
        assert window.inputs["actionsEnabled"] is False
        assert window.inputs["treatMissingData"] == "notBreaching"


def test_fast_burns_page_and_slow_burns_open_tickets_on_the_alerts_topic(seeds: Plan) -> None:
    composites = {alarm.name: alarm for alarm in seeds.of_type(COMPOSITE)}
    assert len(composites) == 3 * len(WORKBOOK)
    for name, alarm in composites.items():
        topic = PAGE_TOPIC if "-page-" in name else TICKET_TOPIC
        assert alarm.inputs["alarmActions"] == [topic] == alarm.inputs["okActions"]


def test_a_shorter_slo_window_lowers_the_burn_rate_of_the_same_budget_share() -> None:
    plan = run_slos({"windowDays": 28, "worker": {"availabilityPercent": 99.5}})
    # 2 % of a 28-day budget in one hour: 0.02 x 672 h = 13.44x, on a 0.005 budget.
    alarm = window_alarm(plan, "worker-availability", "page-1h", "long")
    assert alarm.inputs["threshold"] == pytest.approx(13.44 * 0.005)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"worker": {"availabilityPercent": 90}}, "slos.worker.availabilityPercent"),
        ({"api": {"latencyPercent": 80}}, "slos.api.latencyPercent"),
    ],
)
def test_an_objective_whose_budget_no_page_could_cross_is_refused_naming_the_field(
    config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(field)) as error:
        PlatformConfig.model_validate(config_for("staging", slos=config))
    assert "use more than 93.06" in str(error.value)


def test_the_dashboard_has_a_row_per_slo_with_its_budget_left() -> None:
    slos = SloConfig()
    found = indicators(slos, RequestPathMetrics("app/alb/1", GROUPS), "Platform/App")
    assert [i.label for i in found] == ["api-availability", "api-latency", "worker-availability"]
    budget, burn = dashboard_row(found[0], "us-east-1", 30)
    assert budget["width"] + burn["width"] == 24  # a row of its own
    expressions = {m[0]["id"]: m[0]["expression"] for m in budget["properties"]["metrics"] if "expression" in m[0]}
    assert expressions["left"] == "100 * (1 - bad / 0.001)"
    # Over the whole 30-day window: 10 errors in 100 000 requests leave 90 % of the budget.
    ratio = evaluate(expressions["bad"], e0=10.0, r0=100_000.0, e1=None, r1=None)
    assert 100 * (1 - ratio / 0.001) == pytest.approx(90.0)
    assert budget["properties"]["period"] == 30 * 24 * HOUR
    assert [line["value"] for line in burn["properties"]["annotations"]["horizontal"]] == [14.4, 6]


def test_the_stack_dashboard_shows_every_slo(prod_plan: Plan) -> None:
    widgets = json.loads(by_name(prod_plan, "observability-dashboard").inputs["dashboardBody"])["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    for slo in ("API availability (99.9 %)", "API answers within 500 ms (95 %)", "Worker messages processed (99.9 %)"):
        assert f"SLO {slo}: budget left, 30 d" in titles


def test_both_stacks_page_on_their_own_encrypted_tls_only_topic(prod_plan: Plan, staging_plan: Plan) -> None:
    for plan in (prod_plan, staging_plan):
        page = by_name(plan, "messaging-page")
        assert page.inputs["kmsMasterKeyId"] == by_name(plan, "security-messaging-key").outputs["arn"]
        statements = {
            s["Sid"]: s for s in json.loads(by_name(plan, "messaging-page-policy").inputs["policy"])["Statement"]
        }
        assert statements["DenyInsecurePublish"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert statements["ServicesPublish"]["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
        fast = by_name(plan, "slo-api-availability-page-1h")
        assert fast.inputs["alarmActions"] == [page.outputs["arn"]]
        slow = by_name(plan, "slo-api-availability-ticket-3d")
        assert slow.inputs["alarmActions"] == [by_name(plan, "messaging-alerts").outputs["arn"]]


def test_the_health_check_pages_from_us_east_1_when_it_fails(prod_plan: Plan) -> None:
    alarm, check = by_name(prod_plan, "edge-health-alarm"), by_name(prod_plan, "edge-health")
    assert alarm.inputs["namespace"] == "AWS/Route53"
    assert alarm.inputs["dimensions"] == {"HealthCheckId": check.id}
    assert alarm.inputs["comparisonOperator"] == "LessThanThreshold" and alarm.inputs["threshold"] == 1
    assert alarm.inputs["alarmActions"] == [by_name(prod_plan, "messaging-page").outputs["arn"]]


def test_outside_us_east_1_no_health_alarm_is_made_that_could_not_reach_the_page_topic() -> None:
    # Route 53's metric is in us-east-1 only, and an alarm notifies topics of its own region.
    plan = plan_with(config_for("staging", region="eu-west-1", recovery={"copyRegion": None}))
    assert [a for a in plan.of_type(ALARM) if a.name == "edge-health-alarm"] == []


def test_the_worker_rolls_back_on_failed_messages_and_dlq_arrivals(prod_plan: Plan) -> None:
    service = by_name(prod_plan, "worker-service")
    errors, arrivals = by_name(prod_plan, "worker-deploy-errors"), by_name(prod_plan, "worker-dlq-arrivals")
    assert service.inputs["alarms"] == {
        "alarmNames": [errors.inputs["name"], arrivals.inputs["name"]],
        "enable": True,
        "rollback": True,
    }
    # Above the worker SLO's fastest page burn (14.4 x 0.001), in 3 of 5 minutes.
    assert errors.inputs["threshold"] == pytest.approx(0.0144)
    assert (errors.inputs["evaluationPeriods"], errors.inputs["datapointsToAlarm"]) == (5, 3)
    assert evaluate(returned(errors)["expression"], f=2.0, d=98.0) == pytest.approx(0.02)
    # An arrival is the DLQ's depth rising: a DLQ still holding old messages does not block every deployment.
    assert returned(arrivals)["expression"] == "DIFF(depth)"
    (depth,) = [q for q in arrivals.inputs["metricQueries"] if "metric" in q]
    assert depth["metric"]["dimensions"] == {"QueueName": by_name(prod_plan, "messaging-orders-dlq").outputs["name"]}
    assert arrivals.inputs["threshold"] == 0 and arrivals.inputs["evaluationPeriods"] == 2


def test_page_emails_subscribe_to_the_page_topic_only() -> None:
    plan = plan_with(config_for("staging", slos={"pageEmails": ["oncall@example.com"]}))
    page = by_name(plan, "messaging-page").outputs["arn"]
    emails = [s for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription") if s.inputs["protocol"] == "email"]
    assert [(s.inputs["endpoint"], s.inputs["topic"]) for s in emails] == [("oncall@example.com", page)]
