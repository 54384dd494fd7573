"""`platformctl cost`: monthly USD per resource, layer and total from a plan, list prices and usage assumptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from platformctl.cli import cli
from platformctl.cost import PRICES_DIR, UsageAssumptions, estimate
from platformctl.plan import Plan

runner = CliRunner()
STACK_URN = "urn:pulumi:dev::platform::pulumi:pulumi:Stack::platform-dev"


def component(name: str) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:dev::platform::platform:{name}:X::{name}",
        "type": f"platform:{name}:X",
        "name": name,
        "parent": STACK_URN,
        "custom": False,
        "inputs": {},
    }


def custom(
    parent: dict[str, Any], type_token: str, name: str, deps: dict[str, list[str]] | None = None, **inputs: Any
) -> dict[str, Any]:
    dependencies = sorted({urn for urns in (deps or {}).values() for urn in urns})
    return {
        "urn": f"urn:pulumi:dev::platform::{parent['type']}${type_token}::{name}",
        "type": type_token,
        "name": name,
        "parent": parent["urn"],
        "custom": True,
        "inputs": inputs,
        "dependencies": dependencies,
        "propertyDependencies": deps or {},
    }


def hand_plan(budget: float = 500) -> dict[str, Any]:
    """3 NAT gateways, an API service on Fargate, a worker split over Spot, Serverless v2 behind RDS Proxy."""
    network, service, database, recovery = (component(n) for n in ("network", "service", "database", "recovery"))
    nats = [custom(network, "aws:ec2/natGateway:NatGateway", f"nat-{az}") for az in "abc"]
    api_task = custom(service, "aws:ecs/taskDefinition:TaskDefinition", "api-task", cpu="1024", memory="2048")
    api = custom(service, "aws:ecs/service:Service", "api", {"taskDefinition": [api_task["urn"]]}, desiredCount=1)
    api_scaling = custom(
        service,
        "aws:appautoscaling/target:Target",
        "api-scaling",
        {"resourceId": [api["urn"]]},
        minCapacity=4,
        maxCapacity=12,
    )
    worker_task = custom(service, "aws:ecs/taskDefinition:TaskDefinition", "worker-task", cpu="512", memory="1024")
    worker = custom(
        service,
        "aws:ecs/service:Service",
        "worker",
        {"taskDefinition": [worker_task["urn"]]},
        desiredCount=6,
        capacityProviderStrategies=[
            {"capacityProvider": "FARGATE", "base": 2, "weight": 1},
            {"capacityProvider": "FARGATE_SPOT", "weight": 3},
        ],
    )
    cluster = custom(
        database,
        "aws:rds/cluster:Cluster",
        "cluster",
        serverlessv2ScalingConfiguration={"minCapacity": 0.5, "maxCapacity": 4},
    )
    writer = custom(
        database,
        "aws:rds/clusterInstance:ClusterInstance",
        "writer",
        {"clusterIdentifier": [cluster["urn"]]},
        instanceClass="db.serverless",
    )
    proxy = custom(database, "aws:rds/proxy:Proxy", "proxy")
    target = custom(
        database,
        "aws:rds/proxyTarget:ProxyTarget",
        "proxy-target",
        {"dbProxyName": [proxy["urn"]], "dbClusterIdentifier": [cluster["urn"]]},
    )
    budget_resource = custom(
        recovery, "aws:budgets/budget:Budget", "budget", budgetType="COST", limitAmount=str(budget), limitUnit="USD"
    )
    resources = [network, service, database, recovery, *nats, api_task, api, api_scaling, worker_task, worker]
    resources += [cluster, writer, proxy, target, budget_resource]
    return {"stack": "dev", "project": "platform", "outputs": {"region": "us-east-1"}, "resources": resources}


def by_item(plan: dict[str, Any], usage: UsageAssumptions | None = None) -> dict[tuple[str, str], float]:
    result = estimate(plan, usage or UsageAssumptions())
    return {(item.resource, item.item): round(item.monthly_usd, 4) for item in result.items}


def test_three_nat_gateways_for_730_hours_match_the_hand_computed_figure() -> None:
    result = estimate(hand_plan(), UsageAssumptions(nat_gb_per_month=300))
    nat_hours = [i for i in result.items if i.type == "aws:ec2/natGateway:NatGateway" and i.item == "hours"]
    assert [(i.quantity, i.unit_usd) for i in nat_hours] == [(730, 0.045)] * 3
    # 3 x 730 h x $0.045 + 300 GB x $0.045
    assert round(sum(i.monthly_usd for i in result.items if i.layer == "network"), 2) == 98.55 + 13.50
    assert result.by_layer()["network"] == pytest.approx(112.05)


def test_fargate_tasks_follow_the_autoscaling_range_and_the_spot_split() -> None:
    at_minimum = by_item(hand_plan())
    # api: 4 tasks (autoscaling minimum, not desiredCount) x 1 vCPU x 730 h x $0.04048, x 2 GB x $0.004445
    assert at_minimum[("api", "4 tasks x 1 vCPU")] == pytest.approx(4 * 730 * 0.04048, abs=1e-4)
    assert at_minimum[("api", "4 tasks x 2 GB")] == pytest.approx(4 * 2 * 730 * 0.004445, abs=1e-4)
    # worker: desiredCount 6, base 2 on FARGATE, then 1:3 -> 3 more on Spot at 70% off, 1 more on demand
    assert at_minimum[("worker", "3 tasks x 0.5 vCPU")] == pytest.approx(3 * 0.5 * 730 * 0.04048, abs=1e-4)
    assert at_minimum[("worker", "3 tasks x 0.5 vCPU on Spot")] == pytest.approx(
        3 * 0.5 * 730 * 0.04048 * 0.3, abs=1e-4
    )
    halfway = by_item(hand_plan(), UsageAssumptions(task_load=0.5))
    assert ("api", "8 tasks x 1 vCPU") in halfway  # 4 + 0.5 x (12 - 4)


def test_serverless_acu_range_and_the_proxy_minimum() -> None:
    low = by_item(hand_plan())
    assert low[("writer", "Serverless v2 ACU hours")] == pytest.approx(0.5 * 730 * 0.12)
    # RDS Proxy bills at least 8 ACUs for Serverless v2 targets
    assert low[("proxy", "8 ACU hours behind the proxy")] == pytest.approx(8 * 730 * 0.015)
    high = by_item(hand_plan(), UsageAssumptions(aurora_acu_load=1))
    assert high[("writer", "Serverless v2 ACU hours")] == pytest.approx(4 * 730 * 0.12)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_resource_of_the_real_stacks_is_priced(stack: str, prod_plan: Plan, staging_plan: Plan) -> None:
    plan = (prod_plan if stack == "prod" else staging_plan).to_json()
    result = estimate(plan, UsageAssumptions())
    assert result.unpriced == []
    assert result.budget_usd is not None and result.total > 0
    assert {"network", "database", "cache", "edge"} <= set(result.by_layer())


def test_prod_prices_a_nat_gateway_per_az_and_staging_one(prod_plan: Plan, staging_plan: Plan) -> None:
    for plan, count in ((prod_plan, 3), (staging_plan, 1)):
        result = estimate(plan.to_json(), UsageAssumptions())
        hours = [i for i in result.items if i.type == "aws:ec2/natGateway:NatGateway" and i.item == "hours"]
        assert len(hours) == count


def write_project(tmp_path: Path, usage: dict[str, Any] | None = None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: platform\nruntime: python\n")
    config: dict[str, Any] = {"platform:environment": "staging"}
    if usage is not None:
        config["cost:usage"] = usage
    (project / "Pulumi.dev.yaml").write_text(json.dumps({"config": config}))
    return project


def write_plan(tmp_path: Path, name: str, plan: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(plan))
    return str(path)


def test_cli_table_json_against_and_budget_warning(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"natGbPerMonth": 0})
    head = write_plan(tmp_path, "head.json", hand_plan(budget=100))
    smaller = hand_plan()
    smaller["resources"] = [r for r in smaller["resources"] if r["name"] != "nat-c"]
    base = write_plan(tmp_path, "base.json", smaller)
    args = ["cost", "dev", "--plan", head, "--project-dir", str(project)]

    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "│ network " in table.output and "$98.55" in table.output  # 3 x 730 h x $0.045, no data processed
    assert "warning: the estimate" in table.output and "exceeds the stack's budget $100.00" in table.output

    document = json.loads(runner.invoke(cli, [*args, "--json", "--against", base]).stdout)
    assert document["byLayer"]["network"] == 98.55
    assert document["overBudget"] is True and document["budgetUsd"] == 100
    assert document["usage"]["natGbPerMonth"] == 0
    network = next(row for row in document["against"]["changes"] if row["layer"] == "network")
    assert (network["before"], network["after"]) == (65.7, 98.55)


def test_bad_usage_assumptions_exit_2_naming_the_key(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"taskLoad": 2, "requestsPerMonht": 5})
    plan = write_plan(tmp_path, "plan.json", hand_plan())
    result = runner.invoke(cli, ["cost", "dev", "--plan", plan, "--project-dir", str(project)])
    assert result.exit_code == 2
    assert "cost:usage.taskLoad" in result.output and "cost:usage.requestsPerMonht" in result.output


def test_a_region_without_price_data_exits_2(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    plan = hand_plan()
    plan["outputs"]["region"] = "ap-south-2"
    result = runner.invoke(
        cli, ["cost", "dev", "--plan", write_plan(tmp_path, "p.json", plan), "--project-dir", str(project)]
    )
    assert result.exit_code == 2
    assert "no price data for region ap-south-2" in result.output


def test_every_price_names_a_source_read_on_a_date() -> None:
    for path in PRICES_DIR.glob("*.json"):
        document = json.loads(path.read_text())
        assert document["read"] and document["region"] == path.stem
        for key, price in document["prices"].items():
            source = document["sources"][price["source"]]
            assert source["page"].startswith("https://aws.amazon.com/"), key
            assert source["read"], key
