"""Config rules of the data layers: each problem names the field to change."""

from __future__ import annotations

from typing import Any

import pytest

from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from tests.support import config_for


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(raw)
    return [str(problem) for problem in caught.value.problems]


def test_the_defaults_pass_every_data_rule() -> None:
    for environment in ("prod", "staging"):
        cfg = parse_platform_config(config_for(environment))
        assert cfg.database.final_snapshot is (environment == "prod")
        assert cfg.database.proxy_max_connections_percent == 90


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"database": {"maintenanceWindow": "mon:03:30-mon:04:30"}},
            "platform:database.maintenanceWindow: must not overlap database.backupWindow (03:00-04:00)",
        ),
        (
            {"cache": {"maintenanceWindow": "sat:23:30-sun:02:30"}},
            "platform:cache.maintenanceWindow: must not overlap cache.snapshotWindow (02:00-03:00)",
        ),
        ({"database": {"backupWindow": "03:00-03:15"}}, "platform:database.backupWindow: must last at least 30"),
        ({"cache": {"snapshotWindow": "23:30-00:15"}}, "platform:cache.snapshotWindow: must last at least 60"),
        (
            {"cache": {"maintenanceWindow": "sun:05:30-sun:06:00"}},
            "platform:cache.maintenanceWindow: must last at least 60",
        ),
        ({"database": {"engineVersion": "12.9"}}, "platform:database.engineVersion: Aurora PostgreSQL offers"),
        ({"cache": {"engine": "redis"}}, "platform:cache.engineVersion: ElastiCache offers redis up to 7.x"),
        ({"cache": {"engine": "redis", "engineVersion": "6.2"}}, "platform:cache.engineVersion: redis 7.0 or later"),
        ({"cache": {"engineVersion": "7.1"}}, "platform:cache.engineVersion: valkey 7.2 or later"),
        (
            {"database": {"proxyMaxConnectionsPercent": 40, "proxyMaxIdleConnectionsPercent": 50}},
            "platform:database.proxyMaxIdleConnectionsPercent: must not exceed proxyMaxConnectionsPercent 40",
        ),
    ],
)
def test_a_data_rule_names_the_field(overrides: dict[str, Any], expected: str) -> None:
    problems = problems_of(config_for("staging", **overrides))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_windows_across_midnight_and_the_week_end_are_understood() -> None:
    # A daily window from 23:00 runs into the next day; Sunday's maintenance runs into Monday.
    parse_platform_config(
        config_for(
            "staging",
            cache={"snapshotWindow": "23:00-00:30", "maintenanceWindow": "mon:01:00-mon:02:00"},
            database={"backupWindow": "23:30-00:30", "maintenanceWindow": "sun:01:00-sun:23:00"},
        )
    )
    problems = problems_of(
        config_for(
            "staging",
            cache={"snapshotWindow": "23:00-00:30", "maintenanceWindow": "mon:00:15-mon:01:15"},
            database={"backupWindow": "00:00-00:30", "maintenanceWindow": "sun:23:30-mon:00:15"},
        )
    )
    assert sorted(problem.split(":")[1] for problem in problems) == [
        "cache.maintenanceWindow",
        "database.maintenanceWindow",
    ]


def test_redis_7_and_valkey_8_pass() -> None:
    parse_platform_config(config_for("staging", cache={"engine": "redis", "engineVersion": "7.1"}))
    parse_platform_config(config_for("staging", cache={"engine": "valkey", "engineVersion": "8.0"}))


def test_prod_keeps_a_final_snapshot_and_cache_snapshots() -> None:
    problems = problems_of(config_for("prod", database={"finalSnapshot": False}, cache={"snapshotRetentionDays": 0}))
    assert any(p.startswith("platform:database.finalSnapshot: prod takes a final snapshot") for p in problems)
    assert any(p.startswith("platform:cache.snapshotRetentionDays: prod keeps cache snapshots") for p in problems)


def test_staging_may_skip_the_final_snapshot() -> None:
    assert (
        parse_platform_config(config_for("staging", database={"finalSnapshot": False})).database.final_snapshot is False
    )


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"database": {"proxyMaxConnectionsPercent": 0}}, "database.proxyMaxConnectionsPercent"),
        ({"database": {"proxyIdleClientTimeoutSeconds": 28801}}, "database.proxyIdleClientTimeoutSeconds"),
        ({"database": {"workMemMb": 0}}, "database.workMemMb"),
    ],
)
def test_new_fields_stay_within_aws_limits(overrides: dict[str, Any], path: str) -> None:
    problems = problems_of(config_for("staging", **overrides))
    assert any(problem.startswith(f"platform:{path}:") for problem in problems), problems
