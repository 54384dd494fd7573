"""The whole program, as both stacks plan it: the layers wired to each other and to the app's contract."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest

from app import contract
from platformctl.diff import diff_plans
from platformctl.plan import SECRET_MASK, Plan, PlannedResource, run_plan
from tests.support import REPO, by_name

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
# Actions AWS cannot scope to a resource: the only ones allowed a `*` resource.
# Actions that take no resource ARN (ECS Exec: the ssmmessages channels, and the session log group lookup).
UNSCOPABLE_PREFIXES = (
    "xray:",
    "ssmmessages:",
    "logs:DescribeLogGroups",
    "tag:GetResources",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
)
# Wildcards a condition narrows to this stack's (a tag, the VPC): the FIS role's endpoint and group swap.
CONDITION_NARROWED = (":vpc-endpoint/*", ":security-group/*")
SECRET_LOOKING = ("PASSWORD", "SECRET", "TOKEN", "API_KEY")


@pytest.fixture(params=["prod", "staging"])
def plan(request: pytest.FixtureRequest) -> Plan:
    fixture: Plan = request.getfixturevalue(f"{request.param}_plan")
    return fixture


def containers(plan: Plan) -> list[dict[str, Any]]:
    return [
        container
        for task in plan.of_type("aws:ecs/taskDefinition:TaskDefinition")
        for container in json.loads(task.inputs["containerDefinitions"])
    ]


def test_every_layer_is_in_the_plan(plan: Plan) -> None:
    components = {r.type for r in plan.resources if not r.custom}
    assert {
        "platform:security:Security",
        "platform:network:Network",
        "platform:database:Database",
        "platform:cache:Cache",
        "platform:messaging:Messaging",
        "platform:storage:Storage",
        "platform:observability:Observability",
        "platform:recovery:Recovery",
        "platform:load_balancer:LoadBalancer",
        "platform:edge:Edge",
        "platform:service:Cluster",
        "platform:service:FargateService",
    } <= components


def test_no_ingress_from_the_internet_anywhere(plan: Plan) -> None:
    for rule in plan.of_type(INGRESS):
        assert rule.inputs.get("cidrIpv4") not in ("0.0.0.0/0",) and "cidrIpv6" not in rule.inputs, rule.name
    for group in plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not group.inputs.get("ingress"), group.name  # rules are separate resources


def test_the_security_group_chain(plan: Plan) -> None:
    def sources(group: PlannedResource) -> set[str]:
        return {
            r.inputs.get("referencedSecurityGroupId") or r.inputs.get("prefixListId") or r.inputs["cidrIpv4"]
            for r in plan.of_type(INGRESS)
            if r.inputs["securityGroupId"] == group.id
        }

    alb, api, worker = by_name(plan, "load-balancer-sg"), by_name(plan, "app-api"), by_name(plan, "app-worker")
    proxy, cache = by_name(plan, "database-proxy-sg"), by_name(plan, "cache-sg")
    (prefix_list,) = sources(alb)
    assert prefix_list.startswith("pl-")  # CloudFront's origin-facing list, nothing else
    assert sources(api) == {alb.id}
    assert sources(worker) == set()
    assert sources(proxy) == {api.id, worker.id}
    assert sources(cache) == {api.id, worker.id}
    api_port = next(r for r in plan.of_type(INGRESS) if r.inputs["securityGroupId"] == api.id)
    assert api_port.inputs["fromPort"] == contract.API_PORT


def test_tasks_are_non_root_read_only_and_keep_secrets_out_of_the_environment(plan: Plan) -> None:
    secret_arns = {s.outputs["arn"] for s in plan.of_type("aws:secretsmanager/secret:Secret")}
    for container in containers(plan):
        assert container["user"] != "root" and not container["user"].startswith("0")
        assert container["readonlyRootFilesystem"] is True and container["privileged"] is False
        for variable in container.get("environment", []):
            # A secret's ARN (ADMIN_TOKEN_SECRET_ID: the app reads the rotating value at run time) is not its value.
            if not variable["value"].startswith("arn:"):
                assert not any(word in variable["name"] for word in SECRET_LOOKING), variable["name"]
            assert variable["value"] != SECRET_MASK
        for secret in container.get("secrets", []):
            assert secret["valueFrom"].split(":password::")[0] in secret_arns | {plan.outputs["database_secret_arn"]}


def test_every_iam_statement_is_scoped_to_this_stacks_arns(plan: Plan) -> None:
    stack_arns = {r.outputs["arn"] for r in plan.custom_resources() if isinstance(r.outputs.get("arn"), str)}
    stack_arns.add(plan.outputs["database_secret_arn"])  # created by RDS for the cluster
    # `rds-db:connect` names a database user at the proxy or the cluster, by their resource ids.
    database = by_name(plan, "database").outputs
    stack_arns |= {database["proxy_connect_arn"], database["cluster_connect_arn"]}
    # ECS Exec's operator reaches the tasks of this stack's cluster (`task/<cluster name>/*`), which come and go.
    stack_arns |= {
        c.outputs["arn"].replace(":cluster/", ":task/") + "/*" for c in plan.of_type("aws:ecs/cluster:Cluster")
    }
    # FIS lists the API's tasks, which IAM authorizes on the cluster's container instances.
    stack_arns |= {
        c.outputs["arn"].replace(":cluster/", ":container-instance/") + "/*"
        for c in plan.of_type("aws:ecs/cluster:Cluster")
    }
    policies = [*plan.of_type("aws:iam/rolePolicy:RolePolicy"), *plan.of_type("aws:iam/policy:Policy")]
    assert policies
    for policy in policies:
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(a != "*" and not a.endswith(":*") for a in actions), policy.name
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if resources == ["*"]:
                assert all(a.startswith(UNSCOPABLE_PREFIXES) for a in actions), (policy.name, actions)
            elif statement.get("Condition") and all(arn.endswith(CONDITION_NARROWED) for arn in resources):
                # FIS swaps the SQS endpoint's groups: any endpoint or group, narrowed to this stack's by a condition.
                assert all(":123456789012:" in arn for arn in resources), (policy.name, resources)
            else:
                # An ARN of this plan, or a log group's streams (`<log group arn>:*`).
                assert all(arn.removesuffix(":*") in stack_arns for arn in resources), (policy.name, resources)


def test_the_api_reaches_the_data_layers_through_the_contracts_settings(plan: Plan) -> None:
    api = next(c for c in containers(plan) if c["name"] == "api")
    environment = {variable["name"]: variable["value"] for variable in api["environment"]}
    assert set(environment) <= contract.SETTING_NAMES
    assert environment[contract.DB_WRITER_HOST] == plan.outputs["database_proxy_endpoint"]
    assert environment[contract.REDIS_URL].startswith(f"rediss://{plan.outputs['cache_primary_endpoint']}:")
    assert environment[contract.QUEUE_URL] == plan.outputs["queue_urls"]["orders"]
    assert {s["name"] for s in api["secrets"]} <= contract.SECRET_SETTING_NAMES
    assert api["command"] == list(contract.API_COMMAND)
    assert api["stopTimeout"] > contract.GRACEFUL_TIMEOUT_SECONDS
    worker = next(c for c in containers(plan) if c["name"] == "worker")
    assert worker["command"] == list(contract.WORKER_COMMAND)
    assert contract.ADMIN_TOKEN not in {s["name"] for s in worker["secrets"]}  # the worker has no admin routes


def test_the_alb_and_services_feed_observability_and_rollback(plan: Plan) -> None:
    alarms = {a.name.removeprefix("load-balancer-"): a for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    (alb,) = plan.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert alarms["alb-5xx"].inputs["dimensions"] == {"LoadBalancer": alb.outputs["arnSuffix"]}
    api = by_name(plan, "api-service")
    # The site failing, or the API's SLOs burning at page rate (their short windows), rolls a deployment back.
    watched = ("alb-5xx", "target-5xx", "slo-api-availability-page-1h-short", "slo-api-latency-page-1h-short")
    assert sorted(api.inputs["alarms"]["alarmNames"]) == sorted(alarms[label].inputs["name"] for label in watched)
    log_groups = {g.inputs["name"] for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for container in containers(plan):
        assert container["logConfiguration"]["options"]["awslogs-group"] in log_groups


def test_outputs_name_the_site_and_hold_no_secret(plan: Plan) -> None:
    outputs = plan.outputs
    assert outputs["site_url"].startswith("https://")
    assert outputs["alb_dns_name"].endswith(".elb.amazonaws.com")
    assert outputs["distribution_domain_name"].endswith(".cloudfront.net")
    assert outputs["service_names"] == {"api": "api", "worker": "worker"}
    assert SECRET_MASK not in json.dumps(outputs)


def test_api_tasks_migrate_first_and_worker_tasks_run_the_outbox_relay(plan: Plan) -> None:
    by_name_in_task = {c["name"]: c for c in containers(plan)}
    init, api = by_name_in_task["init"], by_name_in_task["api"]
    assert init["command"] == list(contract.MIGRATE_COMMAND) and init["essential"] is False
    assert {"containerName": "init", "condition": "SUCCESS"} in api["dependsOn"]
    relay = by_name_in_task["relay"]
    assert relay["command"] == list(contract.RELAY_COMMAND) and relay["essential"] is True
    assert relay["environment"] == by_name_in_task["worker"]["environment"]


def test_the_worker_gets_its_dead_letter_queue_and_job_timeout(plan: Plan) -> None:
    worker = next(c for c in containers(plan) if c["name"] == "worker")
    environment = {variable["name"]: variable["value"] for variable in worker["environment"]}
    assert environment[contract.DEAD_LETTER_QUEUE_URL] == plan.outputs["dead_letter_queue_urls"]["orders"]
    assert environment[contract.JOB_TIMEOUT_SECONDS] == "90"
    assert contract.NOTIFICATION_API_KEY not in {s["name"] for s in worker["secrets"]}  # none configured


# The URNs of the resources each stack file deployed before the re-layout of issue 16 (custom resources, without
# the `urn:pulumi:<stack>::<project>::` prefix): written from the plans of that commit (1f257ad).
DEPLOYED_URNS = REPO / "tests" / "urns"


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_no_deployed_resource_changes_its_urn_without_an_alias(stack: str) -> None:
    """A resource whose URN changes (a new parent, type or name) without an alias naming its old URN is one
    Pulumi deletes and creates again: the database and the cache included. A resource removed on purpose
    leaves the list in the same change."""
    head = run_plan(REPO, stack)
    prefix = f"urn:pulumi:{stack}::{head.project}::"
    deployed = [
        {"urn": prefix + line, "type": line.rsplit("::", 1)[0].rsplit("$", 1)[-1], "custom": True}
        for line in (DEPLOYED_URNS / f"{stack}.txt").read_text().split()
    ]
    diff = diff_plans({"stack": stack, "resources": deployed}, head.to_json())
    assert [change.urn for change in diff.changes if change.action == "delete"] == []


def test_every_resource_is_a_child_of_its_layer(plan: Plan) -> None:
    """Components build their children with `parent=self`: a resource at the stack's root would escape its
    layer's aliases (and the diagram's layers). Only the providers live there."""
    root = next(r.urn for r in plan.resources if r.type == "pulumi:pulumi:Stack")
    at_root = [r.name for r in plan.resources if r.parent == root and r.custom and not r.type.startswith("pulumi:")]
    assert at_root == []


def test_the_layers_know_of_the_app_only_through_its_contract() -> None:
    """`components/` builds infrastructure for any app: what it must know of this one (ports, paths, commands,
    settings) is `app/contract.py`, which the app reads too."""
    for path in sorted((REPO / "components").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                base = node.module
                modules = [f"{base}.{alias.name}" for alias in node.names] if base == "app" else [base]
            else:
                continue
            app_modules = [m for m in modules if m == "app" or m.startswith("app.")]
            assert all(m == "app.contract" for m in app_modules), (path.relative_to(REPO), app_modules)
