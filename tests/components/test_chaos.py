"""Chaos as code: the FIS experiment templates, what stops them, what their role may touch, and their config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.chaos import ChaosArgs
from components.iam import Account
from components.naming import LogPolicy, Naming
from platformctl.plan import Plan
from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from stack_config.schema import ChaosConfig
from tests.support import by_name, config_for, layer, plan_with

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
EXPERIMENT_TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"


@pytest.fixture(scope="module")
def custom_plan() -> Plan:
    """Staging with two experiments, a smaller share of tasks and a longer cache outage."""
    chaos = {"experiments": ["stop-api-tasks", "cache-az-power"], "stopTaskPercent": 25, "cacheInterruptionMinutes": 10}
    return plan_with(config_for("staging", chaos=chaos))


def templates(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r.name.removeprefix("chaos-"): r.inputs for r in plan.of_type(EXPERIMENT_TEMPLATE)}


def only(template: dict[str, Any], key: str) -> dict[str, Any]:
    (item,) = template[key]
    return dict(item)


def test_staging_has_the_default_experiments_and_prod_none(staging_plan: Plan, prod_plan: Plan) -> None:
    # database-latency is opt-in: it adds AWS's SSM agent sidecar (root, writable root) to the API's tasks.
    assert sorted(templates(staging_plan)) == ["aurora-failover", "cache-az-power", "sqs-unreachable", "stop-api-tasks"]
    assert not prod_plan.of_type(EXPERIMENT_TEMPLATE)
    assert not [r for r in prod_plan.resources if r.name.startswith("chaos")]


FAST_BURNS = ("api-availability", "api-latency", "worker-availability")


def test_every_experiment_stops_on_the_apis_rollback_alarms_and_every_fast_burn(staging_plan: Plan) -> None:
    rollback = [by_name(staging_plan, f"load-balancer-{label}").outputs["arn"] for label in ("alb-5xx", "target-5xx")]
    # Metric alarms, not the composites: ECS and FIS poll DescribeAlarms, which returns composites only on request.
    burns = [by_name(staging_plan, f"slo-{indicator}-page-1h-short").outputs["arn"] for indicator in FAST_BURNS]
    for name, template in templates(staging_plan).items():
        conditions = [dict(c) for c in template["stopConditions"]]
        assert {c["source"] for c in conditions} == {"aws:cloudwatch:alarm"}, name
        assert sorted(c["value"] for c in conditions) == sorted(rollback + burns), name
        # FIS quota L-872EC72B: five stop conditions per template, not adjustable.
        assert len(conditions) <= 5, name


def test_targets_are_this_stacks_api_tasks_cluster_and_cache(staging_plan: Plan) -> None:
    found = templates(staging_plan)
    tasks = only(found["stop-api-tasks"], "targets")
    assert tasks["resourceType"] == "aws:ecs:task" and tasks["selectionMode"] == "PERCENT(50)"
    assert tasks["parameters"] == {
        "cluster": by_name(staging_plan, "compute-cluster").outputs["name"],
        "service": by_name(staging_plan, "api-service").outputs["name"],
    }
    assert [dict(tag) for tag in tasks["resourceTags"]] == [{"key": "Name", "value": "platform-staging-api"}]
    aurora = only(found["aurora-failover"], "targets")
    assert aurora["resourceArns"] == [by_name(staging_plan, "database-cluster").outputs["arn"]]
    assert only(found["aurora-failover"], "actions")["actionId"] == "aws:rds:failover-db-cluster"
    cache = only(found["cache-az-power"], "targets")
    assert cache["resourceArns"] == [by_name(staging_plan, "cache-replication-group").outputs["arn"]]
    assert cache["parameters"] == {"availabilityZoneIdentifier": "us-east-1a"}
    action = only(found["cache-az-power"], "actions")
    assert [dict(p) for p in action["parameters"]] == [{"key": "duration", "value": "PT5M"}]


def test_config_picks_the_experiments_and_their_sizes(custom_plan: Plan) -> None:
    found = templates(custom_plan)
    assert sorted(found) == ["cache-az-power", "stop-api-tasks"]
    assert only(found["stop-api-tasks"], "targets")["selectionMode"] == "PERCENT(25)"
    action = only(found["cache-az-power"], "actions")
    assert [dict(p) for p in action["parameters"]] == [{"key": "duration", "value": "PT10M"}]
    # The role is granted what the chosen experiments need and nothing for the one left out.
    policy = json.loads(layer(custom_plan, "chaos").of_type(ROLE_POLICY)[0].inputs["policy"])
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert "rds:FailoverDBCluster" not in actions and "ecs:StopTask" in actions


def test_the_role_is_assumed_by_fis_for_this_account_and_scoped_to_its_targets(staging_plan: Plan) -> None:
    chaos = layer(staging_plan, "chaos")
    trust = json.loads(by_name(chaos, "chaos-role").inputs["assumeRolePolicy"])
    (assume,) = trust["Statement"]
    assert assume["Principal"] == {"Service": "fis.amazonaws.com"}
    assert assume["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert assume["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:fis:us-east-1:123456789012:experiment/*"}
    (policy,) = chaos.of_type(ROLE_POLICY)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    cluster = by_name(staging_plan, "compute-cluster").outputs["name"]
    own = {
        by_name(staging_plan, "database-cluster").outputs["arn"],
        by_name(staging_plan, "cache-replication-group").outputs["arn"],
        by_name(staging_plan, "network-vpc").outputs["arn"],
        f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/*",
        f"arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/*",
    }
    # Any endpoint or group, but only where a condition narrows it to this stack's endpoint or VPC.
    narrowed = {
        "arn:aws:ec2:us-east-1:123456789012:vpc-endpoint/*",
        "arn:aws:ec2:us-east-1:123456789012:security-group/*",
    }
    # Calls that take no resource: what FIS needs to find its targets.
    unscoped = {"tag:GetResources", "ec2:DescribeVpcEndpoints", "ec2:DescribeSecurityGroups"}
    for statement in statements:
        if statement["Resource"] == ["*"]:
            assert set(statement["Action"]) <= unscoped, statement
        elif set(statement["Resource"]) <= narrowed:
            assert statement.get("Condition"), statement
        else:
            assert set(statement["Resource"]) <= own, statement
    listing = next(s for s in statements if s["Action"] == ["ecs:ListTasks"])
    assert listing["Condition"] == {
        "ArnEquals": {"ecs:cluster": by_name(staging_plan, "compute-cluster").outputs["arn"]}
    }


def test_experiments_log_to_a_log_group_encrypted_with_the_logs_key(staging_plan: Plan) -> None:
    group = by_name(staging_plan, "chaos-logs")
    assert group.inputs["kmsKeyId"] == by_name(staging_plan, "security-logs-key").outputs["arn"]
    assert group.inputs["retentionInDays"] == 14
    for name, template in templates(staging_plan).items():
        logging = dict(template["logConfiguration"])
        assert logging["logSchemaVersion"] == 2, name
        assert dict(logging["cloudwatchLogsConfiguration"]) == {"logGroupArn": group.outputs["arn"] + ":*"}, name


def test_an_experiment_nothing_can_stop_is_refused() -> None:
    naming = Naming("platform", "test", "staging")
    account = Account(account_id=None, partition=None, region="us-east-1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"no stop alarm .*platform:chaos.enabled"):
        ChaosArgs(
            ChaosConfig(), naming, account, LogPolicy(14, "key"), "c", "arn", "s", "api", "db", "cache", "us-east-1a"
        )


@pytest.mark.parametrize(
    ("chaos", "problem"),
    [
        ({"stopTaskPercent": 80}, "platform:chaos.stopTaskPercent: input should be less than or equal to 50"),
        ({"experiments": ["stop-api-tasks", "stop-api-tasks"]}, "name each experiment once"),
        ({"experiments": ["throttle-sqs"]}, "platform:chaos.experiments[0]: input should be 'stop-api-tasks'"),
        ({"experiments": []}, "chaos.experiments"),
        ({"cacheInterruptionMinutes": 0}, "chaos.cacheInterruptionMinutes"),
    ],
)
def test_bad_chaos_config_names_the_field(chaos: dict[str, Any], problem: str) -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(config_for("staging", chaos=chaos))
    assert problem in str(caught.value)
