"""One stack of the multi-AZ reference architecture: validated config in, layers built, outputs out."""

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from app import contract
from components import workloads
from components.cache import Cache, CacheArgs
from components.certificates import hosted_zone_id
from components.database import Database, DatabaseArgs
from components.edge import Edge, EdgeArgs
from components.iam import Account, Statement
from components.load_balancer import LoadBalancer, LoadBalancerArgs
from components.messaging import Messaging, MessagingArgs
from components.naming import Naming
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs, cache_member_cluster_ids
from components.recovery import Budget, BudgetArgs, Recovery, RecoveryArgs
from components.security import Security, SecurityArgs
from components.service import (
    AppSecurityGroups,
    AppSecurityGroupsArgs,
    Cluster,
    ClusterArgs,
    ContainerSpec,
    Dependency,
    FargateService,
    LoadBalancing,
    ServiceArgs,
)
from components.storage import Storage, StorageArgs
from stack_config.loader import load_stack_config

config = load_stack_config()
naming = Naming(pulumi.get_project(), pulumi.get_stack(), config.environment, config.tags)
provider = aws.Provider(
    "aws",
    region=config.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=naming.base_tags),
)
in_region = pulumi.ResourceOptions(provider=provider)
account = Account.lookup(config.region, pulumi.InvokeOutputOptions(provider=provider))

