"""Network isolation: no open ingress, closed default security groups, tiers respected, flow logs.

Also what EC2 refuses of security groups: more rules than the quota, text outside its character set.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UnknownValueError

from rules.common import (
    SUBNET,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    Unknown,
    items,
    subnet_tier,
)

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
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


@Rule(
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
def open_ingress(resource: Resource, config: dict[str, Any], report: Report) -> None:
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


@Rule(
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
def default_sg(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(vpc: Resource) -> None:
        groups = stack.referrers(vpc, "vpcId", DEFAULT_SG)
        if not groups:
            report(f"{vpc.label}: its default security group is not adopted and closed", vpc.urn)
        for group in groups:
            if items(group.get("ingress")) or items(group.get("egress")):
                report(f"{group.label}: the default security group has rules", group.urn)

    stack.check_each(stack.of(VPC), check)


@Rule(
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
def public_ip(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(subnet: Resource) -> None:
        if subnet.get("mapPublicIpOnLaunch") is True and subnet_tier(stack, subnet) != "public":
            report(f"{subnet.label}: a {subnet_tier(stack, subnet)} subnet maps public IPs", subnet.urn)

    stack.check_each(stack.of(SUBNET), check)


@Rule(
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
def service_public_ip(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("networkConfiguration", "assignPublicIp") is True:
        report(f"{resource.label}: assignPublicIp is true")


@Rule(
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
def database_public(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("publiclyAccessible") is True:
        report(f"{resource.label}: publiclyAccessible is true")


@Rule(
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
def isolated(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
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


@Rule(
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
def flow_logs(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(vpc: Resource) -> None:
        if not stack.referrers(vpc, "vpcId", FLOW_LOG):
            report(f"{vpc.label}: no flow log", vpc.urn)

    stack.check_each(stack.of(VPC), check)


BLOCK_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@Rule(
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
def public_access(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(bucket: Resource) -> None:
        blocks = stack.referrers(bucket, "bucket", PUBLIC_ACCESS_BLOCK)
        if not blocks:
            report(f"{bucket.label}: no BucketPublicAccessBlock refers to this bucket", bucket.urn)
        for block in blocks:
            off = [setting for setting in BLOCK_SETTINGS if block.get(setting) is not True]
            if off:
                report(f"{bucket.label}: public access block leaves {', '.join(off)} off", bucket.urn)

    stack.check_each(stack.of(BUCKET), check)


OWNERSHIP_CONTROLS = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_ACL = "aws:s3/bucketAcl:BucketAcl"


@Rule(
    name="s3-acls-disabled",
    area="network",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Every bucket has ACLs disabled (BucketOwnerEnforced ownership) and no ACL is set: bucket policies are the "
    "only access grants, log writers included (issue 17).",
    seed="seed 000 security objectives",
    checks="Checkov CKV2_AWS_65, AWS Security Hub S3.12",
    remediation="Give each bucket aws.s3.BucketOwnershipControls(rule=BucketOwnershipControlsRuleArgs("
    "object_ownership='BucketOwnerEnforced')) in the storage layer, drop any aws.s3.BucketAcl, and admit log writers "
    "with bucket-policy statements (CloudFront access logs through a CloudWatch log delivery, not legacy logging).",
    stack=True,
)
def acls_disabled(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(bucket: Resource) -> None:
        for controls in stack.referrers(bucket, "bucket", OWNERSHIP_CONTROLS):
            ownership = (controls.get("rule") or {}).get("objectOwnership")
            if ownership != "BucketOwnerEnforced":
                report(f"{bucket.label}: object ownership {ownership} keeps ACLs enabled", bucket.urn)
        for acl in stack.referrers(bucket, "bucket", BUCKET_ACL):
            report(f"{bucket.label}: {acl.label} sets an ACL", bucket.urn)

    stack.check_each(stack.of(BUCKET), check)


@Rule(
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
def origin_access(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for origin in items(resource.get("origins")):
        domain = str(origin.get("domainName") or "")
        s3 = origin.get("s3OriginConfig")
        if not s3 and ".s3." not in domain and not domain.endswith(".s3.amazonaws.com"):
            continue
        if not origin.get("originAccessControlId"):
            report(f"{resource.label}: S3 origin {origin.get('originId')} without originAccessControlId")
        if s3 and s3.get("originAccessIdentity"):
            report(f"{resource.label}: S3 origin {origin.get('originId')} uses a legacy origin access identity")


GROUP_RULE_TYPES = (INGRESS_RULE, EGRESS_RULE, GROUP_RULE)
BOTH_FAMILIES = ("IPv4", "IPv6")
# Where each kind of peer sits in a rule, across aws.vpc rules, aws.ec2.SecurityGroupRule and inline blocks.
IPV4_KEYS, IPV6_KEYS = ("cidrIpv4", "cidrBlocks"), ("cidrIpv6", "ipv6CidrBlocks")
PREFIX_LIST_KEYS = ("prefixListId", "prefixListIds")
GROUP_KEYS = ("referencedSecurityGroupId", "sourceSecurityGroupId", "securityGroups")
# (what the rule admits, its weight, the IP families whose quota it counts against)
Weighed = tuple[str, int, tuple[str, ...]]


def _direction(rule: Resource) -> str:
    if rule.type == GROUP_RULE:
        return "inbound" if rule.get("type") == "ingress" else "outbound"
    return "inbound" if rule.type == INGRESS_RULE else "outbound"


def _prefix_list_weights(ids: Sequence[Any], in_stack: Sequence[Resource], config: dict[str, Any]) -> list[Weighed]:
    """Each prefix list's weight and families: its maxEntries if the stack creates it, else the knob or the default.

    `in_stack` are the lists the property was computed from (its property dependencies). Paired one to
    one with the ids, they give the weight and family; otherwise every id weighs the heaviest candidate
    and counts against both families, so a group is never weighed lighter than AWS weighs it.
    """
    heaviest_in_stack = max((int(prefix_list.get("maxEntries") or 0) for prefix_list in in_stack), default=0)
    if in_stack and len(in_stack) == len(ids):
        families = {str(prefix_list.get("addressFamily")) for prefix_list in in_stack}
        family = tuple(families) if len(families) == 1 and families <= set(BOTH_FAMILIES) else BOTH_FAMILIES
        return [(f"prefix list {prefix_list.name}", heaviest_in_stack, family) for prefix_list in in_stack]
    weights = config["prefixListWeights"]
    return [
        (
            f"prefix list {list_id}",
            max(int(weights.get(str(list_id), config["defaultPrefixListWeight"])), heaviest_in_stack),
            BOTH_FAMILIES,
        )
        for list_id in ids
    ]


def _weigh(source: Mapping[str, Any] | Resource, lists: Sequence[Resource], config: dict[str, Any]) -> list[Weighed]:
    """What one rule, or one inline block, costs: a rule per CIDR and per group, a prefix list its weight."""

    def values(keys: Sequence[str]) -> list[Any]:
        return [value for key in keys for value in items(source.get(key))]

    weighed: list[Weighed] = [(str(cidr), 1, ("IPv4",)) for cidr in values(IPV4_KEYS)]
    weighed += [(str(cidr), 1, ("IPv6",)) for cidr in values(IPV6_KEYS)]
    # A group reference is one rule; which family's count it takes is not documented, so it takes both.
    weighed += [(f"group {group}", 1, BOTH_FAMILIES) for group in values(GROUP_KEYS)]
    if source.get("self") is True:
        weighed.append(("self", 1, BOTH_FAMILIES))
    try:
        prefix_lists = values(PREFIX_LIST_KEYS)
    except (Unknown, UnknownValueError):
        # A list the stack creates has no id before apply, but the rule was computed from it.
        if not lists:
            raise
        prefix_lists = [prefix_list.name for prefix_list in lists]
    if prefix_lists:
        weighed += _prefix_list_weights(prefix_lists, lists, config)
    return weighed


@Rule(
    name="security-group-rule-quota",
    area="network",
    kind="operations",
    severity=Severity.HIGH,
    summary="No security group holds more inbound, or more outbound, rules than the VPC quota allows (rulesPerGroup, "
    "default 60, counted per direction and per IP family, as AWS counts them); a rule naming a prefix list weighs the "
    "list's max entries, so CloudFront's origin-facing list (55) fits in a group once. AWS refuses the rule that "
    "goes over (RulesPerSecurityGroupLimitExceeded).",
    seed="seed 002 traffic entry layer (only CloudFront's managed prefix list reaches the ALB)",
    checks="",
    remediation="Reference a heavy prefix list from one rule of a group: the load-balancer layer admits CloudFront "
    "on 443 only (the origin is https-only, so port 80 has no use). Otherwise split the rules over two groups, or "
    "raise the account's 'Inbound or outbound rules per security group' quota and rulesPerGroup in "
    "policy/config/STACK.json together. Lists the stack creates weigh their maxEntries; give others (by id) in the "
    "prefixListWeights knob, else they weigh defaultPrefixListWeight (55, the heaviest AWS-managed list).",
    stack=True,
    config={
        "rulesPerGroup": {"type": "integer", "minimum": 1, "default": 60},
        "defaultPrefixListWeight": {"type": "integer", "minimum": 1, "default": 55},
        "prefixListWeights": {"type": "object", "additionalProperties": {"type": "integer"}, "default": {}},
    },
)
def rule_quota(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    quota = config["rulesPerGroup"]

    def check(group: Resource) -> None:
        tally: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)

        def count(direction: str, where: str, weighed: list[Weighed]) -> None:
            for what, weight, families in weighed:
                for family in families:
                    tally[(direction, family)].append((f"{where}: {what}", weight))

        for prop, direction in (("ingress", "inbound"), ("egress", "outbound")):
            lists = stack.deps(group, prop, PREFIX_LIST)
            for block in items(group.get(prop)):
                count(direction, f"inline {prop}", _weigh(block, lists, config))
        for rule in stack.referrers(group, "securityGroupId", *GROUP_RULE_TYPES):
            lists = stack.deps(rule, "prefixListIds" if rule.type == GROUP_RULE else "prefixListId", PREFIX_LIST)
            count(_direction(rule), rule.name, _weigh(rule, lists, config))
        for (direction, family), weighed in sorted(tally.items()):
            total = sum(weight for _, weight in weighed)
            if total > quota:
                parts = ", ".join(f"{what} ({weight})" for what, weight in weighed)
                report(
                    f"{group.label}: {direction} {family} rules weigh {total}, over the quota of {quota}: {parts}",
                    group.urn,
                )

    stack.check_each(stack.of(SECURITY_GROUP, DEFAULT_SG), check)


MAX_GROUP_TEXT = 255
GROUP_TEXT_CHAR = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]")
# PrefixListId and UserIdGroupPair descriptions leave out the & that group descriptions allow.
RULE_TEXT_CHAR = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]")


@Rule(
    name="security-group-text-valid",
    area="network",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="Security group names and descriptions, and rule descriptions, are at most 255 characters that EC2 "
    "accepts: letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* (no & in a rule's description); a name does not "
    "start with sg-. EC2 refuses anything else, an apostrophe included (InvalidParameterValue).",
    seed="seed 000 security objectives (least-privilege security groups, described)",
    checks="",
    remediation='Rephrase the text without the refused characters ("CloudFront\'s ranges" -> "the CloudFront '
    "ranges\"). A group's description cannot change in place: AWS replaces the group, and its rules with it.",
    resource_types=(SECURITY_GROUP, DEFAULT_SG, INGRESS_RULE, EGRESS_RULE, GROUP_RULE),
)
def group_text(resource: Resource, config: dict[str, Any], report: Report) -> None:
    def check(what: str, value: Any, allowed: re.Pattern[str]) -> None:
        text = "" if value is None else str(value)
        refused = sorted({char for char in text if not allowed.fullmatch(char)})
        if refused:
            report(f"{resource.label}: {what} {text!r} has characters EC2 refuses: {' '.join(refused)}")
        if len(text) > MAX_GROUP_TEXT:
            report(f"{resource.label}: {what} is {len(text)} characters, over {MAX_GROUP_TEXT}")

    if resource.type in (SECURITY_GROUP, DEFAULT_SG):
        check("description", resource.get("description"), GROUP_TEXT_CHAR)
        check("name", resource.get("name"), GROUP_TEXT_CHAR)
        if str(resource.get("name") or "").startswith("sg-"):
            report(f"{resource.label}: name {resource.get('name')!r} starts with sg-")
        for prop in ("ingress", "egress"):
            for block in items(resource.get(prop)):
                check(f"{prop} rule description", block.get("description"), RULE_TEXT_CHAR)
    else:
        check("description", resource.get("description"), RULE_TEXT_CHAR)
