"""The network layer: a VPC across the stack's AZs with public, private and isolated subnets per AZ."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import Account, Statement, policy_document, service_trust_policy
from components.naming import LogPolicy, Naming, child_options
from stack_config.cidr import TIERS, subnet_plan
from stack_config.schema import NetworkConfig

if TYPE_CHECKING:
    from components.context import StackContext

INTERNET = "0.0.0.0/0"
HTTPS = 443
# Interface endpoints keep image pulls, logs, queues, secrets and keys off the NAT gateways.
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "logs", "sqs", "sns", "secretsmanager", "kms")
# Flow records aggregated per minute, not the default ten, so investigations see short bursts.
FLOW_LOG_AGGREGATION_SECONDS = 60


@dataclass(frozen=True)
class Placement:
    """Where a data store lives and who may reach it: the VPC, its subnets (one per AZ, in the order of `zones`),
    and the security groups of its clients, the only sources its ingress rules admit."""

    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    zones: Sequence[str]
    client_group_ids: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    availability_zones: int | list[str]
    naming: Naming
    account: Account
    logs: LogPolicy

    @classmethod
    def for_stack(cls, stack: StackContext) -> NetworkArgs:
        config = stack.config
        return cls(config.network, config.availability_zones, stack.naming, stack.account, stack.logs)


class Network(pulumi.ComponentResource):
    """VPC, subnets per tier and AZ, internet and NAT gateways, routes, flow logs and endpoints.

    Private subnets reach the internet only through the NAT gateway in their own AZ (`one_per_az`),
    through one shared NAT (`single`), or not at all (`none`); isolated subnets never do.
    """

    zones: list[str]
    vpc: aws.ec2.Vpc
    subnets: dict[str, list[aws.ec2.Subnet]]
    nat_gateways: list[aws.ec2.NatGateway]
    public_route_table: aws.ec2.RouteTable
    private_route_tables: list[aws.ec2.RouteTable]
    isolated_route_tables: list[aws.ec2.RouteTable]
    endpoint_security_group: aws.ec2.SecurityGroup | None
    flow_log: aws.ec2.FlowLog

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:network:Network", name, None, opts)
        self._name, self._naming = name, args.naming
        config = args.config
        self.zones = self._zones(args.availability_zones)
        cidrs = subnet_plan(config, len(self.zones))

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(config.vpc_cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self._naming.tags("vpc"),
            opts=child_options(self),
        )
        # Adopting the default security group with no rules closes it: nothing may use it by accident.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=self._naming.tags("default-closed"),
            opts=child_options(self),
        )
        self.subnets = {
            tier: [self._subnet(tier, zone, str(cidr)) for zone, cidr in zip(self.zones, cidrs[tier], strict=True)]
            for tier in TIERS
        }
        internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=self._naming.tags("igw"), opts=child_options(self)
        )
        self.public_route_table = self._route_table(
            "public", [aws.ec2.RouteTableRouteArgs(cidr_block=INTERNET, gateway_id=internet_gateway.id)]
        )
        for zone, subnet in zip(self.zones, self.subnets["public"], strict=True):
            self._associate(f"public-{zone}", subnet, self.public_route_table)

        self.nat_gateways = self._nat_gateways(config.nat_strategy, internet_gateway)
        self.private_route_tables = []
        self.isolated_route_tables = []
        for index, zone in enumerate(self.zones):
            private = self._route_table(f"private-{zone}", self._egress_routes(index))
            self._associate(f"private-{zone}", self.subnets["private"][index], private)
            self.private_route_tables.append(private)
            isolated = self._route_table(f"isolated-{zone}", [])
            self._associate(f"isolated-{zone}", self.subnets["isolated"][index], isolated)
            self.isolated_route_tables.append(isolated)

        self.flow_log = self._flow_log(config, args)
        self.endpoint_security_group = self._endpoints(args.account.region) if config.vpc_endpoints else None

        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": self.subnet_ids("public"),
                "private_subnet_ids": self.subnet_ids("private"),
                "isolated_subnet_ids": self.subnet_ids("isolated"),
                "private_route_table_ids": [table.id for table in self.private_route_tables],
                "isolated_route_table_ids": [table.id for table in self.isolated_route_tables],
                "public_route_table_id": self.public_route_table.id,
                "nat_gateway_ids": [nat.id for nat in self.nat_gateways],
                "endpoint_security_group_id": (
                    self.endpoint_security_group.id if self.endpoint_security_group else None
                ),
            }
        )

    def isolated_for(self, clients: Iterable[aws.ec2.SecurityGroup]) -> Placement:
        """The isolated subnets (no route out), admitting `clients` only: where the data stores live."""
        return Placement(self.vpc.id, self.subnet_ids("isolated"), self.zones, [client.id for client in clients])

    def subnet_ids(self, tier: str) -> list[pulumi.Output[str]]:
        return [subnet.id for subnet in self.subnets[tier]]

    def _zones(self, wanted: int | list[str]) -> list[str]:
        if isinstance(wanted, list):
            return list(wanted)
        available = aws.get_availability_zones(
            state="available",
            # Local and Wavelength zones lack NAT gateways and Aurora; take only the region's own AZs.
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=pulumi.InvokeOptions(parent=self),
        )
        names = sorted(available.names)
        if len(names) < wanted:
            raise pulumi.RunError(f"platform:availabilityZones: the region has only {len(names)} AZs (got {wanted})")
        return names[:wanted]

    def _subnet(self, tier: str, zone: str, cidr: str) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{self._name}-{tier}-{zone}",
            vpc_id=self.vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Nothing launches with a public IP by accident; the ALB and NAT gateways bring their own.
            map_public_ip_on_launch=False,
            tags={**self._naming.tags(tier, zone), "tier": tier},
            opts=child_options(self),
        )

    def _route_table(self, label: str, routes: list[aws.ec2.RouteTableRouteArgs]) -> aws.ec2.RouteTable:
        return aws.ec2.RouteTable(
            f"{self._name}-{label}-rt",
            vpc_id=self.vpc.id,
            routes=routes,
            tags=self._naming.tags(label, "rt"),
            opts=child_options(self),
        )

    def _associate(self, label: str, subnet: aws.ec2.Subnet, table: aws.ec2.RouteTable) -> None:
        aws.ec2.RouteTableAssociation(
            f"{self._name}-{label}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=child_options(self)
        )

    def _nat_gateways(self, strategy: str, internet_gateway: aws.ec2.InternetGateway) -> list[aws.ec2.NatGateway]:
        count = {"one_per_az": len(self.zones), "single": 1, "none": 0}[strategy]
        gateways = []
        for zone, subnet in list(zip(self.zones, self.subnets["public"], strict=True))[:count]:
            address = aws.ec2.Eip(
                f"{self._name}-nat-{zone}-eip",
                domain="vpc",
                tags=self._naming.tags("nat", zone),
                opts=child_options(self, depends_on=[internet_gateway]),
            )
            gateways.append(
                aws.ec2.NatGateway(
                    f"{self._name}-nat-{zone}",
                    allocation_id=address.allocation_id,
                    subnet_id=subnet.id,
                    connectivity_type="public",
                    tags=self._naming.tags("nat", zone),
                    opts=child_options(self, depends_on=[internet_gateway]),
                )
            )
        return gateways

    def _egress_routes(self, zone_index: int) -> list[aws.ec2.RouteTableRouteArgs]:
        if not self.nat_gateways:
            return []
        # The NAT in the subnet's own AZ, so an AZ outage never cuts another AZ's egress.
        nat = self.nat_gateways[zone_index] if len(self.nat_gateways) > 1 else self.nat_gateways[0]
        return [aws.ec2.RouteTableRouteArgs(cidr_block=INTERNET, nat_gateway_id=nat.id)]

    def _flow_log(self, config: NetworkConfig, args: NetworkArgs) -> aws.ec2.FlowLog:
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs",
            name=self._naming.log_group("vpc", "flow-logs"),
            retention_in_days=args.logs.retention_days,
            kms_key_id=args.logs.key_arn,
            tags=self._naming.tags("flow-logs"),
            opts=child_options(self),
        )
        account = args.account
        role = aws.iam.Role(
            f"{self._name}-flow-logs-role",
            assume_role_policy=service_trust_policy("vpc-flow-logs", account),
            tags=self._naming.tags("flow-logs"),
            opts=child_options(self),
        )
        aws.iam.RolePolicy(
            f"{self._name}-flow-logs-policy",
            role=role.id,
            # The permissions AWS lists as the least a flow-log role needs, on the one log group where it
            # can; DescribeLogGroups lists, and takes no resource but `*`.
            policy=policy_document(
                Statement(
                    "DeliverFlowLogs",
                    ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
                    [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                ),
                Statement("FindLogGroup", ("logs:DescribeLogGroups",), ["*"]),
            ),
            opts=child_options(self),
        )
        return aws.ec2.FlowLog(
            f"{self._name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type=config.flow_log_traffic,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=FLOW_LOG_AGGREGATION_SECONDS,
            tags=self._naming.tags("flow-log"),
            opts=child_options(self),
        )

    def _endpoints(self, region: str) -> aws.ec2.SecurityGroup:
        aws.ec2.VpcEndpoint(
            f"{self._name}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in [*self.private_route_tables, *self.isolated_route_tables]],
            tags=self._naming.tags("s3-endpoint"),
            opts=child_options(self),
        )
        security_group = aws.ec2.SecurityGroup(
            f"{self._name}-endpoints-sg",
            vpc_id=self.vpc.id,
            description="Interface endpoints: HTTPS from inside the VPC",
            tags=self._naming.tags("endpoints"),
            opts=child_options(self),
        )
        # The VPC's own range, not app security groups: every task placed in the VPC, now or later,
        # must reach ECR, Logs and Secrets Manager before it can start.
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-endpoints-https",
            security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4=self.vpc.cidr_block,
            description="HTTPS from the VPC",
            opts=child_options(self),
        )
        for service in INTERFACE_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{self._name}-{service.replace('.', '-')}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=self.subnet_ids("private"),
                security_group_ids=[security_group.id],
                private_dns_enabled=True,
                tags=self._naming.tags(service, "endpoint"),
                opts=child_options(self),
            )
        return security_group