notification_api_key = config.app.notification_api_key
security = Security(
    "security",
    SecurityArgs(
        naming=naming,
        account=account,
        notification_api_key=(
            pulumi.Output.secret(notification_api_key.get_secret_value()) if notification_api_key else None
        ),
    ),
    in_region,
)
network = Network(
    "network",
    NetworkArgs(
        config=config.network,
        availability_zones=config.availability_zones,
        naming=naming,
        account=account,
        log_retention_days=config.observability.log_retention_days,
        logs_key_arn=security.keys["logs"].arn,
    ),
    in_region,
)
# The tasks' security groups come first: each data store admits exactly these.
app_groups = AppSecurityGroups(
    "app", AppSecurityGroupsArgs(naming=naming, vpc_id=network.vpc.id, services=("api", "worker")), in_region
)
database = Database(
    "database",
    DatabaseArgs(
        config=config.database,
        naming=naming,
        account=account,
        vpc_id=network.vpc.id,
        subnet_ids=network.subnet_ids("isolated"),
        zones=network.zones,
        app_security_group_ids=app_groups.ids,
        data_key_arn=security.keys["data"].arn,
        logs_key_arn=security.keys["logs"].arn,
        log_retention_days=config.observability.log_retention_days,
    ),
    in_region,
)
cache = Cache(
    "cache",
    CacheArgs(
        config=config.cache,
        naming=naming,
        vpc_id=network.vpc.id,
        subnet_ids=network.subnet_ids("isolated"),
        zones=network.zones,
        app_security_group_ids=app_groups.ids,
        data_key_arn=security.keys["data"].arn,
        logs_key_arn=security.keys["logs"].arn,
        log_retention_days=config.observability.log_retention_days,
        auth_token=security.cache_auth_token,
        auth_token_secret_arn=security.secrets["cache-auth-token"].arn,
    ),
    in_region,
)
messaging = Messaging(
    "messaging",
    MessagingArgs(
        config=config.messaging,
        naming=naming,
        account=account,
        messaging_key_arn=security.keys["messaging"].arn,
        alert_emails=config.observability.alert_emails,
    ),
    in_region,
)
storage = Storage(
    "storage",
    StorageArgs(
        naming=naming,
        account=account,
        data_key_arn=security.keys["data"].arn,
        access_log_retention_days=config.observability.access_log_retention_days,
        noncurrent_version_retention_days=config.recovery.noncurrent_version_retention_days,
    ),
    in_region,
)
zone_id = hosted_zone_id(config.edge.hosted_zone, pulumi.InvokeOutputOptions(provider=provider))
origin_domain = f"origin.{config.edge.domain}"
load_balancer = LoadBalancer(
    "load-balancer",
    LoadBalancerArgs(
        naming=naming,
        vpc_id=network.vpc.id,
        public_subnet_ids=network.subnet_ids("public"),
        zone_id=zone_id,
        origin_domain=origin_domain,
        site_domain=config.edge.domain,
        origin_secret=security.origin_verify_value,
        app_port=contract.API_PORT,
        health_path=contract.HEALTH_LIVE_PATH,
        routed_paths=workloads.ROUTED_PATHS,
        access_logs_bucket=storage.logs_bucket.bucket,
        access_logs_grant=storage.logs_bucket_policy,
        deletion_protection=config.environment == "prod",
        blue_green=config.services.api.deployment.strategy == "blue_green",
    ),
    in_region,
)
edge = Edge(
    "edge",
    EdgeArgs(
        naming=naming,
        config=config.edge,
        zone_id=zone_id,
        alb_origin_domain=origin_domain,
        origin_secret=security.origin_verify_value,
        assets_bucket_regional_domain_name=storage.assets_bucket.bucket_regional_domain_name,
        logs_bucket_domain_name=storage.logs_bucket.bucket_domain_name,
        health_path=contract.HEALTH_LIVE_PATH,
        log_retention_days=config.observability.log_retention_days,
        waf_logs_key_arn=security.edge_logs_key_arn,
        distribution_waits_for=[storage.logs_bucket_ownership],
    ),
    in_region,
)
compute = Cluster(
    "compute",
    ClusterArgs(
        naming=naming,
        logs_key_arn=security.keys["logs"].arn,
        log_retention_days=config.observability.log_retention_days,
    ),
    in_region,
)
observability = Observability(
    "observability",
    ObservabilityArgs(
        config=config.observability,
        naming=naming,
        region=config.region,
        logs_key_arn=security.keys["logs"].arn,
        alerts_topic_arn=messaging.alerts_topic.arn,
        alb_arn_suffix=load_balancer.alb.arn_suffix,
        target_group_arn_suffix=load_balancer.target_group.arn_suffix,
        alternate_target_group_arn_suffix=(
            load_balancer.alternate_target_group.arn_suffix if load_balancer.alternate_target_group else None
        ),
        ecs_cluster_name=compute.cluster.name,
        ecs_service_names={"api": "api", "worker": "worker"},
        queue_names={queue: messaging.queues[queue].name for queue in messaging.queues},
        dead_letter_queue_names={queue: dlq.name for queue, dlq in messaging.dead_letter_queues.items()},
        aurora_cluster_id=database.cluster.cluster_identifier,
        aurora_instance_ids=[database.writer.identifier, *[reader.identifier for reader in database.readers]],
        cache_replication_group_id=cache.replication_group_id,
        cache_member_cluster_ids=cache_member_cluster_ids(cache.replication_group_id, 1 + config.cache.replica_count),
    ),
    in_region,
)
worker_queue = next(name for name, queue in config.messaging.queues.items() if queue.consumer == "worker")
data = workloads.DataEndpoints(
    writer_host=database.proxy_endpoint,
    reader_host=database.proxy_reader_endpoint,
    database_name=config.database.database_name,
    database_user=database.username,
    database_secret_arn=database.master_secret_arn,
    cache_host=cache.primary_endpoint,
    cache_port=cache.port,
    cache_secret_arn=security.secrets["cache-auth-token"].arn,
    admin_secret_arn=security.secrets["admin-token"].arn,
    queue_url=messaging.queues[worker_queue].url,
    dead_letter_queue_url=messaging.dead_letter_queues[worker_queue].url,
    notification_secret_arn=(
        security.secrets["notification-api-key"].arn if "notification-api-key" in security.secrets else None
    ),
    queue_arn=messaging.queues[worker_queue].arn,
    dead_letter_queue_arn=messaging.dead_letter_queues[worker_queue].arn,
    messaging_key_arn=security.keys["messaging"].arn,
    data_key_arn=security.keys["data"].arn,
    database_connect_arn=database.proxy_connect_arn(),
    migration_host=database.writer_endpoint,
)
data_stores = [
    Dependency("database", database.proxy_security_group.id, workloads.DB_PORT),
    Dependency("cache", cache.security_group.id, cache.port),
]


def fargate_service(
    name: str,
    container: ContainerSpec,
    statements: list[Statement],
    secret_arns: list[pulumi.Input[str]],
    own_data_stores: tuple[Dependency, ...] = (),
    **wiring: Any,
) -> FargateService:
    """The API and the worker share everything but their container, permissions and wiring."""
    return FargateService(
        name,
        ServiceArgs(
            naming=naming,
            account=account,
            service=name,
            config=getattr(config.services, name),
            az_count=len(network.zones),
            cluster=compute,
            subnet_ids=network.subnet_ids("private"),
            security_group=app_groups.groups[name],
            container=container,
            log_group_name=observability.log_groups[name].name,
            # The repository root, found from this file: the Dockerfile copies from there, wherever it runs.
            image_context=Path(__file__).resolve().parent,
            image_keep_count=config.services.image_keep_count,
            dependencies=[*data_stores, *own_data_stores],
            task_statements=statements,
            secret_arns=secret_arns,
            decrypt_key_arns=[security.keys["data"].arn],
            **wiring,
        ),
        in_region,
    )


