"""The database layer: Aurora PostgreSQL in the isolated subnets, pooled through RDS Proxy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from app import contract
from components.alarms import MIB, MINUTE, RDS, AlarmSet, Alerting, AuroraMetrics
from components.iam import Account, Statement, policy_document, service_trust_policy
from components.naming import LogPolicy, Naming, child_options
from components.network import Network, Placement
from stack_config.schema import DatabaseConfig

if TYPE_CHECKING:
    from components.context import StackContext

ENGINE = "aurora-postgresql"
POSTGRES_PORT = 5432
MASTER_USERNAME = "platform_admin"
# The user the app's tasks sign in as, through the proxy and with IAM only (migration 0007 creates it).
APP_USERNAME = contract.DB_APP_USER
SERVERLESS_INSTANCE_CLASS = "db.serverless"
# Aurora promotes the reader with the lowest tier on failover (0 to 15); the writer takes tier 0.
MAX_PROMOTION_TIER = 15
ENHANCED_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
# A proxy borrowing a connection waits this long before failing the client (AWS allows 0 to 3600).
PROXY_BORROW_TIMEOUT_SECONDS = 120
# Static parameters only take effect at the next reboot; say so, or the apply fails.
PENDING_REBOOT = "pending-reboot"
IMMEDIATE = "immediate"
# What `log_statement` records: data definition (CREATE, ALTER, DROP, GRANT, REVOKE and role changes), not reads.
AUDITED_STATEMENTS = "ddl"
IAM_AUTH = "IAM_AUTH"
# `rds-db:connect`'s resource: partition, region, account, the proxy's (`prx-...`) or the cluster's (`cluster-...`)
# resource id, and the database user.
DBUSER_ARN = "arn:{0}:rds-db:{1}:{2}:dbuser:{3}/{4}"


def parameter_group_family(engine_version: str) -> str:
    """`17.4` -> `aurora-postgresql17`: the family follows the engine's major version."""
    return f"{ENGINE}{engine_version.split('.', maxsplit=1)[0]}"


@dataclass(frozen=True)
class DatabaseArgs:
    config: DatabaseConfig
    naming: Naming
    account: Account
    # The isolated subnets, one per AZ, and the app's security groups: the only sources it admits.
    placement: Placement
    data_key_arn: pulumi.Input[str]
    logs: LogPolicy
    # CPU, freeable memory and connections per instance, and replica lag, when given where to send them.
    alerting: Alerting | None = None

    @classmethod
    def for_stack(
        cls, stack: StackContext, network: Network, clients: Iterable[aws.ec2.SecurityGroup], alerting: Alerting | None
    ) -> DatabaseArgs:
        """In the network's isolated subnets, reachable from the `clients` security groups only."""
        return cls(
            config=stack.config.database,
            naming=stack.naming,
            account=stack.account,
            placement=network.isolated_for(clients),
            data_key_arn=stack.keys["data"].arn,
            logs=stack.logs,
            alerting=alerting,
        )


