"""The typed stack config: both stack files load, every rule names the field, nothing else escapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack_config.errors import StackConfigError
from stack_config.json_schema import stack_file_schema
from stack_config.loader import parse_platform_config
from stack_config.schema import PlatformConfig
from tests.support import REPO, config_for


def stack_file_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in document["config"].items()}


def problems_of(raw: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(raw, secret_keys)
    return [str(problem) for problem in caught.value.problems]


def test_prod_stack_file_loads_with_the_seeds_availability_choices() -> None:
    cfg = parse_platform_config(stack_file_config("prod"))
    assert cfg.environment == "prod"
    assert cfg.az_count == 3
    assert cfg.network.nat_strategy == "one_per_az"
    assert cfg.database.reader_count == 2
    assert cfg.database.deletion_protection is True
    assert cfg.database.backup_retention_days == 7
    assert cfg.services.api.min_count >= cfg.az_count * 2


def test_staging_stack_file_loads_with_cheaper_choices() -> None:
    cfg = parse_platform_config(stack_file_config("staging"))
    prod = parse_platform_config(stack_file_config("prod"))
    assert cfg.az_count < prod.az_count
    assert cfg.network.nat_strategy == "single"
    assert cfg.database.serverless_v2 is not None and cfg.database.instance_class is None
    assert cfg.database.backup_retention_days == 1
    assert cfg.services.worker.use_spot is True


def test_seed_defaults_reach_the_config() -> None:
    cfg = parse_platform_config(config_for("prod"))
    queue = cfg.messaging.queues["orders"]
    assert (queue.visibility_timeout_seconds, queue.max_receive_count, queue.retention_seconds) == (120, 3, 604800)
    assert queue.dlq_retention_seconds == 1209600 and queue.receive_wait_seconds == 20
    assert cfg.services.api.autoscaling.scale_out_cooldown_seconds == 60
    assert cfg.services.api.autoscaling.scale_in_cooldown_seconds == 300
    assert cfg.cache.snapshot_retention_days == 7
    assert cfg.observability.alarm_thresholds.alb_5xx_per_minute == 50
    assert cfg.observability.alarm_thresholds.aurora_cpu_percent == 80


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"services": {"api": {"cpu": 256, "memory": 4096}}}, "platform:services.api.memory: Fargate with cpu 256"),
        ({"services": {"api": {"cpu": 300}}}, "platform:services.api.cpu: must be one of 256,"),
        (
            {"messaging": {"queues": {"orders": {"visibilityTimeoutSeconds": 43201}}}},
            "platform:messaging.queues.orders.visibilityTimeoutSeconds: input should be less than or equal to 43200",
        ),
        (
            {"messaging": {"queues": {"orders": {"retentionSeconds": 59}}}},
            "platform:messaging.queues.orders.retentionSeconds: input should be greater than or equal to 60",
        ),
        (
            {"messaging": {"queues": {"orders": {"retentionSeconds": 1209601}}}},
            "platform:messaging.queues.orders.retentionSeconds: input should be less than or equal to 1209600",
        ),
        (
            {"messaging": {"queues": {"orders": {"maxReceiveCount": 0}}}},
            "platform:messaging.queues.orders.maxReceiveCount: input should be greater than or equal to 1",
        ),
        (
            {"messaging": {"queues": {"orders": {"maxReceiveCount": 1001}}}},
            "platform:messaging.queues.orders.maxReceiveCount: input should be less than or equal to 1000",
        ),
        ({"database": {"backupRetentionDays": 36}}, "platform:database.backupRetentionDays: input should be less"),
        ({"database": {"backupRetentionDays": 0}}, "platform:database.backupRetentionDays: input should be greater"),
        ({"observability": {"logRetentionDays": 8}}, "platform:observability.logRetentionDays: must be one of 1, 3, 5"),
        ({"network": {"vpcCidr": "10.0.0.0/33"}}, "platform:network.vpcCidr: input is not a valid IPv4 network"),
        ({"network": {"vpcCidr": "10.0.0.0/12"}}, "platform:network.vpcCidr: VPC CIDR prefix must be between /16"),
        ({"network": {"vpcCidr": "10.0.0.0/24"}}, "platform:network.vpcCidr: the subnets do not fit"),
        (
            {"network": {"public": {"prefixLength": 24, "cidrs": ["10.0.0.0/24", "10.0.0.128/25", "10.0.2.0/24"]}}},
            "platform:network.public.cidrs[1]: overlaps network.public.cidrs[0]",
        ),
        (
            {"network": {"isolated": {"prefixLength": 24, "cidrs": ["10.0.0.0/24", "10.1.0.0/24", "192.168.0.0/24"]}}},
            "platform:network.isolated.cidrs[2]: must lie inside the VPC 10.0.0.0/16",
        ),
        (
            {"network": {"private": {"prefixLength": 24, "cidrs": ["10.0.64.0/24"]}}},
            "platform:network.private.cidrs: needs one CIDR per AZ (3)",
        ),
        ({"availabilityZones": 1}, "platform:availabilityZones: prod needs at least 2 AZs"),
        (
            {"availabilityZones": ["us-east-1a", "eu-west-1b"]},
            "platform:availabilityZones[1]: must be an AZ of us-east-1",
        ),
        ({"network": {"natStrategy": "single"}}, "platform:network.natStrategy: prod needs one_per_az"),
        (
            {"network": {"natStrategy": "two"}},
            "platform:network.natStrategy: input should be 'one_per_az', 'single' or 'none'",
        ),
        ({"services": {"minTasksPerAz": 0}}, "platform:services.minTasksPerAz: prod needs at least one task per AZ"),
        (
            {"services": {"worker": {"minCount": 2, "desiredCount": 2}}},
            "platform:services.worker.minCount: must be at least 6",
        ),
        (
            {"services": {"worker": {"jobTimeoutSeconds": 300}}},
            "platform:messaging.queues.orders.visibilityTimeoutSeconds: must cover the worker's job timeout of 300 s",
        ),
        (
            {"database": {"serverlessV2": {"minAcu": 1, "maxAcu": 2}}},
            "platform:database.instanceClass: set exactly one of database.instanceClass and database.serverlessV2",
        ),
        ({"edge": {"domain": "shop.example.org"}}, "platform:edge.domain: must lie in the hosted zone example.com"),
        ({"tags": {"aws:owner": "x"}}, "platform:tags.aws:owner"),
        (
            {"recovery": {"copyRegion": "us-east-1"}},
            "platform:recovery.copyRegion: must differ from the stack's region",
        ),
    ],
)
def test_each_rule_rejects_a_bad_value_with_its_path(overrides: dict[str, Any], expected: str) -> None:
    problems = problems_of(config_for("prod", **overrides))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_every_problem_is_listed_at_once_with_the_value_it_got() -> None:
    raw = config_for(
        "prod",
        network={"natStrategy": "single"},
        services={"api": {"cpu": 512, "memory": 9000}},
        database={"readerCount": 0},
    )
    problems = problems_of(raw)
    assert problems == [
        "platform:services.api.memory: Fargate with cpu 512 takes memory 1024-4096 in steps of 1024 (got 9000)",
        'platform:network.natStrategy: prod needs one_per_az, so one AZ\'s outage cannot cut egress (got "single")',
        "platform:database.readerCount: prod needs a reader in a second AZ for failover (got 0)",
    ]


def test_unknown_keys_are_errors_with_a_did_you_mean_hint() -> None:
    problems = problems_of(config_for("prod", netwrok={}, services={"api": {"memroy": 1024}}))
    assert "platform:netwrok: unknown key; did you mean 'network'? (got {})" in problems
    assert "platform:services.api.memroy: unknown key; did you mean 'memory'? (got 1024)" in problems


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    (problem,) = problems_of(config_for("prod", cache={"zzz": 1}))
    assert problem.startswith("platform:cache.zzz: unknown key; known keys here: engine, engineVersion,")


def test_missing_required_keys_say_so() -> None:
    assert problems_of({"environment": "prod"}) == ["platform:edge: is required (got nothing)"]


def test_secret_values_never_appear_in_problems() -> None:
    raw = config_for("prod", app={"notificationApiKey": 12345678, "trustedProxyHops": "s3cr3t-value"})
    problems = problems_of(raw, secret_keys=("app",))
    assert problems and all("s3cr3t-value" not in problem and "[secret]" in problem for problem in problems)


def test_secret_config_values_stay_secret_in_the_model() -> None:
    cfg = parse_platform_config(config_for("prod", app={"notificationApiKey": "key-123"}), secret_keys=("app",))
    assert cfg.app.notification_api_key is not None
    assert "key-123" not in repr(cfg) and "key-123" not in str(cfg.app)
    assert cfg.app.notification_api_key.get_secret_value() == "key-123"


def test_environment_profiles_are_defaults_a_stack_file_can_override() -> None:
    cfg = parse_platform_config(
        config_for("prod", database={"readerCount": 4}, observability={"logRetentionDays": 365})
    )
    assert cfg.database.reader_count == 4
    assert cfg.observability.log_retention_days == 365
    assert cfg.database.instance_class == "db.r7g.large"  # still the prod profile's


def test_ecs_exec_is_on_in_staging_off_in_prod_and_chosen_per_service() -> None:
    staging = parse_platform_config(stack_file_config("staging"))
    prod = parse_platform_config(stack_file_config("prod"))
    assert (staging.services.api.execute_command, staging.services.worker.execute_command) == (True, True)
    assert (prod.services.api.execute_command, prod.services.worker.execute_command) == (False, False)
    incident = parse_platform_config(config_for("prod", services={"api": {"executeCommand": True}}))
    assert (incident.services.api.execute_command, incident.services.worker.execute_command) == (True, False)
    assert problems_of(config_for("staging", services={"worker": {"executeCommand": "sometimes"}})) == [
        "platform:services.worker.executeCommand: input should be a valid boolean, unable to interpret input"
        ' (got "sometimes")'
    ]


# --- malformed configs: always a StackConfigError, never another exception --------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=12,
)
known_paths = st.sampled_from(
    [
        ("environment",),
        ("region",),
        ("availabilityZones",),
        ("network", "vpcCidr"),
        ("network", "natStrategy"),
        ("network", "public", "prefixLength"),
        ("network", "private", "cidrs"),
        ("edge", "domain"),
        ("edge", "wafRateLimit"),
        ("services", "api", "cpu"),
        ("services", "worker", "memory"),
        ("services", "api", "minCount"),
        ("database", "serverlessV2"),
        ("database", "readerCount"),
        ("cache", "replicaCount"),
        ("messaging", "queues"),
        ("messaging", "queues", "orders", "fifo"),
        ("observability", "logRetentionDays"),
        ("recovery", "copyRegion"),
        ("budget", "alertThresholdsPercent"),
        ("tags",),
        ("app", "corsOrigins"),
    ]
)


def _set(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = raw
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    environment=st.sampled_from(["prod", "staging"]),
    mutations=st.lists(st.tuples(known_paths, json_values), min_size=1, max_size=4),
)
def test_random_malformed_configs_give_a_validation_error_and_nothing_else(
    environment: str, mutations: list[tuple[tuple[str, ...], Any]]
) -> None:
    raw = config_for(environment)
    for path, value in mutations:
        _set(raw, path, value)
    try:
        cfg = parse_platform_config(raw)
    except StackConfigError as error:
        assert error.problems
        for problem in error.problems:
            assert str(problem).startswith("platform:") and "(got " in str(problem)
    else:
        assert isinstance(cfg, PlatformConfig)


@settings(max_examples=100, deadline=None)
@given(raw=st.dictionaries(st.text(max_size=15), json_values, max_size=6))
def test_arbitrary_documents_never_escape_as_other_exceptions(raw: dict[str, Any]) -> None:
    with pytest.raises(StackConfigError):
        parse_platform_config(raw)


def test_the_committed_editor_schema_matches_the_config_models() -> None:
    committed = json.loads((REPO / "schema" / "stack-config.schema.json").read_text())
    assert committed == stack_file_schema(), "run `platformctl schema -o schema/stack-config.schema.json`"


def test_both_stack_files_point_editors_at_the_schema() -> None:
    for stack in ("prod", "staging"):
        first_line = (REPO / f"Pulumi.{stack}.yaml").read_text().splitlines()[0]
        assert first_line == "# yaml-language-server: $schema=./schema/stack-config.schema.json"
    assert Path(REPO / "schema" / "stack-config.schema.json").is_file()


@pytest.mark.parametrize("key", ["([", "int", "function-after[x]"])
def test_odd_unknown_keys_are_reported_by_name(key: str) -> None:
    problems = problems_of({**config_for("prod"), key: 1})
    assert any(problem.startswith(f"platform:{key}: unknown key") for problem in problems), problems
