"""The API's deployment strategy (ECS's allowed values, named when refused) and the RTO checked against what the
architecture can recover in."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from stack_config.rules import (
    AURORA_FAILOVER_MINUTES,
    AURORA_REPLACE_WRITER_MINUTES,
    RESTORE_CUTOVER_MINUTES,
    RESTORE_MINUTES_BY_SIZE,
    recovery_paths,
    restore_minutes,
)
from tests.support import config_for


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(raw)
    return [str(problem) for problem in caught.value.problems]


def api_deployment(environment: str, deployment: dict[str, Any]) -> dict[str, Any]:
    return config_for(environment, services={"api": {"deployment": deployment}})


# --- deployment strategy -------------------------------------------------------------------------


def test_prod_deploys_the_api_blue_green_and_staging_rolls() -> None:
    assert parse_platform_config(config_for("prod")).services.api.deployment.strategy == "blue_green"
    assert parse_platform_config(config_for("staging")).services.api.deployment.strategy == "rolling"


def test_progressive_defaults_are_ecs_own() -> None:
    deployment = parse_platform_config(api_deployment("prod", {"strategy": "canary"})).services.api.deployment
    assert (deployment.canary.percent, deployment.canary.bake_minutes) == (5, 10)
    assert (deployment.linear.step_percent, deployment.linear.step_bake_minutes) == (10, 6)
    assert deployment.shifts_traffic


@pytest.mark.parametrize(
    ("deployment", "path", "allowed"),
    [
        ({"strategy": "canary", "canary": {"percent": 0}}, "canary.percent", "greater than or equal to 0.1"),
        ({"strategy": "canary", "canary": {"percent": 100.5}}, "canary.percent", "less than or equal to 100"),
        ({"strategy": "canary", "canary": {"percent": 2.55}}, "canary.percent", "must be a multiple of 0.1"),
        ({"strategy": "canary", "canary": {"bakeMinutes": 1441}}, "canary.bakeMinutes", "less than or equal to 1440"),
        ({"strategy": "linear", "linear": {"stepPercent": 2.9}}, "linear.stepPercent", "greater than or equal to 3"),
        ({"strategy": "linear", "linear": {"stepPercent": 33.33}}, "linear.stepPercent", "must be a multiple of 0.1"),
        ({"strategy": "linear", "linear": {"stepBakeMinutes": -1}}, "linear.stepBakeMinutes", "greater than or equal"),
        ({"strategy": "linear", "bakeMinutes": 1441}, "bakeMinutes", "less than or equal to 1440"),
        ({"strategy": "gradual"}, "strategy", "'rolling', 'blue_green', 'canary' or 'linear'"),
    ],
)
def test_values_ecs_refuses_are_refused_naming_the_field(deployment: dict[str, Any], path: str, allowed: str) -> None:
    (problem,) = problems_of(api_deployment("staging", deployment))
    assert problem.startswith(f"platform:services.api.deployment.{path}: ")
    assert allowed in problem


@pytest.mark.parametrize("percent", [0.1, 0.3, 12.5, 33.3, 100])
def test_canary_percentages_in_tenths_are_accepted(percent: float) -> None:
    cfg = parse_platform_config(api_deployment("staging", {"strategy": "canary", "canary": {"percent": percent}}))
    assert cfg.services.api.deployment.canary.percent == percent


@pytest.mark.parametrize("strategy", ["blue_green", "canary", "linear"])
def test_the_worker_cannot_shift_traffic_it_has_no_load_balancer_for(strategy: str) -> None:
    raw = config_for("staging", services={"worker": {"deployment": {"strategy": strategy}}})
    assert problems_of(raw) == [
        f"platform:services.worker.deployment.strategy: {strategy} shifts load balancer traffic; the worker has"
        f' no load balancer, use rolling (got "{strategy}")'
    ]


# --- recovery time -------------------------------------------------------------------------------


def test_both_environments_rto_covers_a_restore_of_their_size() -> None:
    for environment in ("prod", "staging"):
        cfg = parse_platform_config(config_for(environment))
        assert cfg.recovery.rto_minutes >= max(recovery_paths(cfg).values())


def test_an_rto_shorter_than_a_restore_is_refused_with_what_the_architecture_can_do() -> None:
    raw = config_for("prod", recovery={"rtoMinutes": 60, "databaseSizeGib": 500})
    # 500 GiB is in the up-to-1024 GiB class: 60 minutes to a restored writer, 15 to cut over.
    assert problems_of(raw) == [
        "platform:recovery.rtoMinutes: the architecture's slowest recovery takes about 75 minutes (failover to a"
        " reader about 2 min; restore from a backup about 75 min, for recovery.databaseSizeGib 500); raise the"
        " RTO to at least 75 (got 60)"
    ]
    assert parse_platform_config(config_for("prod", recovery={"rtoMinutes": 75, "databaseSizeGib": 500}))


def test_restore_time_steps_up_at_each_size_class_boundary() -> None:
    for largest, minutes in RESTORE_MINUTES_BY_SIZE:
        assert restore_minutes(largest) == minutes + RESTORE_CUTOVER_MINUTES
    for (largest, _), (_, next_minutes) in pairwise(RESTORE_MINUTES_BY_SIZE):
        assert restore_minutes(largest + 1) == next_minutes + RESTORE_CUTOVER_MINUTES


@given(st.integers(1, 131071))
def test_a_larger_database_never_restores_faster(size: int) -> None:
    assert restore_minutes(size + 1) >= restore_minutes(size)


def test_without_a_reader_failover_means_a_new_writer() -> None:
    with_reader = parse_platform_config(config_for("staging"))
    without = parse_platform_config(config_for("staging", database={"readerCount": 0}))
    assert recovery_paths(with_reader)["failover to a reader"] == AURORA_FAILOVER_MINUTES
    assert recovery_paths(without)["a new writer (no reader to fail over to)"] == AURORA_REPLACE_WRITER_MINUTES


def test_a_database_beyond_aurora_s_limit_is_refused_naming_the_field() -> None:
    (problem,) = problems_of(config_for("staging", recovery={"databaseSizeGib": 131073}))
    assert problem.startswith("platform:recovery.databaseSizeGib: ")
