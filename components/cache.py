"""The cache layer: a Valkey (or Redis OSS) replication group in the isolated subnets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.naming import Naming, child_options
from stack_config.schema import CacheConfig

CACHE_PORT = 6379
# ElastiCache's identifier limits: replication group ids 40 characters, subnet and parameter group names 255.
REPLICATION_GROUP_ID_MAX_LENGTH = 40
GROUP_NAME_MAX_LENGTH = 255


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
    vpc_id: pulumi.Input[str]
    # The isolated subnets, one per AZ, in AZ order (`zones`).
    subnet_ids: Sequence[pulumi.Input[str]]
    zones: Sequence[str]
    # The app's security groups: the only sources allowed to reach 6379.
    app_security_group_ids: Sequence[pulumi.Input[str]]
    data_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    # The AUTH token (a Pulumi secret) and the Secrets Manager secret holding it, for the app.
    auth_token: pulumi.Input[str]
    auth_token_secret_arn: pulumi.Input[str]


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
    port: int = CACHE_PORT

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:cache:Cache", name, None, opts)
        self._name, self._naming = name, args.naming
        config = args.config
        if not args.zones or len(args.zones) != len(args.subnet_ids):
            raise ValueError("cache: give one isolated subnet per AZ, in AZ order")
        self.auth_token_secret_arn = pulumi.Output.from_input(args.auth_token_secret_arn)

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Cache: 6379 from the app only",
            tags=self._naming.tags("cache"),
            opts=child_options(self),
        )
        # No egress rules: the cache opens no connections.
        for index, app_sg in enumerate(args.app_security_group_ids):
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
            subnet_ids=list(args.subnet_ids),
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
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=self._naming.tags("cache", "slow-log"),
            opts=child_options(self),
        )
        nodes = 1 + config.replica_count
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
            preferred_cache_cluster_azs=[args.zones[index % len(args.zones)] for index in range(nodes)],
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
            opts=child_options(self),
        )
        self.register_outputs(
            {
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
