"""Config of the operations layers (messaging, storage, observability, recovery, cost): rules name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from stack_config.rules import backup_interval_minutes
from tests.support import REPO, config_for


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(raw)
    return [str(problem) for problem in caught.value.problems]


def without_tag(environment: str, key: str) -> dict[str, Any]:
    raw = config_for(environment)
    raw["tags"] = {k: v for k, v in raw["tags"].items() if k != key}
    return raw


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_both_stack_files_pass_every_rule_with_their_cost_tags(stack: str) -> None:
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    cfg = parse_platform_config({key.split(":", 1)[1]: value for key, value in document["config"].items()})
    assert cfg.tags["owner"] and cfg.tags["cost-center"]


def test_seed_defaults_of_the_new_fields() -> None:
    cfg = parse_platform_config(config_for("staging"))
    queue = cfg.messaging.queues["orders"]
    assert (queue.encryption, queue.kms_data_key_reuse_seconds, queue.fifo) == ("kms", 300, False)
    assert cfg.observability.access_log_retention_days == 90
    assert cfg.observability.app_metrics_namespace == "Platform/App"
    assert cfg.recovery.noncurrent_version_retention_days == 30
    assert cfg.budget.alert_thresholds_percent == [80.0, 100.0] and cfg.budget.scope_to_stack is True


@pytest.mark.parametrize("missing", ["owner", "cost-center"])
def test_cost_allocation_tags_are_required(missing: str) -> None:
    problems = problems_of(without_tag("prod", missing))
    assert problems == [
        f"platform:tags: cost allocation needs the tags {missing} (every resource carries them)"
        f" (got {_shown(without_tag('prod', missing)['tags'])})"
    ]


def _shown(tags: dict[str, str]) -> str:
    return json.dumps(tags, sort_keys=True)


def test_blank_tag_values_do_not_count() -> None:
    raw = config_for("staging", tags={"owner": " "})
    (problem,) = problems_of(raw)
    assert problem.startswith("platform:tags: cost allocation needs the tags owner ")


def test_no_tags_at_all_names_both() -> None:
    raw = config_for("staging")
    raw["tags"] = {}
    (problem,) = problems_of(raw)
    assert problem.startswith("platform:tags: cost allocation needs the tags owner, cost-center ")


@pytest.mark.parametrize(
    ("schedule", "minutes"),
    [
        ("cron(0 5 * * ? *)", 1440),
        ("cron(0 0/6 * * ? *)", 360),
        ("cron(15 */4 * * ? *)", 240),
        ("cron(0 1,13 * * ? *)", 720),
        ("cron(0 2,5 * * ? *)", 1260),
        ("cron(0 * * * ? *)", 60),
        ("cron(0 8-20 * * ? *)", 720),
        ("cron(0 5 ? * MON *)", None),
        ("cron(0 5 1 * ? *)", None),
        ("cron(0 25 * * ? *)", None),
        ("cron(0 5 * *)", None),
    ],
)
def test_backup_interval_of_a_schedule(schedule: str, minutes: int | None) -> None:
    assert backup_interval_minutes(schedule) == minutes


def test_an_rpo_neither_the_backups_nor_aurora_pitr_can_meet_is_an_error() -> None:
    problems = problems_of(config_for("prod", recovery={"rpoMinutes": 3}))
    assert problems == [
        "platform:recovery.rpoMinutes: Aurora point-in-time recovery cannot meet an RPO under 5 minutes,"
        " and the backup plan runs only every 1440 minutes (got 3)"
    ]


@pytest.mark.parametrize("rpo", [5, 15, 60, 1440, 2880])
def test_rpos_that_aurora_pitr_or_the_backups_meet_pass(rpo: int) -> None:
    assert parse_platform_config(config_for("prod", recovery={"rpoMinutes": rpo})).recovery.rpo_minutes == rpo


def test_a_schedule_the_rpo_cannot_be_checked_against_is_an_error() -> None:
    problems = problems_of(config_for("staging", recovery={"backupSchedule": "cron(0 5 ? * MON *)"}))
    assert problems == [
        "platform:recovery.backupSchedule: use a daily or more frequent cron(min hour * * ? *)"
        ' so the plan can be checked against the RPO (got "cron(0 5 ? * MON *)")'
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"budget": {"alertThresholdsPercent": [10, 20, 30, 40, 50, 60]}}, "platform:budget.alertThresholdsPercent"),
        ({"messaging": {"queues": {"orders": {"encryption": "none"}}}}, "platform:messaging.queues.orders.encryption"),
        (
            {"messaging": {"queues": {"orders": {"kmsDataKeyReuseSeconds": 30}}}},
            "platform:messaging.queues.orders.kmsDataKeyReuseSeconds",
        ),
        ({"observability": {"accessLogRetentionDays": 0}}, "platform:observability.accessLogRetentionDays"),
        ({"observability": {"appMetricsNamespace": "bad|name"}}, "platform:observability.appMetricsNamespace"),
        ({"recovery": {"noncurrentVersionRetentionDays": 0}}, "platform:recovery.noncurrentVersionRetentionDays"),
        ({"recovery": {"rpoMinutes": 0}}, "platform:recovery.rpoMinutes"),
    ],
)
def test_new_fields_are_checked_against_aws_limits(overrides: dict[str, Any], expected: str) -> None:
    problems = problems_of(config_for("staging", **overrides))
    assert any(problem.startswith(expected + ":") for problem in problems), problems


def test_budget_thresholds_must_be_distinct() -> None:
    problems = problems_of(config_for("prod", budget={"alertThresholdsPercent": [80, 100, 80]}))
    assert problems == [
        "platform:budget.alertThresholdsPercent: must be distinct: AWS Budgets rejects two notifications"
        " with the same threshold (got [80.0, 100.0, 80.0])"
    ]
