"""The experiments added for issue 20 (SQS endpoint outage, database latency) and the SLO fast burn that stops them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.chaos import MAX_STOP_CONDITIONS, ChaosArgs
from components.ecs.fis_agent import FIS_AGENT
from components.ecs.service import MAX_DEPLOYMENT_ALARMS
from components.iam import Account
from components.naming import LogPolicy, Naming
from platformctl.plan import Plan
from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from stack_config.schema import ChaosConfig
from tests.components.test_iam import analyze_policy_string, documents, unexplained
from tests.support import by_name, config_for, layer, plan_with

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
EXPERIMENT_TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
LATENCY = {
    "experiments": ["database-latency", "sqs-unreachable"],
    "databaseLatencyMs": 300,
    "databaseJitterMs": 40,
    "databaseLatencyMinutes": 3,
    "databaseLatencyTaskPercent": 25,
    "sqsOutageMinutes": 2,
}


@pytest.fixture(scope="module")
def latency_plan() -> Plan:
    """Staging with database-latency opted in (and ECS Exec off on the API, which FIS requires for it)."""
    return plan_with(config_for("staging", chaos=LATENCY, services={"api": {"executeCommand": False}}))


def template(plan: Plan, label: str) -> dict[str, Any]:
    return by_name(plan, f"chaos-{label}").inputs


def only(inputs: dict[str, Any], key: str) -> dict[str, Any]:
    (item,) = inputs[key]
    return dict(item)


def parameters(action: dict[str, Any]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in action["parameters"]}


def statements(plan: Plan) -> list[dict[str, Any]]:
    (policy,) = layer(plan, "chaos").of_type(ROLE_POLICY)
    found: list[dict[str, Any]] = json.loads(policy.inputs["policy"])["Statement"]
    return found


def test_sqs_unreachable_blocks_this_stacks_sqs_endpoint_for_the_configured_minutes(latency_plan: Plan) -> None:
    inputs = template(latency_plan, "sqs-unreachable")
    action = only(inputs, "actions")
    assert action["actionId"] == "aws:network:disrupt-vpc-endpoint"
    assert parameters(action) == {"duration": "PT2M"}
    target = only(inputs, "targets")
    assert target["resourceType"] == "aws:ec2:vpc-endpoint" and target["selectionMode"] == "ALL"
    # The tag network.py puts on the SQS interface endpoint, and on no other.
    assert [dict(tag) for tag in target["resourceTags"]] == [{"key": "Name", "value": "platform-test-sqs-endpoint"}]
    endpoints = [r for r in latency_plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.inputs.get("tags")]
    named = [r for r in endpoints if r.inputs["tags"].get("Name") == "platform-test-sqs-endpoint"]
    assert [r.inputs["serviceName"] for r in named] == ["com.amazonaws.us-east-1.sqs"]


def test_sqs_unreachable_may_swap_groups_only_on_that_endpoint_and_in_this_vpc(latency_plan: Plan) -> None:
    found = {s["Sid"]: s for s in statements(latency_plan)}
    vpc = by_name(latency_plan, "network-vpc").outputs["arn"]
    swap = found["SwapSqsEndpointGroups"]
    assert swap["Action"] == ["ec2:ModifyVpcEndpoint"]
    assert swap["Condition"] == {"StringEquals": {"aws:ResourceTag/Name": "platform-test-sqs-endpoint"}}
    assert found["ManageGroupsInThisVpc"]["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc}}
    assert found["CreateGroupsInThisVpc"]["Resource"] == [vpc]


def test_database_latency_slows_a_share_of_the_api_tasks_toward_the_proxy(latency_plan: Plan) -> None:
    inputs = template(latency_plan, "database-latency")
    action = only(inputs, "actions")
    assert action["actionId"] == "aws:ecs:task-network-latency"
    proxy = by_name(latency_plan, "database-proxy").outputs["endpoint"]
    reader = by_name(latency_plan, "database-proxy-read-only").outputs["endpoint"]
    assert parameters(action) == {
        "duration": "PT3M",
        "delayMilliseconds": "300",
        "jitterMilliseconds": "40",
        "sources": f"{proxy},{reader}",
        "useEcsFaultInjectionEndpoints": "true",
    }
    target = only(inputs, "targets")
    assert target["resourceType"] == "aws:ecs:task" and target["selectionMode"] == "PERCENT(25)"
    assert target["parameters"]["service"] == by_name(latency_plan, "api-service").outputs["name"]


def test_database_latency_role_runs_the_fis_document_on_this_clusters_tasks_only(latency_plan: Plan) -> None:
    found = {s["Sid"]: s for s in statements(latency_plan)}
    cluster = by_name(latency_plan, "compute-cluster").outputs["name"]
    assert found["RunLatencyDocument"]["Resource"] == ["arn:aws:ssm:us-east-1::document/AWSFIS-Run-Network-Latency-ECS"]
    assert found["OnThisClustersTasks"]["Condition"] == {
        "ArnLike": {"ssm:resourceTag/ECS_TASK_ARN": f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/*"}
    }
    # The FIS action reference's permission list for aws:ecs:task-network-latency, each granted.
    granted = {action for statement in found.values() for action in statement["Action"]}
    required = {
        "ecs:DescribeTasks",
        "ecs:DescribeContainerInstances",
        "ec2:DescribeInstances",
        "ec2:DescribeSubnets",
        "ssm:SendCommand",
        "ssm:ListCommands",
        "ssm:CancelCommand",
    }
    assert required <= granted
    # Two experiments resolve the API's tasks: each Sid once, or IAM refuses the policy.
    sids = [s["Sid"] for s in statements(latency_plan)]
    assert len(sids) == len(set(sids))


def test_only_the_api_task_accepts_fault_injection_and_only_when_database_latency_is_on(
    latency_plan: Plan, staging_plan: Plan, prod_plan: Plan
) -> None:
    def flags(plan: Plan, service: str) -> tuple[Any, Any]:
        task = by_name(plan, f"{service}-task").inputs
        return task.get("enableFaultInjection"), task.get("pidMode")

    assert flags(latency_plan, "api") == (True, "task")
    assert flags(latency_plan, "worker") == (None, None)
    for plan in (staging_plan, prod_plan):
        assert flags(plan, "api") == (None, None)


def test_the_apis_deployments_roll_back_on_its_fast_burn_alarms(staging_plan: Plan, prod_plan: Plan) -> None:
    for plan in (staging_plan, prod_plan):
        alarms = dict(by_name(plan, "api-service").inputs["alarms"])
        burns = [by_name(plan, f"slo-api-{kind}-page-1h-short").outputs["name"] for kind in ("availability", "latency")]
        assert set(burns) <= set(alarms["alarmNames"]), plan.stack
        assert alarms["rollback"] is True and alarms["enable"] is True
        assert len(alarms["alarmNames"]) <= MAX_DEPLOYMENT_ALARMS
        # The fast burn pages through its composite; the window alarms notify nobody.
        assert by_name(plan, "slo-api-availability-page-1h-short").inputs["actionsEnabled"] is False


def test_the_fast_burn_alarm_is_the_fastest_page_pairs_short_window() -> None:
    plan = plan_with(config_for("staging"))
    alarm = by_name(plan, "slo-api-availability-page-1h-short").inputs
    (ratio,) = [q for q in alarm["metricQueries"] if q.get("returnData")]
    periods = {q["metric"]["period"] for q in alarm["metricQueries"] if q.get("metric")}
    assert periods == {300} and ratio["id"] == "bad"
    # 14.4 x the 0.1 % budget of a 99.9 % objective.
    assert alarm["threshold"] == pytest.approx(0.0144)


def test_more_stop_alarms_than_fis_allows_are_refused() -> None:
    naming = Naming("platform", "test", "staging")
    account = Account(account_id=None, partition=None, region="us-east-1")  # type: ignore[arg-type]
    alarms = [f"arn:alarm:{i}" for i in range(MAX_STOP_CONDITIONS + 1)]
    with pytest.raises(ValueError, match=r"6 stop alarms; FIS allows 5"):
        ChaosArgs(
            ChaosConfig(),
            naming,
            account,
            LogPolicy(14, "key"),
            "c",
            "arn",
            "s",
            "api",
            "db",
            "cache",
            "us-east-1a",
            stop_alarm_arns=alarms,
        )


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"chaos": {"experiments": ["database-latency"]}, "services": {"api": {"executeCommand": True}}},
            "database-latency needs services.api.executeCommand false",
        ),
        (
            {"chaos": {"experiments": ["sqs-unreachable"]}, "network": {"vpcEndpoints": False}},
            "sqs-unreachable blocks the SQS interface endpoint: it needs network.vpcEndpoints true",
        ),
        ({"chaos": {"databaseLatencyMs": 0}}, "chaos.databaseLatencyMs"),
        ({"chaos": {"databaseLatencyTaskPercent": 101}}, "chaos.databaseLatencyTaskPercent"),
    ],
)
def test_an_experiment_the_stack_cannot_run_is_refused_naming_the_field(
    overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(config_for("staging", **overrides))
    assert problem in str(caught.value)


def test_without_endpoints_the_default_experiments_leave_the_endpoint_fault_out() -> None:
    config = parse_platform_config(config_for("staging", chaos={"enabled": True}, network={"vpcEndpoints": False}))
    assert "sqs-unreachable" not in config.chaos.experiments
    assert "stop-api-tasks" in config.chaos.experiments
    with_endpoints = parse_platform_config(config_for("staging", chaos={"enabled": True}))
    assert "sqs-unreachable" in with_endpoints.chaos.experiments


# --- the SSM agent sidecar FIS's task actions need (components/ecs/fis_agent.py) ---------------------------------

ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def containers(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(by_name(plan, f"{service}-task").inputs["containerDefinitions"])
    return {c["name"]: c for c in found}


def task_statements(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    document = json.loads(by_name(plan, f"{service}-task-policy").inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def test_with_database_latency_the_api_task_runs_aws_ssm_agent_sidecar_as_documented(latency_plan: Plan) -> None:
    api = containers(latency_plan, "api")
    agent = api[FIS_AGENT]
    repository, tag = agent["image"].split(":")
    assert repository == "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent" and tag[0].isdigit()
    assert agent["essential"] is False and agent["privileged"] is False
    # AWS documents it as root with a writable root: it installs its tools and writes its registration.
    assert agent["user"] == "root" and agent["readonlyRootFilesystem"] is False and agent["mountPoints"] == []
    role = by_name(latency_plan, "api-fis-agent-role")
    assert agent["environment"] == [{"name": "MANAGED_INSTANCE_ROLE_NAME", "value": role.outputs["name"]}]
    script = agent["command"][-1]
    for step in (
        "aws ssm create-activation --iam-role $MANAGED_INSTANCE_ROLE_NAME",
        "Key=ECS_TASK_ARN,Value=$ECS_TASK_ARN",
        "Key=FAULT_INJECTION_SIDECAR,Value=true",
        "amazon-ssm-agent -register",
        "trap term_handler SIGTERM",
        "aws ssm delete-activation",
        "aws ssm deregister-managed-instance",
    ):
        assert step in script, step
    # Logged beside the app, small, within the task's size with the collector.
    app, collector = api["api"], api["otel-collector"]
    assert agent["logConfiguration"]["options"]["awslogs-group"] == app["logConfiguration"]["options"]["awslogs-group"]
    assert agent["logConfiguration"]["options"]["awslogs-stream-prefix"] == FIS_AGENT
    task = by_name(latency_plan, "api-task").inputs
    assert agent["cpu"] + collector["cpu"] < int(task["cpu"])
    assert agent["memoryReservation"] + collector["memoryReservation"] < int(task["memory"])
    assert (task["enableFaultInjection"], task["pidMode"]) == (True, "task")
    # The app never waits on it, and the worker has none.
    assert all(d["containerName"] != FIS_AGENT for d in app["dependsOn"])
    assert FIS_AGENT not in containers(latency_plan, "worker")


def test_the_managed_instance_role_is_ssms_for_this_account_with_the_core_policy(latency_plan: Plan) -> None:
    role = by_name(latency_plan, "api-fis-agent-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "ssm.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole"]
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ssm:us-east-1:123456789012:*"},
    }
    attached = [a.inputs["policyArn"] for a in latency_plan.of_type(ATTACHMENT) if a.name == "api-fis-agent-managed"]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]


def test_the_api_task_role_may_register_and_deregister_only_this_clusters_tasks(latency_plan: Plan) -> None:
    found = task_statements(latency_plan, "api")
    cluster = by_name(latency_plan, "compute-cluster").outputs["name"]
    tasks = f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/*"
    role_arn = by_name(latency_plan, "api-fis-agent-role").outputs["arn"]
    activates = found["FisAgentActivates"]
    assert activates["Action"] == ["ssm:CreateActivation", "ssm:AddTagsToResource"]
    assert activates["Condition"] == {"StringLike": {"aws:RequestTag/ECS_TASK_ARN": tasks}}
    passes = found["FisAgentPassesInstanceRole"]
    assert passes["Resource"] == [role_arn]
    assert passes["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
    deregisters = found["FisAgentDeregisters"]
    assert deregisters["Resource"] == ["arn:aws:ssm:us-east-1:123456789012:managed-instance/*"]
    assert deregisters["Condition"] == {"StringLike": {"ssm:resourceTag/ECS_TASK_ARN": tasks}}
    assert found["FisAgentDeletesActivation"]["Action"] == ["ssm:DeleteActivation"]
    assert not [sid for sid in task_statements(latency_plan, "worker") if sid.startswith("FisAgent")]


def test_without_database_latency_there_is_no_sidecar_and_no_managed_instance_role(
    staging_plan: Plan, prod_plan: Plan
) -> None:
    chaos_on = plan_with(config_for("staging", chaos={"enabled": True}))
    for plan in (staging_plan, prod_plan, chaos_on):
        for service in ("api", "worker"):
            assert FIS_AGENT not in containers(plan, service), (plan.stack, service)
            assert not [sid for sid in task_statements(plan, service) if sid.startswith("FisAgent")]
        assert not [r.name for r in plan.of_type(ROLE) if "fis-agent" in r.name]


def test_the_sidecars_documents_pass_parliament(latency_plan: Plan) -> None:
    linted = [
        (resource, document)
        for resource, document in documents(latency_plan)
        if resource.name in ("api-fis-agent-role", "api-task-policy")
    ]
    assert len(linted) == 2
    problems = {
        resource.name: found
        for resource, document in linted
        if (found := unexplained(analyze_policy_string(json.dumps(document)).findings))
    }
    assert problems == {}
