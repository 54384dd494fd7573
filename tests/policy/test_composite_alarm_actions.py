"""alarms-have-actions through the real analyzer: a window alarm of a burn-rate pair notifies through its composite."""

from __future__ import annotations

from platformctl.plan import PlannedResource
from platformctl.policy import PolicyPackProcess, check_plan
from tests.policy.test_pack import hand_plan, resource

RULE = "alarms-have-actions"
ALARM, COMPOSITE = "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm"
TOPIC = "arn:aws:sns:us-east-1:1:page"


def window(name: str) -> PlannedResource:
    return resource(ALARM, name, {"name": f"shop-{name}", "actionsEnabled": False, "threshold": 0.0144})


def composite(rule: str, actions: list[str]) -> PlannedResource:
    return resource(COMPOSITE, "burn", {"alarmName": "shop-burn", "alarmRule": rule, "alarmActions": actions})


def flagged(pack: PolicyPackProcess, *resources: PlannedResource) -> list[str]:
    report = check_plan(hand_plan(*resources), pack=pack, pack_config={})
    return sorted(v.message for v in report.violations if v.rule == RULE)


def test_window_alarms_named_by_a_notifying_composite_pass(pack: PolicyPackProcess) -> None:
    rule = 'ALARM("shop-long") AND ALARM("shop-short")'
    assert flagged(pack, window("long"), window("short"), composite(rule, [TOPIC])) == []


def test_a_silent_alarm_no_composite_names_and_a_silent_composite_are_flagged(pack: PolicyPackProcess) -> None:
    messages = flagged(pack, window("long"), window("short"), composite('ALARM("shop-long")', []))
    assert len(messages) == 3
    assert any(m.startswith("burn (CompositeAlarm): no enabled alarm action") for m in messages)
    messages = flagged(pack, window("long"), window("short"), composite('ALARM("shop-long")', [TOPIC]))
    assert len(messages) == 1 and messages[0].startswith("short (MetricAlarm)")
