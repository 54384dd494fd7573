"""The bulkheads' sizes: typed and validated in the stack config, handed to each service's containers as the
settings the app reads (`app/contract.py`), in both stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import contract
from app.settings import Settings
from platformctl.plan import Plan
from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from stack_config.schema import ApiCompartments, WorkerCompartments
from tests.support import config_for, plan_with


def environments(plan: Plan, service: str) -> dict[str, dict[str, str]]:
    """Each container of the service's task (app, companions, sidecars): its environment."""
    (task,) = [r for r in plan.resources if r.name == f"{service}-task"]
    return {
        c["name"]: {v["name"]: v["value"] for v in c.get("environment", [])}
        for c in json.loads(task.inputs["containerDefinitions"])
    }


def expected(sizes: ApiCompartments | WorkerCompartments) -> dict[str, str]:
    return {contract.BULKHEAD_SETTINGS[field]: str(value) for field, value in sizes.model_dump().items()}


def bulkhead_settings(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name.startswith("BULKHEAD_")}


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_each_service_gets_its_configured_sizes(stack: str, request: Any) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    compartments = parse_platform_config(config_for(stack)).services.compartments
    api = environments(plan, "api")
    assert bulkhead_settings(api["api"]) == expected(compartments.api)
    assert contract.BULKHEAD_NOTIFICATIONS not in api["api"]  # the API never calls the provider
    worker = environments(plan, "worker")
    for container in ("worker", "relay"):
        assert bulkhead_settings(worker[container]) == expected(compartments.worker)
    # The app reads exactly what the stack sets.
    settings = Settings.model_validate(worker["worker"])
    assert (settings.bulkhead_notifications, settings.bulkhead_sqs) == (
        compartments.worker.notifications,
        compartments.worker.sqs,
    )


def test_configured_sizes_reach_the_task_definitions() -> None:
    sizes = {"api": {"dbWriter": 5, "redis": 4, "waitMs": 20}, "worker": {"notifications": 12, "sqs": 2}}
    plan = plan_with(config_for("staging", services={"compartments": sizes}), stack="staging")
    api = bulkhead_settings(environments(plan, "api")["api"])
    assert (api[contract.BULKHEAD_DB_WRITER], api[contract.BULKHEAD_REDIS], api[contract.BULKHEAD_WAIT_MS]) == (
        "5",
        "4",
        "20",
    )
    worker = bulkhead_settings(environments(plan, "worker")["worker"])
    assert (worker[contract.BULKHEAD_NOTIFICATIONS], worker[contract.BULKHEAD_SQS]) == ("12", "2")


@pytest.mark.parametrize(
    ("sizes", "names"),
    [
        ({"api": {"redis": 9}}, ["services.compartments.api", "redis: 9", "API's threads", "1 to 8"]),
        ({"api": {"dbWriter": 0}}, ["services.compartments.api.dbWriter", "greater than or equal to 1"]),
        ({"worker": {"notifications": 21}}, ["services.compartments.worker", "notifications: 21", "1 to 20"]),
        ({"worker": {"dbReader": 11}}, ["services.compartments.worker", "dbReader: 11", "pool", "1 to 10"]),
        ({"worker": {"waitMs": 5000}}, ["services.compartments.worker.waitMs", "1000"]),
    ],
)
def test_a_size_out_of_bounds_is_refused_naming_the_field(sizes: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(config_for("prod", services={"compartments": sizes}))
    text = "\n".join(str(problem) for problem in caught.value.problems)
    for name in names:
        assert name in text, text


def test_the_app_defaults_are_the_apis_compartments() -> None:
    """A process started without the stack's settings (locally) runs the API's sizes."""
    defaults, api = Settings(), ApiCompartments()
    assert (defaults.bulkhead_db_writer, defaults.bulkhead_db_reader, defaults.bulkhead_redis) == (
        api.db_writer,
        api.db_reader,
        api.redis,
    )
    assert (defaults.bulkhead_notifications, defaults.bulkhead_wait_ms) == (
        WorkerCompartments().notifications,
        api.wait_ms,
    )
