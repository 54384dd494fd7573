"""The network layer, as the program registers it under the offline mocks."""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.iam import Account
from components.naming import LogPolicy, Naming
from components.network import Network, NetworkArgs
from platformctl.plan import Plan, PlannedResource, run_program
from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from stack_config.schema import NetworkConfig
from tests.support import PROJECT, by_name, config_for, plan_with

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def subnets(plan: Plan, tier: str) -> list[PlannedResource]:
    return [r for r in plan.of_type(SUBNET) if r.inputs["tags"]["tier"] == tier]


def table_of(plan: Plan, subnet: PlannedResource) -> PlannedResource:
    (association,) = [r for r in plan.of_type(ASSOCIATION) if r.inputs["subnetId"] == subnet.id]
    (table,) = [r for r in plan.of_type(ROUTE_TABLE) if r.id == association.inputs["routeTableId"]]
    return table


def internet_routes(table: PlannedResource) -> list[dict[str, str]]:
    return [route for route in table.inputs.get("routes", []) if route.get("cidrBlock") == "0.0.0.0/0"]


@pytest.fixture(scope="module")
def single_nat_plan() -> Plan:
    return plan_with(
        config_for(
            "staging",
            availabilityZones=3,
            network={"natStrategy": "single", "vpcEndpoints": False},
            services={"minTasksPerAz": 0},
        )
    )


@pytest.fixture(scope="module")
def no_nat_plan() -> Plan:
    """The component alone without NAT: the stack config refuses `none` (the tasks need egress), the
    component still builds it."""

    def program() -> None:
        Network(
            "network",
            NetworkArgs(
                config=NetworkConfig.model_validate({"natStrategy": "none"}),
                availability_zones=["us-east-1c", "us-east-1d"],
                naming=Naming(PROJECT, "test", "staging"),
                account=Account.lookup("us-east-1"),
                logs=LogPolicy(30, "arn:aws:kms:us-east-1:123456789012:key/logs-key"),
            ),
        )

    return run_program(program, project=PROJECT, stack="test")


@pytest.mark.parametrize(("stack", "az_count"), [("prod_plan", 3), ("staging_plan", 2)])
def test_each_tier_has_one_subnet_per_az(stack: str, az_count: int, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    for tier in ("public", "private", "isolated"):
        tier_subnets = subnets(plan, tier)
        assert len(tier_subnets) == az_count
        assert len({s.inputs["availabilityZone"] for s in tier_subnets}) == az_count


def test_subnets_are_disjoint_inside_the_vpc_and_map_no_public_ips(prod_plan: Plan) -> None:
    (vpc,) = prod_plan.of_type("aws:ec2/vpc:Vpc")
    vpc_cidr = ipaddress.ip_network(vpc.inputs["cidrBlock"])
    cidrs = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in prod_plan.of_type(SUBNET)]
    assert all(c.subnet_of(vpc_cidr) for c in cidrs)  # type: ignore[arg-type]
    assert all(not a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[:i])
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in prod_plan.of_type(SUBNET))
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True


def test_nat_count_follows_the_strategy(prod_plan: Plan, single_nat_plan: Plan, no_nat_plan: Plan) -> None:
    assert len(prod_plan.of_type(NAT)) == 3
    assert len(single_nat_plan.of_type(NAT)) == 1
    assert no_nat_plan.of_type(NAT) == []
    public_ids = {s.id for s in subnets(prod_plan, "public")}
    assert {nat.inputs["subnetId"] for nat in prod_plan.of_type(NAT)} == public_ids


def test_each_private_subnet_routes_through_the_nat_in_its_own_az(prod_plan: Plan) -> None:
    nat_zone = {
        nat.id: next(s.inputs["availabilityZone"] for s in prod_plan.of_type(SUBNET) if s.id == nat.inputs["subnetId"])
        for nat in prod_plan.of_type(NAT)
    }
    for subnet in subnets(prod_plan, "private"):
        (route,) = internet_routes(table_of(prod_plan, subnet))
        assert nat_zone[route["natGatewayId"]] == subnet.inputs["availabilityZone"]


def test_single_nat_serves_every_private_subnet(single_nat_plan: Plan) -> None:
    (nat,) = single_nat_plan.of_type(NAT)
    for subnet in subnets(single_nat_plan, "private"):
        assert [route["natGatewayId"] for route in internet_routes(table_of(single_nat_plan, subnet))] == [nat.id]


def test_without_nat_private_subnets_have_no_internet_route(no_nat_plan: Plan) -> None:
    assert all(internet_routes(table_of(no_nat_plan, s)) == [] for s in subnets(no_nat_plan, "private"))
    assert sorted(s.inputs["availabilityZone"] for s in subnets(no_nat_plan, "private")) == ["us-east-1c", "us-east-1d"]


