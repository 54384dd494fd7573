"""Availability: every tier across AZs, Multi-AZ data stores, NAT per AZ, safe deployments, scaling floors."""

from __future__ import annotations

from functools import partial
from typing import Any

from pulumi_policy import Severity

from rules.common import (
    NAT,
    SUBNET,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    property_true,
    route_tables_of,
    route_targets,
    subnet_tier,
    zone_of,
)

CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
CACHE_SUBNETS = "aws:elasticache/subnetGroup:SubnetGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ECS_SERVICE = "aws:ecs/service:Service"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
DESIRED_COUNT = "ecs:service:DesiredCount"


def _zones(subnets: list[Resource]) -> set[str]:
    return {zone for zone in (zone_of(subnet) for subnet in subnets) if zone}


@Rule(
    name="aurora-multi-az",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="Every Aurora cluster has a writer and at least one reader, spread over at least two AZs.",
    seed="seed 002 data layer (Aurora Multi-AZ, automatic failover), seed 000 HA across AZs",
    checks="Checkov CKV_AWS_157, cdk-nag NIST.800.53 RDSMultiAZSupport",
    remediation="Set platform:database.readerCount >= 1 in Pulumi.STACK.yaml (prod: 2) so the database layer "
    "creates aws.rds.ClusterInstance readers, and give the cluster a subnet group over the isolated subnets of "
    "every AZ.",
    stack=True,
    config={"minInstances": {"type": "integer", "minimum": 1, "default": 2}},
)
def aurora_multi_az(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(cluster: Resource) -> None:
        instances = stack.referrers(cluster, "clusterIdentifier", CLUSTER_INSTANCE)
        if len(instances) < config["minInstances"]:
            report(f"{cluster.label}: {len(instances)} instance(s), needs {config['minInstances']}", cluster.urn)
            return
        pinned = {str(i.get("availabilityZone")) for i in instances if i.get("availabilityZone")}
        if len(pinned) == len(instances):
            zones = pinned
        else:  # RDS places unpinned instances across the subnet group's AZs
            zones = pinned | {
                zone
                for group in stack.deps(cluster, "dbSubnetGroupName", RDS_SUBNETS)
                for zone in _zones(stack.deps(group, "subnetIds", SUBNET))
            }
        if len(zones) < 2:
            report(f"{cluster.label}: instances can only be in {sorted(zones) or 'one unknown AZ'}", cluster.urn)

    stack.check_each(stack.of(CLUSTER), check)


@Rule(
    name="elasticache-multi-az-failover",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="ElastiCache replication groups have replicas, Multi-AZ and automatic failover.",
    seed="seed 002 caching layer (num_cache_clusters 3, automatic_failover_enabled, multi_az_enabled)",
    checks="",
    remediation="Set automatic_failover_enabled=True, multi_az_enabled=True and num_cache_clusters >= 2 (prod: "
    "platform:cache replicas 2) on aws.elasticache.ReplicationGroup in the cache layer.",
    resource_types=(REPLICATION_GROUP,),
)
def cache_multi_az(resource: Resource, config: dict[str, Any], report: Report) -> None:
    problems = []
    if resource.get("automaticFailoverEnabled") is not True:
        problems.append("automaticFailoverEnabled")
    if resource.get("multiAzEnabled") is not True:
        problems.append("multiAzEnabled")
    nodes = resource.get("numCacheClusters")
    replicas = resource.get("replicasPerNodeGroup")
    if not ((nodes is not None and nodes >= 2) or (replicas is not None and replicas >= 1)):
        problems.append("a replica (numCacheClusters >= 2 or replicasPerNodeGroup >= 1)")
    if problems:
        report(f"{resource.label}: missing {', '.join(problems)}")


@Rule(
    name="nat-gateway-per-az",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="Each private subnet reaches the internet through a NAT gateway in its own AZ, so one AZ's outage "
    "cannot cut another's egress.",
    seed="seed 002 network layout (NAT gateway per AZ), seed 000 HA across AZs",
    checks="",
    remediation="Set platform:network.natStrategy: one_per_az in Pulumi.STACK.yaml (components/network.py then "
    "routes each private subnet to its own AZ's NAT).",
    stack=True,
)
def nat_per_az(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(subnet: Resource) -> None:
        if subnet_tier(stack, subnet) != "private":
            return
        zone = zone_of(subnet)
        for table in route_tables_of(stack, subnet):
            for nat in route_targets(stack, table):
                if nat.type != NAT:
                    continue
                nat_zones = _zones(stack.deps(nat, "subnetId", SUBNET))
                if zone not in nat_zones:
                    report(f"{subnet.label} in {zone}: egress through {nat.name} in {sorted(nat_zones)}", subnet.urn)

    stack.check_each(stack.of(SUBNET), check)


@Rule(
    name="tiers-span-azs",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="Every tier spans at least two AZs: each subnet tier, each load balancer, each ECS service and each "
    "database or cache subnet group.",
    seed="seed 000 HA across AZs, seed 002 reference architecture (multi-AZ everywhere)",
    checks="cdk-nag NIST.800.53 ELBMultipleAZs",
    remediation="Set platform:availabilityZones >= 2 in Pulumi.STACK.yaml and pass every AZ's subnets "
    "(network.subnet_ids(tier)) to load balancers, services and subnet groups.",
    stack=True,
    config={"minZones": {"type": "integer", "minimum": 1, "default": 2}},
)
def tiers_span(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    minimum = config["minZones"]
    subnets = stack.of(SUBNET)
    by_tier: dict[str, list[Resource]] = {}
    for subnet in subnets:
        tier = stack.guard(partial(subnet_tier, stack, subnet))
        if tier is not None:
            by_tier.setdefault(tier, []).append(subnet)
    for tier, members in sorted(by_tier.items()):
        if len(_zones(members)) < minimum:
            report(f"{tier} subnets span {len(_zones(members))} AZ(s), need {minimum}", None)
    placed = [(LOAD_BALANCER, "subnets"), (ECS_SERVICE, "networkConfiguration"), (RDS_SUBNETS, "subnetIds")]
    placed.append((CACHE_SUBNETS, "subnetIds"))
    for type_, prop in placed:
        for resource in stack.of(type_):
            subnets = stack.deps(resource, prop, SUBNET)
            if not subnets and resource.get(prop):
                # Subnet ids from outside the stack (literals, stack references): their AZs are unknown here.
                stack.unknowns.append(f"{resource.label}: {prop} names subnets that are not resources of this stack")
                continue
            zones = _zones(subnets)
            if len(zones) < minimum:
                report(f"{resource.label}: its subnets span {len(zones)} AZ(s), need {minimum}", resource.urn)


@Rule(
    name="ecs-deployment-circuit-breaker",
    area="availability",
    kind="availability",
    severity=Severity.MEDIUM,
    summary="ECS services deploy with the ECS controller's circuit breaker and automatic rollback.",
    seed="seed 003 resilience patterns (circuit breaker, fail fast), seed 002 compute layer",
    checks="",
    remediation="Set deployment_circuit_breaker=ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True) on "
    "aws.ecs.Service in the service layer (use ECS-native blue/green via deployment_configuration strategy, not "
    "the CODE_DEPLOY controller).",
    resource_types=(ECS_SERVICE,),
)
def circuit_breaker(resource: Resource, config: dict[str, Any], report: Report) -> None:
    controller = resource.get("deploymentController", "type") or "ECS"
    if controller != "ECS":
        report(f"{resource.label}: the {controller} deployment controller has no circuit breaker")
        return
    breaker = resource.get("deploymentCircuitBreaker") or {}
    if breaker.get("enable") is not True or breaker.get("rollback") is not True:
        report(f"{resource.label}: deploymentCircuitBreaker enable/rollback not both true")


@Rule(
    name="ecs-autoscaling-min-tasks",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="Every ECS service scales with Application Auto Scaling (a target and a policy), with a floor of at "
    "least the configured tasks per AZ times its AZs.",
    seed="seed 002 compute layer (target tracking, asymmetric cooldowns), seed 004 horizontal autoscaling",
    checks="",
    remediation="Create aws.appautoscaling.Target(resource_id=service/<cluster>/<service>, scalable_dimension="
    "'ecs:service:DesiredCount', min_capacity=platform:services.minTasksPerAz x AZs) and a target-tracking "
    "aws.appautoscaling.Policy in the service layer; minTasksPerAz in policy/config/STACK.json must match "
    "platform:services.minTasksPerAz.",
    stack=True,
    config={"minTasksPerAz": {"type": "integer", "minimum": 1, "default": 1}},
)
def autoscaling(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(service: Resource) -> None:
        targets = [
            t
            for t in stack.referrers(service, "resourceId", SCALING_TARGET)
            if t.get("scalableDimension") == DESIRED_COUNT
        ]
        if not targets:
            report(f"{service.label}: no Application Auto Scaling target", service.urn)
            return
        zones = max(1, len(_zones(stack.deps(service, "networkConfiguration", SUBNET))))
        floor = config["minTasksPerAz"] * zones
        for target in targets:
            if (target.get("minCapacity") or 0) < floor:
                report(f"{service.label}: minCapacity {target.get('minCapacity')} < {floor} ({zones} AZs)", service.urn)
            policies = stack.referrers(target, "resourceId", SCALING_POLICY) + stack.referrers(
                service, "resourceId", SCALING_POLICY
            )
            if not policies:
                report(f"{service.label}: a scaling target without a scaling policy", service.urn)

    stack.check_each(stack.of(ECS_SERVICE), check)


aurora_deletion = Rule(
    name="aurora-deletion-protection",
    area="availability",
    kind="availability",
    severity=Severity.HIGH,
    summary="Aurora clusters have deletion protection.",
    seed="seed 000 fault tolerance, seed 002 data layer",
    checks="Checkov CKV_AWS_139, cdk-nag AwsSolutions-RDS10",
    remediation="Set platform:database.deletionProtection: true in Pulumi.STACK.yaml (the database layer passes it "
    "to aws.rds.Cluster deletion_protection).",
    resource_types=(CLUSTER,),
    check=property_true("deletionProtection"),
)


alb_deletion = Rule(
    name="alb-deletion-protection",
    area="availability",
    kind="availability",
    severity=Severity.MEDIUM,
    summary="Load balancers have deletion protection.",
    seed="seed 002 traffic entry layer",
    checks="Checkov CKV_AWS_150",
    remediation="Set enable_deletion_protection=True on aws.lb.LoadBalancer in the load-balancer layer "
    "(__main__.py passes deletion_protection for the prod environment).",
    resource_types=(LOAD_BALANCER,),
    check=property_true("enableDeletionProtection"),
)
