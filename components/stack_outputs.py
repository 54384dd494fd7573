"""The stack's outputs, from the layers' own attributes: the names other tools and the tests read."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.app_services import AppServices
from components.cache import Cache
from components.context import StackContext
from components.database import Database
from components.ecs import Cluster
from components.edge import Edge
from components.load_balancer import LoadBalancer
from components.messaging import Messaging
from components.network import Network
from components.observability import Observability
from components.recovery import Recovery
from components.storage import Storage


@dataclass(frozen=True)
class StackLayers:
    network: Network
    database: Database
    cache: Cache
    messaging: Messaging
    storage: Storage
    load_balancer: LoadBalancer
    edge: Edge
    compute: Cluster
    observability: Observability
    services: AppServices
    recovery: Recovery


def export_outputs(stack: StackContext, layers: StackLayers) -> None:
    config, network, database, cache = stack.config, layers.network, layers.database, layers.cache
    messaging, storage, recovery = layers.messaging, layers.storage, layers.recovery
    pulumi.export("site_url", f"https://{config.edge.domain}")
    pulumi.export("distribution_domain_name", layers.edge.distribution.domain_name)
    pulumi.export("alb_dns_name", layers.load_balancer.alb.dns_name)
    pulumi.export("ecs_cluster_name", layers.compute.cluster.name)
    pulumi.export("service_names", layers.services.names)
    pulumi.export("environment", config.environment)
    pulumi.export("region", config.region)
    pulumi.export("availability_zones", network.zones)
    pulumi.export("vpc_id", network.vpc.id)
    pulumi.export("public_subnet_ids", network.subnet_ids("public"))
    pulumi.export("private_subnet_ids", network.subnet_ids("private"))
    pulumi.export("isolated_subnet_ids", network.subnet_ids("isolated"))
    pulumi.export("nat_gateway_ids", [nat.id for nat in network.nat_gateways])
    pulumi.export("kms_key_arns", {domain: key.arn for domain, key in stack.keys.items()})
    pulumi.export("secret_arns", {secret: value.arn for secret, value in stack.security.secrets.items()})
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
    pulumi.export("log_group_names", {name: group.name for name, group in layers.observability.log_groups.items()})
    pulumi.export("dashboard_name", layers.observability.dashboard.dashboard_name)
    pulumi.export("backup_vault_arn", recovery.vault.arn)
    pulumi.export("backup_plan_id", recovery.plan.id)
    pulumi.export("backup_copy_vault_arn", recovery.copy_vault.arn if recovery.copy_vault else None)
    pulumi.export("rpo_minutes", config.recovery.rpo_minutes)
    pulumi.export("rto_minutes", config.recovery.rto_minutes)
    pulumi.export("monthly_budget_usd", config.budget.monthly_usd)