@pytest.mark.parametrize("stack", ["prod_plan", "staging_plan"])
def test_isolated_subnets_have_no_route_out_and_public_ones_use_the_internet_gateway(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    for subnet in subnets(plan, "isolated"):
        assert table_of(plan, subnet).inputs.get("routes", []) == []
    (gateway,) = plan.of_type("aws:ec2/internetGateway:InternetGateway")
    for subnet in subnets(plan, "public"):
        assert [route["gatewayId"] for route in internet_routes(table_of(plan, subnet))] == [gateway.id]


def test_flow_logs_go_to_an_encrypted_log_group_with_retention(prod_plan: Plan) -> None:
    (flow_log,) = prod_plan.of_type("aws:ec2/flowLog:FlowLog")
    log_group = by_name(prod_plan, "network-flow-logs")
    (vpc,) = prod_plan.of_type("aws:ec2/vpc:Vpc")
    assert flow_log.inputs["vpcId"] == vpc.id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestination"] == log_group.outputs["arn"]
    assert log_group.inputs["retentionInDays"] == 365
    logs_key = by_name(prod_plan, "security-logs-key")
    assert log_group.inputs["kmsKeyId"] == logs_key.outputs["arn"]
    policy = json.loads(by_name(prod_plan, "network-flow-logs-policy").inputs["policy"])
    assert all(":*" not in a and a != "*" for s in policy["Statement"] for a in s["Action"])
    assert log_group.outputs["arn"] in policy["Statement"][0]["Resource"]


def test_endpoints_exist_when_enabled_and_not_otherwise(prod_plan: Plan, single_nat_plan: Plan) -> None:
    services = {
        e.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1."): e for e in prod_plan.of_type(ENDPOINT)
    }
    assert set(services) == {"s3", "ecr.api", "ecr.dkr", "logs", "sqs", "sns", "secretsmanager", "kms"}
    assert services["s3"].inputs["vpcEndpointType"] == "Gateway"
    private_ids = sorted(s.id for s in subnets(prod_plan, "private"))
    for name, endpoint in services.items():
        if name != "s3":
            assert endpoint.inputs["vpcEndpointType"] == "Interface"
            assert sorted(endpoint.inputs["subnetIds"]) == private_ids
            assert endpoint.inputs["privateDnsEnabled"] is True
    assert single_nat_plan.of_type(ENDPOINT) == []


def test_default_security_group_is_locked_down(prod_plan: Plan) -> None:
    (default,) = prod_plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs.get("ingress", []) == [] and default.inputs.get("egress", []) == []


def test_every_network_resource_is_a_child_of_the_component_with_name_tags(prod_plan: Plan) -> None:
    (component,) = prod_plan.of_type("platform:network:Network")
    children = [r for r in prod_plan.resources if r.parent == component.urn]
    assert len(children) > 40
    for child in children:
        tags = child.inputs.get("tags")
        if tags is not None:
            assert tags["Name"].startswith("platform-prod-") and tags["environment"] == "prod"
    assert set(component.outputs) >= {"vpc_id", "public_subnet_ids", "private_subnet_ids", "isolated_subnet_ids"}


def test_stack_outputs_wire_the_mocked_ids(prod_plan: Plan) -> None:
    (vpc,) = prod_plan.of_type("aws:ec2/vpc:Vpc")
    assert prod_plan.outputs["vpc_id"] == vpc.id
    assert prod_plan.outputs["availability_zones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert sorted(prod_plan.outputs["private_subnet_ids"]) == sorted(s.id for s in subnets(prod_plan, "private"))


def test_a_stack_without_nat_gateways_is_refused_because_its_tasks_could_not_start() -> None:
    # Fargate pulls the ADOT collector from public.ecr.aws, which no VPC endpoint serves.
    with pytest.raises(StackConfigError) as refused:
        parse_platform_config(config_for("staging", network={"natStrategy": "none"}))
    (problem,) = [str(p) for p in refused.value.problems if p.path == "network.natStrategy"]
    assert problem.startswith("platform:network.natStrategy: Fargate tasks need a NAT gateway (single or one_per_az)")


def test_the_flow_log_role_serves_only_this_accounts_flow_logs_with_the_permissions_aws_lists(
    prod_plan: Plan,
) -> None:
    role = by_name(prod_plan, "network-flow-logs-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    # Confused-deputy protection: the service may assume the role only for this account's flow logs.
    assert trust.get("Condition") == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/*"},
    }
    policy = json.loads(by_name(prod_plan, "network-flow-logs-policy").inputs["policy"])
    actions = {action for statement in policy["Statement"] for action in statement["Action"]}
    # AWS's minimum for a flow-log role, but CreateLogGroup: the stack creates the group itself.
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:DescribeLogGroups"}