class Database(pulumi.ComponentResource):
    """An Aurora PostgreSQL cluster: a writer in the first AZ and readers round-robin over the others,
    provisioned (`instanceClass`) or Serverless v2 (`serverlessV2`), with RDS Proxy in front.

    Connect through `proxy_endpoint` (read-write, the writer) and `proxy_reader_endpoint`
    (read-only, the readers; None without readers) as `username`, with an IAM token a role allowed
    `rds-db:connect` on `proxy_connect_arn()` signs: the proxy checks it and signs in to Aurora with IAM
    as the same user (end-to-end IAM), so no password sits between the app and the database.
    `writer_endpoint`/`reader_endpoint` are the cluster's own endpoints, where the migrator signs in as
    the master user; its credentials live in the RDS-managed secret `master_secret_arn` (rotated by RDS
    every 7 days), encrypted with the data key.
    """

    cluster: aws.rds.Cluster
    writer: aws.rds.ClusterInstance
    readers: list[aws.rds.ClusterInstance]
    security_group: aws.ec2.SecurityGroup
    proxy_security_group: aws.ec2.SecurityGroup
    parameter_group: aws.rds.ClusterParameterGroup
    log_group: aws.cloudwatch.LogGroup
    proxy: aws.rds.Proxy
    proxy_role: aws.iam.Role
    proxy_read_only: aws.rds.ProxyEndpoint | None
    master_secret_arn: pulumi.Output[str]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    port: int = POSTGRES_PORT

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:database:Database", name, None, opts)
        self._name, self._naming, self._args = name, args.naming, args
        config = args.config
        if not args.placement.zones or len(args.placement.zones) != len(args.placement.subnet_ids):
            raise ValueError("database: give one isolated subnet per AZ, in AZ order")
        identifier = self._naming.name("aurora")
        # With automatic minor upgrades, RDS moves the cluster past the pinned minor in a maintenance window
        # (17.4 -> 17.x); a later `pulumi up` would send 17.4 back and RDS refuses any downgrade
        # ("Cannot upgrade aurora-postgresql from 17.x to 17.4"). The pinned version is then the one the
        # cluster is created with, and AWS owns the minor after that.
        self._aws_owned_version = ["engineVersion"] if config.auto_minor_version_upgrade else []

        self.security_group, self.proxy_security_group = self._security_groups()
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=self._naming.name("aurora"),
            description="Aurora: the isolated subnets, one per AZ",
            subnet_ids=list(args.placement.subnet_ids),
            tags=self._naming.tags("aurora"),
            opts=child_options(self),
        )
        self.parameter_group = self._parameter_group(config)
        # RDS creates the export's log group itself, unencrypted and kept forever; created first, it
        # is encrypted with the logs key and expires like every other log.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-postgresql-logs",
            name=f"/aws/rds/cluster/{identifier}/postgresql",
            retention_in_days=args.logs.retention_days,
            kms_key_id=args.logs.key_arn,
            tags=self._naming.tags("aurora", "logs"),
            opts=child_options(self),
        )
        prod_safe = config.final_snapshot
        self.cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=identifier,
            engine=ENGINE,
            engine_mode="provisioned",  # Serverless v2 instances run in provisioned clusters
            engine_version=config.engine_version,
            database_name=config.database_name,
            master_username=MASTER_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.data_key_arn,
            iam_database_authentication_enabled=True,
            storage_encrypted=True,
            kms_key_id=args.data_key_arn,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            db_cluster_parameter_group_name=self.parameter_group.name,
            port=POSTGRES_PORT,
            serverlessv2_scaling_configuration=(
                aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                    min_capacity=config.serverless_v2.min_acu,
                    max_capacity=config.serverless_v2.max_acu,
                )
                if config.serverless_v2
                else None
            ),
            backup_retention_period=config.backup_retention_days,
            preferred_backup_window=config.backup_window,
            preferred_maintenance_window=config.maintenance_window,
            copy_tags_to_snapshot=True,
            deletion_protection=config.deletion_protection,
            skip_final_snapshot=not prod_safe,
            final_snapshot_identifier=self._naming.name("aurora", "final") if prod_safe else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            allow_major_version_upgrade=False,  # majors are pinned in config and planned
            apply_immediately=False,
            tags=self._naming.stateful_tags("aurora"),
            opts=child_options(self, depends_on=[self.log_group], ignore_changes=self._aws_owned_version),
        )
        self.master_secret_arn = self.cluster.master_user_secrets.apply(_first_secret_arn)

        monitoring_role = self._monitoring_role() if config.monitoring_interval_seconds else None
        self.writer = self._instance(0, monitoring_role, depends_on=[])
        # The first instance up becomes the writer: readers wait for it, so it is the one in AZ 1.
        self.readers = [
            self._instance(index, monitoring_role, depends_on=[self.writer])
            for index in range(1, config.reader_count + 1)
        ]
        self.proxy, self.proxy_role, self.proxy_read_only = self._proxy(config)
        self.alarms = (
            aurora_alarms(AlarmSet(self, name, self._naming, args.alerting), self.metrics) if args.alerting else {}
        )

        self.register_outputs(
            {
                "alarm_arns": {label: alarm.arn for label, alarm in self.alarms.items()},
                "cluster_id": self.cluster.cluster_identifier,
                "cluster_arn": self.cluster.arn,
                "cluster_resource_id": self.cluster.cluster_resource_id,
                "writer_endpoint": self.writer_endpoint,
                "reader_endpoint": self.reader_endpoint,
                "proxy_endpoint": self.proxy_endpoint,
                "proxy_reader_endpoint": self.proxy_reader_endpoint,
                "port": POSTGRES_PORT,
                "master_secret_arn": self.master_secret_arn,
                "security_group_id": self.security_group.id,
                "proxy_security_group_id": self.proxy_security_group.id,
                "proxy_connect_arn": self.proxy_connect_arn(),
                "cluster_connect_arn": self.cluster_connect_arn(),
                "instance_ids": self.instance_ids,
            }
        )

    @property
    def writer_endpoint(self) -> pulumi.Output[str]:
        return self.cluster.endpoint

    @property
    def reader_endpoint(self) -> pulumi.Output[str]:
        return self.cluster.reader_endpoint

    @property
    def proxy_endpoint(self) -> pulumi.Output[str]:
        return self.proxy.endpoint

    @property
    def proxy_reader_endpoint(self) -> pulumi.Output[str] | None:
        return self.proxy_read_only.endpoint if self.proxy_read_only else None

    @property
    def username(self) -> str:
        """The database user the app signs in as through the proxy (with an IAM token)."""
        return APP_USERNAME

    def proxy_connect_arn(self, db_user: str = APP_USERNAME) -> pulumi.Output[str]:
        """The `rds-db:connect` resource a client role needs to sign in through the proxy as `db_user`."""

        def connect_arn(proxy_arn: str) -> str:
            # arn:<partition>:rds:<region>:<account>:db-proxy:<prx-id> -> ...:rds-db:...:dbuser:<prx-id>/<user>
            _, partition, _, region, account, _, proxy_id = proxy_arn.split(":")
            return DBUSER_ARN.format(partition, region, account, proxy_id, db_user)

        return self.proxy.arn.apply(connect_arn)

    def grant_connect(self, sid: str = "ConnectToDatabase") -> Statement:
        """Sign in through the proxy as the app's user with an IAM token: the tasks' only way in."""
        return Statement(sid, ("rds-db:connect",), [self.proxy_connect_arn()])

    def grant_read_master_login(self, sid: str = "ReadMigrationLogin") -> Statement:
        """Read the master user's secret (RDS rotates it): what a migrator signing in as the owner needs."""
        return Statement(sid, ("secretsmanager:GetSecretValue",), [self.master_secret_arn])

    def cluster_connect_arn(self, db_user: str = APP_USERNAME) -> pulumi.Output[str]:
        """The `rds-db:connect` resource for signing in to the cluster itself as `db_user` (the proxy's own)."""
        account = self._args.account
        return pulumi.Output.format(
            DBUSER_ARN, account.partition, account.region, account.account_id, self.cluster.cluster_resource_id, db_user
        )

    @property
    def metrics(self) -> AuroraMetrics:
        return AuroraMetrics(self.cluster.cluster_identifier, self.instance_ids)

    @property
    def instances(self) -> list[aws.rds.ClusterInstance]:
        return [self.writer, *self.readers]

    @property
    def instance_ids(self) -> list[pulumi.Output[str]]:
        """DB instance identifiers (CloudWatch's `DBInstanceIdentifier`), writer first."""
        return [instance.identifier for instance in self.instances]

    def _security_groups(self) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        args = self._args
        cluster_sg = aws.ec2.SecurityGroup(
            f"{self._name}-sg",
            vpc_id=args.placement.vpc_id,
            description="Aurora: PostgreSQL from the app and RDS Proxy only",
            tags=self._naming.tags("aurora"),
            opts=child_options(self),
        )
        proxy_sg = aws.ec2.SecurityGroup(
            f"{self._name}-proxy-sg",
            vpc_id=args.placement.vpc_id,
            description="RDS Proxy: PostgreSQL from the app only, out to Aurora only",
            tags=self._naming.tags("aurora", "proxy"),
            opts=child_options(self),
        )
        # No egress rules on the cluster's group: a database opens no connections.
        for index, app_sg in enumerate(args.placement.client_group_ids):
            for target, label in ((cluster_sg, "cluster"), (proxy_sg, "proxy")):
                aws.vpc.SecurityGroupIngressRule(
                    f"{self._name}-{label}-from-app-{index}",
                    security_group_id=target.id,
                    referenced_security_group_id=app_sg,
                    ip_protocol="tcp",
                    from_port=POSTGRES_PORT,
                    to_port=POSTGRES_PORT,
                    description="PostgreSQL from an app security group",
                    opts=child_options(self),
                )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-cluster-from-proxy",
            security_group_id=cluster_sg.id,
            referenced_security_group_id=proxy_sg.id,
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            description="PostgreSQL from RDS Proxy",
            opts=child_options(self),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-proxy-to-cluster",
            security_group_id=proxy_sg.id,
            referenced_security_group_id=cluster_sg.id,
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            description="PostgreSQL to Aurora",
            opts=child_options(self),
        )
        return cluster_sg, proxy_sg

    def _parameter_group(self, config: DatabaseConfig) -> aws.rds.ClusterParameterGroup:
        # The seeds tune shared_buffers to 25 % of RAM and size max_connections by hand. Aurora sets
        # both itself from the instance's memory (or, on Serverless v2, from max ACU): shared_buffers
        # defaults to about 75 % because Aurora's storage has no OS page cache to double-buffer, and
        # max_connections follows memory. Overriding either risks out-of-memory restarts, so they keep
        # Aurora's formulas; RDS Proxy holds the pool, so clients never need more connections.
        # work_mem (the seeds' OLTP tuning) is ours to set.
        parameters = [
            ("rds.force_ssl", "1", IMMEDIATE),
            ("shared_preload_libraries", "pg_stat_statements", PENDING_REBOOT),
            ("pg_stat_statements.track", "top", IMMEDIATE),
            ("log_min_duration_statement", str(config.slow_statement_ms), IMMEDIATE),
            ("log_lock_waits", "1", IMMEDIATE),
            # Every CREATE, ALTER, DROP, GRANT and REVOKE, role changes included, goes to the exported postgresql
            # log: the audit trail of schema and privilege changes. Not pgaudit: it adds a static library (a reboot),
            # a CREATE EXTENSION as rds_superuser and per-session overhead, to log the same statements.
            ("log_statement", AUDITED_STATEMENTS, IMMEDIATE),
            ("work_mem", str(config.work_mem_mb * 1024), IMMEDIATE),  # in kB
        ]
        family = parameter_group_family(config.engine_version)
        return aws.rds.ClusterParameterGroup(
            f"{self._name}-cluster-params",
            name=self._naming.name("aurora", family),
            family=family,
            description="Aurora PostgreSQL: TLS only, slow statements logged, pg_stat_statements",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(name=key, value=value, apply_method=method)
                for key, value, method in parameters
            ],
            tags=self._naming.tags("aurora", family),
            opts=child_options(self),
        )

    def _monitoring_role(self) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{self._name}-monitoring-role",
            assume_role_policy=service_trust_policy("monitoring.rds", self._args.account),
            tags=self._naming.tags("aurora", "monitoring"),
            opts=child_options(self),
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-monitoring-policy",
            role=role.name,
            policy_arn=self._args.account.managed_policy_arn(ENHANCED_MONITORING_POLICY),
            opts=child_options(self),
        )
        return role

    def _instance(
        self, index: int, monitoring_role: aws.iam.Role | None, depends_on: list[pulumi.Resource]
    ) -> aws.rds.ClusterInstance:
        config, zones = self._args.config, self._args.placement.zones
        label = "writer" if index == 0 else f"reader-{index}"
        return aws.rds.ClusterInstance(
            f"{self._name}-{label}",
            identifier=self._naming.name("aurora", str(index + 1)),
            cluster_identifier=self.cluster.id,
            engine=aws.rds.EngineType.AURORA_POSTGRESQL,
            engine_version=self.cluster.engine_version,
            instance_class=config.instance_class or SERVERLESS_INSTANCE_CLASS,
            availability_zone=zones[index % len(zones)],
            promotion_tier=min(index, MAX_PROMOTION_TIER),
            db_subnet_group_name=self.cluster.db_subnet_group_name,
            publicly_accessible=False,
            auto_minor_version_upgrade=config.auto_minor_version_upgrade,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self._args.data_key_arn,
            performance_insights_retention_period=config.performance_insights_retention_days,
            monitoring_interval=config.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role.arn if monitoring_role else None,
            copy_tags_to_snapshot=True,
            apply_immediately=False,
            tags=self._naming.tags("aurora", str(index + 1)),
            opts=child_options(self, depends_on=depends_on, ignore_changes=self._aws_owned_version),
        )

    def _proxy(self, config: DatabaseConfig) -> tuple[aws.rds.Proxy, aws.iam.Role, aws.rds.ProxyEndpoint | None]:
        args = self._args
        role = aws.iam.Role(
            f"{self._name}-proxy-role",
            assume_role_policy=service_trust_policy("rds", args.account),
            tags=self._naming.tags("aurora", "proxy"),
            opts=child_options(self),
        )
        # End-to-end IAM: the proxy signs in to Aurora with IAM as the user the client signed in as, so it
        # needs no secret, only `rds-db:connect` on the cluster as the app's user (and as no other).
        policy = aws.iam.RolePolicy(
            f"{self._name}-proxy-policy",
            role=role.id,
            policy=policy_document(
                Statement("ConnectAsAppUser", ("rds-db:connect",), [self.cluster_connect_arn(APP_USERNAME)]),
            ),
            opts=child_options(self),
        )
        proxy = aws.rds.Proxy(
            f"{self._name}-proxy",
            name=self._naming.name("aurora", "proxy"),
            engine_family="POSTGRESQL",
            role_arn=role.arn,
            vpc_subnet_ids=list(args.placement.subnet_ids),
            vpc_security_group_ids=[self.proxy_security_group.id],
            require_tls=True,  # IAM tokens travel as passwords: TLS only
            idle_client_timeout=config.proxy_idle_client_timeout_seconds,
            debug_logging=False,  # it would log SQL text
            # Clients sign in with IAM tokens only, and the proxy signs in to Aurora with IAM too: no password
            # a rotation could leave stale (the RDS-managed master secret rotates every 7 days). Without it the
            # proxy would check clients against a secret's password, which tasks could only read once, at start.
            default_auth_scheme=IAM_AUTH,
            tags=self._naming.tags("aurora", "proxy"),
            opts=child_options(self, depends_on=[policy]),
        )
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{self._name}-proxy-pool",
            db_proxy_name=proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                max_connections_percent=config.proxy_max_connections_percent,
                max_idle_connections_percent=config.proxy_max_idle_connections_percent,
                connection_borrow_timeout=PROXY_BORROW_TIMEOUT_SECONDS,
            ),
            opts=child_options(self),
        )
        aws.rds.ProxyTarget(
            f"{self._name}-proxy-target",
            db_proxy_name=proxy.name,
            target_group_name=target_group.name,
            db_cluster_identifier=self.cluster.cluster_identifier,
            opts=child_options(self, depends_on=self.instances),
        )
        read_only = None
        if self.readers:
            read_only = aws.rds.ProxyEndpoint(
                f"{self._name}-proxy-read-only",
                db_proxy_name=proxy.name,
                db_proxy_endpoint_name=self._naming.name("aurora", "proxy", "ro"),
                target_role="READ_ONLY",
                vpc_subnet_ids=list(args.placement.subnet_ids),
                vpc_security_group_ids=[self.proxy_security_group.id],
                tags=self._naming.tags("aurora", "proxy", "ro"),
                opts=child_options(self),
            )
        return proxy, role, read_only


