"""The cache layer: a Valkey (or Redis OSS) replication group in the isolated subnets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.alarms import CACHE, AlarmSet, Alerting, CacheMetrics
from components.naming import LogPolicy, Naming, child_options
from components.network import Network, Placement
from stack_config.schema import CacheConfig

if TYPE_CHECKING:
    from components.context import StackContext

CACHE_PORT = 6379
# ElastiCache's identifier limits: replication group ids 40 characters, subnet and parameter group names 255.
REPLICATION_GROUP_ID_MAX_LENGTH = 40
GROUP_NAME_MAX_LENGTH = 255
EVICTIONS_PERIOD = 5 * 60


def parameter_group_family(engine: str, engine_version: str) -> str:
    """`valkey 8.0` -> `valkey8`, `redis 7.1` -> `redis7`, `redis 6.2` -> `redis6.x`."""
    major = engine_version.split(".", maxsplit=1)[0]
    if engine == "redis" and major == "6":
        return "redis6.x"
    return f"{engine}{major}"


@dataclass(frozen=True)
class CacheArgs:
    config: CacheConfig
    naming: Naming
    # The isolated subnets, one per AZ, and the app's security groups: the only sources it admits.
    placement: Placement
    data_key_arn: pulumi.Input[str]
    logs: LogPolicy
    # The AUTH token (a Pulumi secret) and the Secrets Manager secret holding it, for the app.
    auth_token: pulumi.Input[str]
    auth_token_secret_arn: pulumi.Input[str]
    # Engine CPU, memory and evictions per node, when given where to send them.
    alerting: Alerting | None = None

    @classmethod
    def for_stack(
        cls, stack: StackContext, network: Network, clients: Iterable[aws.ec2.SecurityGroup], alerting: Alerting | None
    ) -> CacheArgs:
        """In the network's isolated subnets, reachable from the `clients` security groups only, with the AUTH
        token the security layer generated."""
        return cls(
            config=stack.config.cache,
            naming=stack.naming,
            placement=network.isolated_for(clients),
            data_key_arn=stack.keys["data"].arn,
            logs=stack.logs,
            auth_token=stack.security.cache_auth_token,
            auth_token_secret_arn=stack.security.secrets["cache-auth-token"].arn,
            alerting=alerting,
        )


class Cache(pulumi.ComponentResource):
    """One primary plus `replicaCount` replicas spread over the AZs, with automatic failover, Multi-AZ,
    encryption at rest (data key) and in transit (TLS required), and an AUTH token.

    Clients connect with TLS to `primary_endpoint` (writes) or `reader_endpoint` (reads) on `port`,
    with the token read from `auth_token_secret_arn`.
    """

    replication_group: aws.elasticache.ReplicationGroup
    security_group: aws.ec2.SecurityGroup
    parameter_group: aws.elasticache.ParameterGroup
    slow_log_group: aws.cloudwatch.LogGroup
    auth_token_secret_arn: pulumi.Output[str]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    port: int = CACHE_PORT

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:cache:Cache", name, None, opts)
        self._name, self._naming = name, args.naming
        config = args.config
        if not args.placement.zones or len(args.placement.zones) != len(args.placement.subnet_ids):
            raise ValueError("cache: give one isolated subnet per AZ, in AZ order")
        self.auth_token_secret_arn = pulumi.Output.from_input(args.auth_token_secret_arn)

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.placement.vpc_id,
            description="Cache: 6379 from the app only",
            tags=self._naming.tags("cache"),
            opts=child_options(self),
        )
        # No egress rules: the cache opens no connections.
        for index, app_sg in enumerate(args.placement.client_group_ids):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-app-{index}",
                security_group_id=self.security_group.id,
                referenced_security_group_id=app_sg,
                ip_protocol="tcp",
                from_port=CACHE_PORT,
                to_port=CACHE_PORT,
                description="Cache from an app security group",
                opts=child_options(self),
            )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=self._naming.name("cache", max_length=GROUP_NAME_MAX_LENGTH),
            description="Cache: the isolated subnets, one per AZ",
            subnet_ids=list(args.placement.subnet_ids),
            tags=self._naming.tags("cache"),
            opts=child_options(self),
        )
        family = parameter_group_family(config.engine, config.engine_version)
        self.parameter_group = aws.elasticache.ParameterGroup(
            f"{name}-params",
            name=self._naming.name("cache", family, max_length=GROUP_NAME_MAX_LENGTH),
            family=family,
            # A parameter group's description cannot change in place (ElastiCache has no call for it), and
            # a replacement under the same name is refused: the description must not follow the config.
            description="Cache: explicit eviction policy",
            parameters=[
                aws.elasticache.ParameterGroupParameterArgs(name="maxmemory-policy", value=config.eviction_policy)
            ],
            tags=self._naming.tags("cache", family),
            opts=child_options(self),
        )
        self.slow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-slow-log",
            name=self._naming.log_group("cache", "slow-log"),
            retention_in_days=args.logs.retention_days,
            kms_key_id=args.logs.key_arn,
            tags=self._naming.tags("cache", "slow-log"),
            opts=child_options(self),
        )
        nodes, zones = 1 + config.replica_count, args.placement.zones
        failover = config.replica_count > 0
        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-replication-group",
            replication_group_id=self._naming.name("cache", max_length=REPLICATION_GROUP_ID_MAX_LENGTH),
            description=f"{self._naming.prefix}: cache, sessions, rate limits and idempotency keys",
            engine=config.engine,
            engine_version=config.engine_version,
            node_type=config.node_type,
            port=CACHE_PORT,
            num_cache_clusters=nodes,
            # The primary in the first AZ, replicas round-robin over the others.
            preferred_cache_cluster_azs=[zones[index % len(zones)] for index in range(nodes)],
            automatic_failover_enabled=failover,
            multi_az_enabled=failover,
            subnet_group_name=subnet_group.name,
            security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            at_rest_encryption_enabled=True,
            kms_key_id=args.data_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=pulumi.Output.secret(args.auth_token),
            snapshot_retention_limit=config.snapshot_retention_days,
            snapshot_window=config.snapshot_window,
            maintenance_window=config.maintenance_window,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=self.slow_log_group.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            tags=self._naming.stateful_tags("cache"),
            # The token rotates (rotation/cache_token.py): Pulumi seeds it and never sets it back.
            opts=child_options(self, ignore_changes=["authToken"]),
        )
        self._nodes = nodes
        self.alarms = (
            cache_alarms(AlarmSet(self, name, self._naming, args.alerting), self.metrics) if args.alerting else {}
        )
        self.register_outputs(
            {
                "alarm_arns": {label: alarm.arn for label, alarm in self.alarms.items()},
                "replication_group_id": self.replication_group.id,
                "member_cluster_ids": self.replication_group.member_clusters,
                "primary_endpoint": self.primary_endpoint,
                "reader_endpoint": self.reader_endpoint,
                "port": CACHE_PORT,
                "auth_token_secret_arn": self.auth_token_secret_arn,
                "security_group_id": self.security_group.id,
            }
        )

    @property
    def primary_endpoint(self) -> pulumi.Output[str]:
        return self.replication_group.primary_endpoint_address

    @property
    def reader_endpoint(self) -> pulumi.Output[str]:
        return self.replication_group.reader_endpoint_address

    @property
    def replication_group_id(self) -> pulumi.Output[str]:
        return self.replication_group.id

    @property
    def member_cluster_ids(self) -> pulumi.Output[Sequence[str]]:
        """The node ids (CloudWatch's `CacheClusterId`), for per-node alarms."""
        return self.replication_group.member_clusters

    @property
    def metrics(self) -> CacheMetrics:
        # Derived from the group id, not `member_clusters`: known at plan time, so alarms and the dashboard plan.
        return CacheMetrics(cache_member_cluster_ids(self.replication_group_id, self._nodes))


def cache_member_cluster_ids(replication_group_id: pulumi.Input[str], nodes: int) -> list[pulumi.Output[str]]:
    """A cluster-mode-disabled replication group's node ids, `<group>-001` to `<group>-00N`, known at plan time."""
    group = pulumi.Output.from_input(replication_group_id)
    return [pulumi.Output.format("{0}-{1:03d}", group, number) for number in range(1, nodes + 1)]


def cache_alarms(alarms: AlarmSet, metrics: CacheMetrics) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """Per node: the engine's CPU, memory against maxmemory, evictions."""
    thresholds = alarms.thresholds
    for index, cluster_id in enumerate(metrics.member_cluster_ids):
        node = {"CacheClusterId": cluster_id}
        alarms.metric(
            f"cache-{index}-cpu",
            f"Cache node {index}: engine CPU above {thresholds.redis_cpu_percent} %",
            namespace=CACHE,
            # The engine's own thread: Redis and Valkey run commands on one core.
            metric="EngineCPUUtilization",
            dimensions=node,
            threshold=thresholds.redis_cpu_percent,
        )
        alarms.metric(
            f"cache-{index}-memory",
            f"Cache node {index}: memory above {thresholds.redis_memory_percent} % of maxmemory",
            namespace=CACHE,
            metric="DatabaseMemoryUsagePercentage",
            dimensions=node,
            threshold=thresholds.redis_memory_percent,
        )
        alarms.metric(
            f"cache-{index}-evictions",
            f"Cache node {index}: more than {thresholds.redis_evictions} evictions in 5 minutes",
            namespace=CACHE,
            metric="Evictions",
            dimensions=node,
            statistic="Sum",
            threshold=thresholds.redis_evictions,
            period=EVICTIONS_PERIOD,
            evaluation_periods=1,
        )
    return alarms.alarms