api = fargate_service(
    "api",
    workloads.api_container(config, naming.prefix, data),
    workloads.api_statements(data),
    workloads.execution_secret_arns(data, admin=True),
    # Its init container migrates as the master user on Aurora's writer, which the proxy would not admit.
    own_data_stores=(Dependency("aurora-writer", database.security_group.id, workloads.DB_PORT),),
    load_balancing=LoadBalancing(
        alb=load_balancer.alb,
        target_group=load_balancer.target_group,
        listener_rule=load_balancer.forward_rule,
        alb_security_group_id=load_balancer.security_group.id,
        alternate_target_group=load_balancer.alternate_target_group,
    ),
    # A deployment that makes the site fail is rolled back.
    rollback_alarm_names=[observability.alarms[label].name for label in ("alb-5xx", "target-5xx")],
)
worker = fargate_service(
    "worker",
    workloads.worker_container(config, naming.prefix, data),
    workloads.worker_statements(data),
    workloads.execution_secret_arns(data, admin=False),
    backlog_queue_name=messaging.queues[worker_queue].name,
)
recovery = Recovery(
    "recovery",
    RecoveryArgs(config=config.recovery, naming=naming, account=account, data_key_arn=security.keys["data"].arn),
    in_region,
)
budget = Budget(
    "budget",
    BudgetArgs(config=config.budget, naming=naming, alerts_topic_arn=messaging.alerts_topic.arn),
    in_region,
)

pulumi.export("site_url", f"https://{config.edge.domain}")
pulumi.export("distribution_domain_name", edge.distribution.domain_name)
pulumi.export("alb_dns_name", load_balancer.alb.dns_name)
pulumi.export("ecs_cluster_name", compute.cluster.name)
pulumi.export("service_names", {"api": api.service.name, "worker": worker.service.name})
pulumi.export("environment", config.environment)
pulumi.export("region", config.region)
pulumi.export("availability_zones", network.zones)
pulumi.export("vpc_id", network.vpc.id)
pulumi.export("public_subnet_ids", network.subnet_ids("public"))
pulumi.export("private_subnet_ids", network.subnet_ids("private"))
pulumi.export("isolated_subnet_ids", network.subnet_ids("isolated"))
pulumi.export("nat_gateway_ids", [nat.id for nat in network.nat_gateways])
pulumi.export("kms_key_arns", {domain: key.arn for domain, key in security.keys.items()})
pulumi.export("secret_arns", {secret: value.arn for secret, value in security.secrets.items()})
pulumi.export("database_writer_endpoint", database.writer_endpoint)
pulumi.export("database_reader_endpoint", database.reader_endpoint)
pulumi.export("database_proxy_endpoint", database.proxy_endpoint)
pulumi.export("database_proxy_reader_endpoint", database.proxy_reader_endpoint)
pulumi.export("database_secret_arn", database.master_secret_arn)
pulumi.export("database_security_group_id", database.security_group.id)
pulumi.export("cache_primary_endpoint", cache.primary_endpoint)
pulumi.export("cache_reader_endpoint", cache.reader_endpoint)
pulumi.export("cache_port", cache.port)
pulumi.export("queue_urls", {queue: q.url for queue, q in messaging.queues.items()})
pulumi.export("dead_letter_queue_urls", {queue: q.url for queue, q in messaging.dead_letter_queues.items()})
pulumi.export("alerts_topic_arn", messaging.alerts_topic.arn)
pulumi.export("events_topic_arn", messaging.events_topic.arn)
pulumi.export("assets_bucket", storage.assets_bucket.bucket)
pulumi.export("logs_bucket", storage.logs_bucket.bucket)
pulumi.export("log_group_names", {service: group.name for service, group in observability.log_groups.items()})
pulumi.export("dashboard_name", observability.dashboard.dashboard_name)
pulumi.export("backup_vault_arn", recovery.vault.arn)
pulumi.export("backup_plan_id", recovery.plan.id)
pulumi.export("backup_copy_vault_arn", recovery.copy_vault.arn if recovery.copy_vault else None)
pulumi.export("rpo_minutes", config.recovery.rpo_minutes)
pulumi.export("rto_minutes", config.recovery.rto_minutes)
pulumi.export("monthly_budget_usd", config.budget.monthly_usd)
