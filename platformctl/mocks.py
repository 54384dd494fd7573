"""Realistic provider answers for Pulumi's mock runtime: ids, ARNs, names, AZs and endpoints.

Only the offline plan and the tests use this. Each resource gets a deterministic id derived from its
type and name, so two plans of the same program are byte-for-byte comparable.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
ZONES_PER_REGION = 6

Outputs = dict[str, Any]


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# Type token -> (id prefix, ARN service, ARN resource template). `{id}` and `{name}` are filled in.
_EC2 = "ec2"
IDENTIFIERS: dict[str, tuple[str, str, str]] = {
    "aws:ec2/vpc:Vpc": ("vpc-", _EC2, "vpc/{id}"),
    "aws:ec2/subnet:Subnet": ("subnet-", _EC2, "subnet/{id}"),
    "aws:ec2/internetGateway:InternetGateway": ("igw-", _EC2, "internet-gateway/{id}"),
    "aws:ec2/natGateway:NatGateway": ("nat-", _EC2, "natgateway/{id}"),
    "aws:ec2/eip:Eip": ("eipalloc-", _EC2, "elastic-ip/{id}"),
    "aws:ec2/routeTable:RouteTable": ("rtb-", _EC2, "route-table/{id}"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc-", _EC2, "route-table-association/{id}"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg-", _EC2, "security-group/{id}"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg-", _EC2, "security-group/{id}"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr-", _EC2, "security-group-rule/{id}"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("sgr-", _EC2, "security-group-rule/{id}"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce-", _EC2, "vpc-endpoint/{id}"),
    "aws:ec2/flowLog:FlowLog": ("fl-", _EC2, "vpc-flow-log/{id}"),
    "aws:kms/key:Key": ("", "kms", "key/{id}"),
    "aws:kms/alias:Alias": ("", "kms", "{name}"),
    "aws:cloudwatch/logGroup:LogGroup": ("", "logs", "log-group:{name}"),
    "aws:iam/role:Role": ("", "iam", "role/{name}"),
    "aws:iam/policy:Policy": ("", "iam", "policy/{name}"),
}
# Resources whose id is their name rather than a generated identifier.
NAMED_BY_NAME = {"aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:kms/alias:Alias"}
GLOBAL_SERVICES = {"iam", "cloudfront", "route53", "waf"}


class OfflineMocks(pulumi.runtime.Mocks):
    """Mock provider for offline plans: state is the inputs plus what AWS would compute."""

    def __init__(self, default_region: str = DEFAULT_REGION) -> None:
        self.default_region = default_region
        self._provider_regions: dict[str, str] = {}
        self.extra_outputs: dict[str, Callable[[pulumi.runtime.MockResourceArgs, str, str], Outputs]] = {
            "aws:ec2/vpc:Vpc": self._vpc,
            "aws:ec2/eip:Eip": self._eip,
            "aws:ec2/natGateway:NatGateway": self._nat,
            "aws:kms/key:Key": self._kms_key,
            "aws:ec2/vpcEndpoint:VpcEndpoint": self._vpc_endpoint,
        }

    # --- resources --------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if not args.custom and not args.typ.startswith("pulumi:providers:"):
            return "", {}
        if args.typ.startswith("pulumi:providers:"):
            resource_id = _digest(args.typ, args.name, length=12)
            self._provider_regions[resource_id] = str(args.inputs.get("region") or self.default_region)
            return resource_id, dict(args.inputs)
        region = self._region_of(args.provider)
        state: Outputs = dict(args.inputs)
        prefix, service, template = IDENTIFIERS.get(args.typ, ("", _service_of(args.typ), "{name}"))
        if "name" not in state and args.typ not in _UNNAMED:
            state["name"] = f"{args.name}-{_digest(args.name, length=7)}"
        name = str(state.get("name", args.name))
        resource_id = name if args.typ in NAMED_BY_NAME else f"{prefix}{_digest(args.typ, args.name)}"
        if args.typ == "aws:kms/key:Key":
            resource_id = _uuid_like(args.typ, args.name)
        arn_region = "" if service in GLOBAL_SERVICES else region
        state.setdefault(
            "arn",
            f"arn:aws:{service}:{arn_region}:{ACCOUNT_ID}:{template.format(id=resource_id, name=name)}",
        )
        state.setdefault("tagsAll", state.get("tags", {}))
        state.setdefault("region", region)
        maker = self.extra_outputs.get(args.typ)
        if maker is not None:
            state.update(maker(args, resource_id, region))
        return resource_id, state

    def _region_of(self, provider_ref: str | None) -> str:
        provider_id = (provider_ref or "").rsplit("::", 1)[-1]
        return self._provider_regions.get(provider_id, self.default_region)

    @staticmethod
    def _vpc(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {
            "defaultSecurityGroupId": f"sg-{_digest('default-sg', args.name)}",
            "mainRouteTableId": f"rtb-{_digest('main-rtb', args.name)}",
            "ownerId": ACCOUNT_ID,
        }

    @staticmethod
    def _eip(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        octets = [int(_digest(args.name, str(i), length=2), 16) for i in range(2)]
        return {"allocationId": resource_id, "publicIp": f"203.0.{octets[0]}.{octets[1]}"}

    @staticmethod
    def _nat(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"networkInterfaceId": f"eni-{_digest('nat-eni', args.name)}"}

    @staticmethod
    def _kms_key(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"keyId": resource_id}

    @staticmethod
    def _vpc_endpoint(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        service = str(args.inputs.get("serviceName", ""))
        if args.inputs.get("vpcEndpointType") != "Interface":
            return {"prefixListId": f"pl-{_digest(service, length=8)}"}
        return {
            "dnsEntries": [
                {
                    "dnsName": f"{resource_id}.{service.split('.', 3)[-1]}.{region}.vpce.amazonaws.com",
                    "hostedZoneId": "Z7HUB22UULQXV",
                }
            ]
        }

    # --- invokes ----------------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[Any, Any]:  # type: ignore[override]
        region = self._region_of(args.provider)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline-plan",
                "userId": "AIDAOFFLINEPLAN",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = string.ascii_lowercase[:ZONES_PER_REGION]
            return {
                "names": [f"{region}{letter}" for letter in letters],
                "zoneIds": [
                    f"{region[:2]}{region.split('-')[1][0]}{region[-1]}-az{n}" for n in range(1, ZONES_PER_REGION + 1)
                ],
                "groupNames": [region] * ZONES_PER_REGION,
                "id": region,
            }
        raise NotImplementedError(f"the offline plan has no mock for the invoke {args.token}")


_UNNAMED = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:ec2/flowLog:FlowLog",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:kms/key:Key",
    "aws:iam/rolePolicy:RolePolicy",
}


def _service_of(type_token: str) -> str:
    """`aws:rds/cluster:Cluster` -> `rds`."""
    module = type_token.split(":")[1].split("/", maxsplit=1)[0] if ":" in type_token else "unknown"
    return {"cloudwatch": "cloudwatch", "lb": "elasticloadbalancing", "appautoscaling": "application-autoscaling"}.get(
        module, module
    )


def _uuid_like(*parts: str) -> str:
    hex_ = _digest(*parts, length=32)
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"