def _first_secret_arn(secrets: Sequence[aws.rds.outputs.ClusterMasterUserSecret] | None) -> str:
    arn = secrets[0].secret_arn if secrets else None
    if arn is None:
        raise ValueError("database: the cluster reported no managed master secret")
    return arn


def aurora_alarms(alarms: AlarmSet, metrics: AuroraMetrics) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """Per instance CPU, freeable memory and connections; over the cluster, the readers' lag."""
    thresholds = alarms.thresholds
    for index, instance_id in enumerate(metrics.instance_ids):
        instance = {"DBInstanceIdentifier": instance_id}
        alarms.metric(
            f"aurora-{index}-cpu",
            f"Aurora instance {index}: CPU above {thresholds.aurora_cpu_percent} %"
            f" for {thresholds.aurora_cpu_minutes} minutes",
            namespace=RDS,
            metric="CPUUtilization",
            dimensions=instance,
            threshold=thresholds.aurora_cpu_percent,
            period=thresholds.aurora_cpu_minutes * MINUTE,
            evaluation_periods=1,
        )
        alarms.metric(
            f"aurora-{index}-freeable-memory",
            f"Aurora instance {index}: under {thresholds.aurora_freeable_memory_mib} MiB freeable memory",
            namespace=RDS,
            metric="FreeableMemory",
            dimensions=instance,
            statistic="Minimum",
            comparison="LessThanThreshold",
            threshold=thresholds.aurora_freeable_memory_mib * MIB,
        )
        alarms.metric(
            f"aurora-{index}-connections",
            f"Aurora instance {index}: more than {thresholds.aurora_connections} connections",
            namespace=RDS,
            metric="DatabaseConnections",
            dimensions=instance,
            statistic="Maximum",
            threshold=thresholds.aurora_connections,
        )
    if metrics.cluster_id is not None:
        alarms.metric(
            "aurora-replica-lag",
            f"An Aurora reader lags the writer by more than {thresholds.aurora_replica_lag_ms} ms",
            namespace=RDS,
            metric="AuroraReplicaLagMaximum",
            dimensions={"DBClusterIdentifier": metrics.cluster_id},
            statistic="Maximum",
            threshold=thresholds.aurora_replica_lag_ms,
        )
    return alarms.alarms
