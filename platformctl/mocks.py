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
from pulumi.runtime import rpc

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
    # data layers
    "aws:rds/cluster:Cluster": ("", "rds", "cluster:{id}"),
    "aws:rds/clusterInstance:ClusterInstance": ("", "rds", "db:{id}"),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": ("", "rds", "cluster-pg:{id}"),
    "aws:rds/subnetGroup:SubnetGroup": ("", "rds", "subgrp:{id}"),
    "aws:rds/proxy:Proxy": ("", "rds", "db-proxy:prx-{digest}"),
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": ("", "rds", "target-group:prx-tg-{digest}"),
    "aws:rds/proxyEndpoint:ProxyEndpoint": ("", "rds", "db-proxy-endpoint:prx-endpoint-{digest}"),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("", "elasticache", "replicationgroup:{id}"),
    # ELB names a listener and its rules after the load balancer (`app/<name>/<id>`), then their own ids.
    "aws:lb/listener:Listener": ("", "elasticloadbalancing", "listener/app/alb/{digest}/{suffix}"),
    "aws:lb/listenerRule:ListenerRule": ("", "elasticloadbalancing", "listener-rule/app/alb/{digest}/{suffix}/{id}"),
    "aws:elasticache/parameterGroup:ParameterGroup": ("", "elasticache", "parametergroup:{id}"),
    "aws:elasticache/subnetGroup:SubnetGroup": ("", "elasticache", "subnetgroup:{id}"),
    "aws:secretsmanager/secret:Secret": ("", "secretsmanager", "secret:{name}-{suffix}"),
    "aws:lambda/function:Function": ("", "lambda", "function:{name}"),
    # messaging, storage, observability, recovery
    "aws:sqs/queue:Queue": ("", "sqs", "{name}"),
    "aws:sns/topic:Topic": ("", "sns", "{name}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("", "cloudwatch", "alarm:{name}"),
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": ("", "logs", "delivery-source:{name}"),
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": ("", "logs", "delivery-destination:{name}"),
    "aws:ecs/cluster:Cluster": ("", "ecs", "cluster/{name}"),
    "aws:xray/samplingRule:SamplingRule": ("", "xray", "sampling-rule/{id}"),
    "aws:backup/vault:Vault": ("", "backup", "backup-vault:{name}"),
    "aws:backup/plan:Plan": ("", "backup", "backup-plan:{id}"),
    "aws:budgets/budget:Budget": ("", "budgets", "budget/{name}"),
}
# Resources whose id is one of their inputs (an identifier the program chooses).
ID_FROM_INPUT = {
    "aws:rds/cluster:Cluster": "clusterIdentifier",
    "aws:rds/clusterInstance:ClusterInstance": "identifier",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": "name",
    "aws:rds/subnetGroup:SubnetGroup": "name",
    "aws:rds/proxy:Proxy": "name",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": "dbProxyName",
    "aws:elasticache/replicationGroup:ReplicationGroup": "replicationGroupId",
    "aws:elasticache/parameterGroup:ParameterGroup": "name",
    "aws:elasticache/subnetGroup:SubnetGroup": "name",
    "aws:lambda/function:Function": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
    "aws:xray/samplingRule:SamplingRule": "ruleName",
    "aws:backup/vault:Vault": "name",
    "aws:budgets/budget:Budget": "name",
}
# Resources whose id is one of their outputs (SQS queues are known by their URL, topics by their ARN).
ID_FROM_OUTPUT = {
    "aws:sqs/queue:Queue": "url",
    "aws:sns/topic:Topic": "arn",
    "aws:sns/topicSubscription:TopicSubscription": "arn",
}
# Resources whose id is a UUID.
UUID_IDS = {"aws:backup/plan:Plan", "aws:backup/selection:Selection"}
# Resources whose id is their ARN.
ID_IS_ARN = {"aws:secretsmanager/secret:Secret"}
# Where RDS and ElastiCache endpoints live in the mock account.
RDS_DNS_SUFFIX = "c0ffee123abc.{region}.rds.amazonaws.com"
ELASTICACHE_DNS_SUFFIX = "x1y2z3.{short}.cache.amazonaws.com"
# Resources whose id is their name rather than a generated identifier.
NAMED_BY_NAME = {"aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:kms/alias:Alias"}
GLOBAL_SERVICES = {"iam", "cloudfront", "route53", "waf", "budgets"}
# AWS-managed prefix lists by name (`{region}` filled in) -> (address family, max entries). A rule that
# references one counts as its max entries (its "weight") against the security group's rule quota.
# Source: "AWS-managed prefix lists", Amazon VPC User Guide (the weights table).
AWS_MANAGED_PREFIX_LISTS: dict[str, tuple[str, int]] = {
    "com.amazonaws.global.cloudfront.origin-facing": ("IPv4", 55),
    "com.amazonaws.global.ipv6.cloudfront.origin-facing": ("IPv6", 55),
    "com.amazonaws.global.groundstation": ("IPv4", 5),
    "com.amazonaws.{region}.dynamodb": ("IPv4", 1),
    "com.amazonaws.{region}.s3": ("IPv4", 1),
    "com.amazonaws.{region}.s3express": ("IPv4", 6),
    "com.amazonaws.{region}.ec2-instance-connect": ("IPv4", 2),
    "com.amazonaws.{region}.ipv6.ec2-instance-connect": ("IPv6", 2),
    "com.amazonaws.{region}.route53-healthchecks": ("IPv4", 25),
    "com.amazonaws.{region}.ipv6.route53-healthchecks": ("IPv6", 25),
    "com.amazonaws.{region}.vpc-lattice": ("IPv4", 10),
    "com.amazonaws.{region}.ipv6.vpc-lattice": ("IPv6", 10),
}
# The account ELB writes access logs from, per region, as `aws.elb.get_service_account` answers
# (terraform-provider-aws internal/service/elb/service_account_data_source.go; the ALB guide's table).
# Regions opened since August 2022 have none: the lookup fails there ("unsupported AWS Region").
ELB_ACCOUNTS: dict[str, str] = {
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-south-1": "718504428378",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ca-central-1": "985666609251",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
    "eu-central-1": "054676820928",
    "eu-north-1": "897822967062",
    "eu-south-1": "635631232127",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-gov-east-1": "190560391635",
    "us-gov-west-1": "048591011584",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
}


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


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
            # data layers
            "aws:rds/cluster:Cluster": self._aurora_cluster,
            "aws:rds/clusterInstance:ClusterInstance": self._aurora_instance,
            "aws:rds/proxy:Proxy": self._rds_proxy,
            "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": self._proxy_target_group,
            "aws:rds/proxyEndpoint:ProxyEndpoint": self._proxy_endpoint,
            "aws:elasticache/replicationGroup:ReplicationGroup": self._replication_group,
            "aws:secretsmanager/secretVersion:SecretVersion": self._secret_version,
            # request path
            "aws:acm/certificate:Certificate": self._certificate,
            "aws:acm/certificateValidation:CertificateValidation": self._certificate_validation,
            "aws:lb/loadBalancer:LoadBalancer": self._load_balancer,
            "aws:lb/targetGroup:TargetGroup": self._target_group,
            "aws:cloudfront/distribution:Distribution": self._distribution,
            "aws:route53/record:Record": self._record,
            "aws:ecr/repository:Repository": self._ecr_repository,
            "aws:wafv2/webAcl:WebAcl": self._web_acl,
            # messaging, storage, observability, recovery
            "aws:sqs/queue:Queue": self._queue,
            "aws:sns/topicSubscription:TopicSubscription": self._subscription,
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:cloudwatch/dashboard:Dashboard": self._dashboard,
            "aws:backup/plan:Plan": self._backup_plan,
            "aws:budgets/budget:Budget": self._budget,
        }

    # --- resources --------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if args.typ in REMOTE_COMPONENT_OUTPUTS:
            return "", REMOTE_COMPONENT_OUTPUTS[args.typ](args)
        if not args.custom and not args.typ.startswith("pulumi:providers:"):
            return "", {}
        if args.typ == RANDOM_PASSWORD:
            return _digest(args.typ, args.name), {**args.inputs, **_random_password(args)}
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
        if args.typ in UUID_IDS:
            resource_id = _uuid_like(args.typ, args.name)
        if args.typ in ID_FROM_INPUT:
            resource_id = str(args.inputs.get(ID_FROM_INPUT[args.typ]) or resource_id)
        arn_region = "" if service in GLOBAL_SERVICES else region
        state.setdefault(
            "arn",
            f"arn:{partition_of(region)}:{service}:{arn_region}:{ACCOUNT_ID}:"
            + template.format(id=resource_id, name=name, digest=_digest(args.name), suffix=_digest(name, length=6)),
        )
        state.setdefault("tagsAll", state.get("tags", {}))
        state.setdefault("region", region)
        maker = self.extra_outputs.get(args.typ)
        if maker is not None:
            state.update(maker(args, resource_id, region))
        if args.typ in ID_IS_ARN:
            resource_id = state["arn"]
        if args.typ in ID_FROM_OUTPUT:
            resource_id = str(state[ID_FROM_OUTPUT[args.typ]])
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

    @staticmethod
    def _certificate(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        names = [args.inputs["domainName"], *args.inputs.get("subjectAlternativeNames", [])]
        return {
            "domainValidationOptions": [
                {
                    "domainName": name,
                    "resourceRecordName": f"_{_digest(name, length=32)}.{name}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{_digest('value', name, length=32)}.acm-validations.aws.",
                }
                for name in names
            ],
            "status": "ISSUED",
        }

    @staticmethod
    def _certificate_validation(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"certificateArn": args.inputs["certificateArn"]}

    @staticmethod
    def _load_balancer(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        suffix = f"app/{args.name}/{_digest('alb', args.name, length=16)}"
        return {
            "arn": f"arn:{partition_of(region)}:elasticloadbalancing:{region}:{ACCOUNT_ID}:loadbalancer/{suffix}",
            "arnSuffix": suffix,
            "dnsName": f"{args.name}-{_digest('dns', args.name, length=10)}.{region}.elb.amazonaws.com",
            "zoneId": "Z35SXDOTRQ7X7K",
        }

    @staticmethod
    def _target_group(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        suffix = f"targetgroup/{args.name[:32]}/{_digest('tg', args.name, length=16)}"
        partition = partition_of(region)
        return {"arn": f"arn:{partition}:elasticloadbalancing:{region}:{ACCOUNT_ID}:{suffix}", "arnSuffix": suffix}

    @staticmethod
    def _distribution(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        distribution_id = "E" + _digest("cf", args.name, length=13).upper()
        return {
            "arn": f"arn:{partition_of(region)}:cloudfront::{ACCOUNT_ID}:distribution/{distribution_id}",
            "domainName": f"d{_digest('cfd', args.name, length=13)}.cloudfront.net",
            "hostedZoneId": "Z2FDTNDATAQYW2",  # CloudFront's alias zone
        }

    @staticmethod
    def _record(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"fqdn": str(args.inputs.get("name", "")).rstrip(".")}

    @staticmethod
    def _ecr_repository(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        name = args.inputs.get("name", args.name)
        return {"repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name}", "registryId": ACCOUNT_ID}

    @staticmethod
    def _web_acl(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        scope = "global" if args.inputs.get("scope") == "CLOUDFRONT" else "regional"
        name = args.inputs.get("name", args.name)
        acl = f"{scope}/webacl/{name}/{_uuid_like('waf', args.name)}"
        return {"arn": f"arn:{partition_of(region)}:wafv2:{region}:{ACCOUNT_ID}:{acl}"}

    # --- data layers ------------------------------------------------------------------------------

    @staticmethod
    def _aurora_cluster(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        suffix = RDS_DNS_SUFFIX.format(region=region)
        outputs: Outputs = {
            "endpoint": f"{resource_id}.cluster-{suffix}",
            "readerEndpoint": f"{resource_id}.cluster-ro-{suffix}",
            "clusterResourceId": "cluster-" + _digest("resource", resource_id, length=26).upper(),
            "hostedZoneId": "Z2R2ITUGPM61AM",
            "port": args.inputs.get("port", 5432),
            "engineVersionActual": args.inputs.get("engineVersion"),
        }
        if args.inputs.get("manageMasterUserPassword"):
            outputs["masterUserSecrets"] = [
                {
                    "kmsKeyId": args.inputs.get("masterUserSecretKmsKeyId"),
                    "secretArn": f"arn:{partition_of(region)}:secretsmanager:{region}:{ACCOUNT_ID}:secret:rds!cluster-"
                    f"{_uuid_like('master', resource_id)}-{_digest('suffix', resource_id, length=6)}",
                    "secretStatus": "active",
                }
            ]
        return outputs

    @staticmethod
    def _aurora_instance(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {
            "endpoint": f"{resource_id}.{RDS_DNS_SUFFIX.format(region=region)}:5432",
            "address": f"{resource_id}.{RDS_DNS_SUFFIX.format(region=region)}",
            "dbiResourceId": "db-" + _digest("dbi", resource_id, length=26).upper(),
            "port": 5432,
            "writer": False,
        }

    @staticmethod
    def _rds_proxy(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        # RDS reports NONE when no default scheme is given: clients then sign in as the `auth` blocks say.
        return {
            "endpoint": f"{resource_id}.proxy-{RDS_DNS_SUFFIX.format(region=region)}",
            "defaultAuthScheme": args.inputs.get("defaultAuthScheme", "NONE"),
        }

    @staticmethod
    def _proxy_target_group(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"name": "default"}

    @staticmethod
    def _proxy_endpoint(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        name = args.inputs.get("dbProxyEndpointName", args.name)
        return {"endpoint": f"{name}.endpoint.proxy-{RDS_DNS_SUFFIX.format(region=region)}", "isDefault": False}

    @staticmethod
    def _replication_group(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        parts = region.split("-")
        suffix = ELASTICACHE_DNS_SUFFIX.format(short=f"{parts[0]}{parts[1][0]}{parts[-1]}")
        clusters = int(args.inputs.get("numCacheClusters", 1))
        return {
            "primaryEndpointAddress": f"master.{resource_id}.{suffix}",
            "readerEndpointAddress": f"replica.{resource_id}.{suffix}",
            "memberClusters": [f"{resource_id}-{index:03d}" for index in range(1, clusters + 1)],
            "port": args.inputs.get("port", 6379),
            "engineVersionActual": f"{args.inputs.get('engineVersion', '8.0')}.1",
        }

    @staticmethod
    def _secret_version(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"versionId": _uuid_like("version", args.name), "versionStages": ["AWSCURRENT"]}

    @staticmethod
    def _queue(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        name = args.inputs.get("name", args.name)
        return {"url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{name}"}

    @staticmethod
    def _subscription(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        topic = str(args.inputs.get("topic", f"arn:{partition_of(region)}:sns:{region}:{ACCOUNT_ID}:topic"))
        # Email subscriptions wait for the recipient to confirm.
        pending = args.inputs.get("protocol") == "email"
        return {"arn": f"{topic}:{_uuid_like('sub', args.name)}", "ownerId": ACCOUNT_ID, "pendingConfirmation": pending}

    @staticmethod
    def _bucket(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        bucket = str(args.inputs.get("bucket") or f"{args.name}-{_digest(args.name, length=12)}")
        return {
            "bucket": bucket,
            "arn": f"arn:{partition_of(region)}:s3:::{bucket}",
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
            "hostedZoneId": "Z3AQBSTGFYJSTF",  # S3's zone in us-east-1
        }

    @staticmethod
    def _dashboard(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        dashboard = args.inputs.get("dashboardName")
        return {"dashboardArn": f"arn:{partition_of(region)}:cloudwatch::{ACCOUNT_ID}:dashboard/{dashboard}"}

    @staticmethod
    def _backup_plan(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"version": _digest("version", args.name, length=48)}

    @staticmethod
    def _budget(args: pulumi.runtime.MockResourceArgs, resource_id: str, region: str) -> Outputs:
        return {"accountId": ACCOUNT_ID}

    # --- invokes ----------------------------------------------------------------------------------

    @staticmethod
    def _managed_prefix_list(args: pulumi.runtime.MockCallArgs, region: str) -> Outputs:
        """An AWS-managed prefix list looked up by name or id; like AWS, an unknown one is an error."""
        wanted_name, wanted_id = args.args.get("name"), args.args.get("id")
        if wanted_name is None and wanted_id is None:
            raise ValueError("multiple EC2 Managed Prefix Lists matched; use additional constraints to reduce matches")
        for name, (family, max_entries) in _managed_prefix_list_by_name(region).items():
            list_id = f"pl-{_digest(region, name, length=8)}"
            if wanted_name in (None, name) and wanted_id in (None, list_id):
                return {
                    "id": list_id,
                    "arn": f"arn:{partition_of(region)}:ec2:{region}:aws:prefix-list/{list_id}",
                    "name": name,
                    "addressFamily": family,
                    "maxEntries": max_entries,
                    "ownerId": "AWS",
                    "entries": [],
                    "tags": {},
                    "version": 1,
                }
        raise ValueError(f"no matching EC2 Managed Prefix List found (name {wanted_name!r}, id {wanted_id!r})")

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[Any, Any]:  # type: ignore[override]
        region = self._region_of(args.provider)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{partition_of(region)}:iam::{ACCOUNT_ID}:user/offline-plan",
                "userId": "AIDAOFFLINEPLAN",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getPartition:getPartition":
            partition = partition_of(region)
            china = partition == "aws-cn"
            return {
                "partition": partition,
                "dnsSuffix": "amazonaws.com.cn" if china else "amazonaws.com",
                "reverseDnsPrefix": "cn.com.amazonaws" if china else "com.amazonaws",
                "id": partition,
            }
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
        if args.token == "aws:route53/getZone:getZone":
            name = str(args.args.get("name", "example.com"))
            return {"zoneId": "Z" + _digest("zone", name, length=13).upper(), "name": name, "id": name}
        if args.token == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
            return self._managed_prefix_list(args, str(args.args.get("region") or region))
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            account_region = str(args.args.get("region") or region)
            if account_region not in ELB_ACCOUNTS:
                raise ValueError(f"unsupported AWS Region: {account_region}")
            account = ELB_ACCOUNTS[account_region]
            return {
                "id": account,
                "arn": f"arn:{partition_of(account_region)}:iam::{account}:root",
                "region": account_region,
            }
        raise NotImplementedError(f"the offline plan has no mock for the invoke {args.token}")


def _managed_prefix_list_by_name(region: str) -> dict[str, tuple[str, int]]:
    return {name.format(region=region): shape for name, shape in AWS_MANAGED_PREFIX_LISTS.items()}


def _image_outputs(args: pulumi.runtime.MockResourceArgs) -> Outputs:
    """awsx.ecr.Image builds with Docker at `pulumi up`; offline, it answers with the URI it would push."""
    repository = str(args.inputs.get("repositoryUrl", "repository"))
    return {"imageUri": f"{repository}@sha256:{_digest('image', args.name, length=64)}"}


# Multi-language components (awsx) run in their provider's process; offline they answer here.
REMOTE_COMPONENT_OUTPUTS: dict[str, Callable[[pulumi.runtime.MockResourceArgs], Outputs]] = {
    "awsx:ecr:Image": _image_outputs,
}

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def generated_password(resource_name: str, length: int) -> str:
    """The value the offline plan 'generates' for a RandomPassword: deterministic, letters and digits."""
    return (_digest("password", resource_name, length=64) * (length // 64 + 1))[:length]


def _random_password(args: pulumi.runtime.MockResourceArgs) -> Outputs:
    # The provider returns `result` as a secret; so does the mock, so plans mask it as AWS would see it.
    value = generated_password(args.name, int(args.inputs.get("length", 16)))
    return {
        "result": rpc.wrap_rpc_secret(value),
        "bcryptHash": rpc.wrap_rpc_secret(_digest("bcrypt", value, length=60)),
    }


_UNNAMED = {
    "aws:sqs/queuePolicy:QueuePolicy",
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy",
    "aws:sns/topicPolicy:TopicPolicy",
    "aws:sns/topicSubscription:TopicSubscription",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:cloudwatch/dashboard:Dashboard",
    "aws:xray/samplingRule:SamplingRule",
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",
    "aws:rds/proxyTarget:ProxyTarget",
    "aws:rds/proxyEndpoint:ProxyEndpoint",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:secretsmanager/secretVersion:SecretVersion",
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
    "aws:acm/certificate:Certificate",
    "aws:acm/certificateValidation:CertificateValidation",
    "aws:route53/record:Record",
    "aws:route53/healthCheck:HealthCheck",
    "aws:lb/listener:Listener",
    "aws:lb/listenerRule:ListenerRule",
    "aws:cloudfront/distribution:Distribution",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
    "aws:appautoscaling/target:Target",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
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
