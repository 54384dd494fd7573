"""Network isolation: no open ingress, closed default security groups, tiers respected, flow logs."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import SUBNET, Check, Report, Resource, Rule, Stack, StackReport, items, subnet_tier

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
ECS_SERVICE = "aws:ecs/service:Service"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
DB_INSTANCE = "aws:rds/instance:Instance"
RDS_SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_SUBNETS = "aws:elasticache/subnetGroup:SubnetGroup"
BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
ANYWHERE = {"0.0.0.0/0", "::/0"}

open_ingress = Rule(
    name="no-open-ingress",
    area="network",
    kind="security",
    severity=Severity.CRITICAL,
    summary="No security group admits ingress from 0.0.0.0/0 or ::/0; the ALB admits CloudFront's managed "
    "prefix list, everything else admits security groups.",
    seed="seed 002 traffic entry layer (only CloudFront reaches the ALB), seed 000 security objectives",
    checks="cdk-nag AwsSolutions-EC23, Checkov CKV_AWS_24 / CKV_AWS_25 / CKV_AWS_260",
    remediation="Replace cidr_ipv4='0.0.0.0/0' by prefix_list_id=<com.amazonaws.global.cloudfront.origin-facing "
    "prefix list> on the ALB's aws.vpc.SecurityGroupIngressRule, and by referenced_security_group_id for "
    "service-to-service rules.",
    resource_types=(SECURITY_GROUP, INGRESS_RULE, GROUP_RULE, DEFAULT_SG),
)


def _open_ingress(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.type in (SECURITY_GROUP, DEFAULT_SG):
        for rule in items(resource.get("ingress")):
            cidrs = set(items(rule.get("cidrBlocks"))) | set(items(rule.get("ipv6CidrBlocks")))
            if cidrs & ANYWHERE:
                report(f"{resource.label}: inline ingress from {sorted(cidrs & ANYWHERE)} port {rule.get('fromPort')}")
    elif resource.type == INGRESS_RULE:
        for key in ("cidrIpv4", "cidrIpv6"):
            if resource.get(key) in ANYWHERE:
                report(f"{resource.label}: {key} {resource.get(key)} port {resource.get('fromPort')}")
    elif resource.get("type") == "ingress":
        cidrs = set(items(resource.get("cidrBlocks"))) | set(items(resource.get("ipv6CidrBlocks")))
        if cidrs & ANYWHERE:
            report(f"{resource.label}: ingress from {sorted(cidrs & ANYWHERE)}")


default_sg = Rule(
    name="default-security-group-closed",
    area="network",
    kind="security",
    severity=Severity.HIGH,
    summary="Every VPC adopts its default security group with no ingress and no egress rules.",
    seed="seed 000 security objectives (least privilege)",
    checks="Checkov CKV2_AWS_12, cdk-nag NIST.800.53 VPCDefaultSecurityGroupClosed",
    remediation="components/network.py adopts it: aws.ec2.DefaultSecurityGroup(vpc_id=vpc.id, ingress=[], egress=[]); "
    "keep both lists empty and keep one per VPC.",
    stack=True,
)


def _default_sg(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(vpc: Resource) -> None:
        groups = stack.referrers(vpc, "vpcId", DEFAULT_SG)
        if not groups:
            report(f"{vpc.label}: its default security group is not adopted and closed", vpc.urn)
        for group in groups:
            if items(group.get("ingress")) or items(group.get("egress")):
                report(f"{group.label}: the default security group has rules", group.urn)

    stack.check_each(stack.of(VPC), check)


public_ip = Rule(
    name="only-public-subnets-map-public-ip",
    area="network",
    kind="security",
    severity=Severity.HIGH,
    summary="Only public subnets (routed to an internet gateway) may map public IPs on launch.",
    seed="seed 002 network layout (public, private and isolated subnets per AZ)",
    checks="Checkov CKV_AWS_130",
    remediation="components/network.py sets map_public_ip_on_launch=False on every aws.ec2.Subnet; keep it False on "
    "private and isolated subnets.",
    stack=True,
)


def _public_ip(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(subnet: Resource) -> None:
        if subnet.get("mapPublicIpOnLaunch") is True and subnet_tier(stack, subnet) != "public":
            report(f"{subnet.label}: a {subnet_tier(stack, subnet)} subnet maps public IPs", subnet.urn)

    stack.check_each(stack.of(SUBNET), check)


service_public_ip = Rule(
    name="ecs-service-no-public-ip",
    area="network",
    kind="security",
    severity=Severity.HIGH,
    summary="ECS services run in private subnets without public IPs.",
    seed="seed 002 compute layer (Fargate tasks in private subnets)",
    checks="Checkov CKV_AWS_333",
    remediation="Set network_configuration assign_public_ip=False and subnets=network.subnet_ids('private') on "
    "aws.ecs.Service in the service layer.",
    resource_types=(ECS_SERVICE,),
)


def _service_public_ip(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("networkConfiguration", "assignPublicIp") is True:
        report(f"{resource.label}: assignPublicIp is true")


database_public = Rule(
    name="database-not-public",
    area="network",
    kind="security",
    severity=Severity.CRITICAL,
    summary="No database instance is publicly accessible.",
    seed="seed 002 data layer (isolated subnets)",
    checks="Checkov CKV_AWS_17, cdk-nag NIST.800.53 RDSInstancePublicAccess",
    remediation="Leave publicly_accessible unset or False on aws.rds.ClusterInstance (and aws.rds.Cluster) in the "
    "database layer.",
    resource_types=(CLUSTER, CLUSTER_INSTANCE, DB_INSTANCE),
)


def _database_public(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("publiclyAccessible") is True:
        report(f"{resource.label}: publiclyAccessible is true")


isolated = Rule(
    name="data-stores-in-isolated-subnets",
    area="network",
    kind="security",
    severity=Severity.HIGH,
    summary="Aurora and ElastiCache sit in subnet groups of this stack whose subnets are isolated (no route to an "
    "internet or NAT gateway).",
    seed="seed 002 network layout (databases and caches in isolated subnets)",
    checks="",
    remediation="Create aws.rds.SubnetGroup / aws.elasticache.SubnetGroup with subnet_ids=network.subnet_ids("
    "'isolated') and pass their names as db_subnet_group_name / subnet_group_name.",
    stack=True,
)


def _isolated(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(store: Resource) -> None:
        if store.type == REPLICATION_GROUP:
            groups = stack.deps(store, "subnetGroupName", CACHE_SUBNETS)
        else:
            groups = stack.deps(store, "dbSubnetGroupName", RDS_SUBNETS)
        if not groups:
            report(f"{store.label}: no subnet group of this stack (the default VPC's subnets)", store.urn)
            return
        for group in groups:
            for subnet in stack.deps(group, "subnetIds", SUBNET):
                tier = subnet_tier(stack, subnet)
                if tier != "isolated":
                    report(f"{store.label}: subnet group {group.name} has {tier} subnet {subnet.name}", store.urn)
            if not stack.deps(group, "subnetIds", SUBNET):
                report(f"{store.label}: subnet group {group.name} has no subnets of this stack", store.urn)

    stack.check_each(stack.of(CLUSTER, DB_INSTANCE, REPLICATION_GROUP), check)


flow_logs = Rule(
    name="vpc-flow-logs-enabled",
    area="network",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Every VPC has a flow log.",
    seed="seed 000 observability and security objectives",
    checks="cdk-nag AwsSolutions-VPC7, Checkov CKV2_AWS_11",
    remediation="components/network.py creates aws.ec2.FlowLog(vpc_id=vpc.id) to an encrypted log group; keep "
    "platform:network.flowLogTraffic set in Pulumi.STACK.yaml.",
    stack=True,
)


def _flow_logs(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(vpc: Resource) -> None:
        if not stack.referrers(vpc, "vpcId", FLOW_LOG):
            report(f"{vpc.label}: no flow log", vpc.urn)

    stack.check_each(stack.of(VPC), check)


public_access = Rule(
    name="s3-block-public-access",
    area="network",
    kind="security",
    severity=Severity.CRITICAL,
    summary="Every bucket has a public access block with all four settings on.",
    seed="seed 000 security objectives",
    checks="Checkov CKV2_AWS_6, cdk-nag NIST.800.53 S3BucketLevelPublicAccessProhibited",
    remediation="Add aws.s3.BucketPublicAccessBlock(bucket=<bucket>.id, block_public_acls=True, "
    "block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True) for each bucket in the "
    "storage layer.",
    stack=True,
)
BLOCK_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _public_access(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(bucket: Resource) -> None:
        blocks = stack.referrers(bucket, "bucket", PUBLIC_ACCESS_BLOCK)
        if not blocks:
            report(f"{bucket.label}: no BucketPublicAccessBlock refers to this bucket", bucket.urn)
        for block in blocks:
            off = [setting for setting in BLOCK_SETTINGS if block.get(setting) is not True]
            if off:
                report(f"{bucket.label}: public access block leaves {', '.join(off)} off", bucket.urn)

    stack.check_each(stack.of(BUCKET), check)


origin_access = Rule(
    name="cloudfront-s3-origin-access-control",
    area="network",
    kind="security",
    severity=Severity.HIGH,
    summary="CloudFront reads S3 origins through origin access control, not a public bucket or a legacy OAI.",
    seed="seed 002 traffic entry layer (static assets from S3 behind CloudFront)",
    checks="cdk-nag AwsSolutions-CFR7",
    remediation="Create an aws.cloudfront.OriginAccessControl (origin type s3, signing always, sigv4) and set "
    "origin_access_control_id on the S3 origin in the edge layer; leave s3_origin_config's identity empty.",
    resource_types=(DISTRIBUTION,),
)


def _origin_access(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for origin in items(resource.get("origins")):
        domain = str(origin.get("domainName") or "")
        s3 = origin.get("s3OriginConfig")
        if not s3 and ".s3." not in domain and not domain.endswith(".s3.amazonaws.com"):
            continue
        if not origin.get("originAccessControlId"):
            report(f"{resource.label}: S3 origin {origin.get('originId')} without originAccessControlId")
        if s3 and s3.get("originAccessIdentity"):
            report(f"{resource.label}: S3 origin {origin.get('originId')} uses a legacy origin access identity")


RULES: list[tuple[Rule, Check]] = [
    (open_ingress, _open_ingress),
    (default_sg, _default_sg),
    (public_ip, _public_ip),
    (service_public_ip, _service_public_ip),
    (database_public, _database_public),
    (isolated, _isolated),
    (flow_logs, _flow_logs),
    (public_access, _public_access),
    (origin_access, _origin_access),
]
