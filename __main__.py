"""One stack of the multi-AZ reference architecture: validated config in, layers built, outputs out."""

import pulumi
import pulumi_aws as aws

from components.cache import Cache, CacheArgs
from components.database import Database, DatabaseArgs
from components.iam import Account
from components.messaging import Messaging, MessagingArgs
from components.naming import Naming
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs, cache_member_cluster_ids
from components.recovery import Budget, BudgetArgs, Recovery, RecoveryArgs
from components.security import Security, SecurityArgs
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
# The app's security groups arrive with the services layer; until then nothing may reach the data
# stores (each layer's group admits only the app groups it is given).
app_security_group_ids: list[pulumi.Input[str]] = []
database = Database(
    "database",
    DatabaseArgs(
        config=config.database,
        naming=naming,
        account=account,
        vpc_id=network.vpc.id,
        subnet_ids=network.subnet_ids("isolated"),
        zones=network.zones,
        app_security_group_ids=app_security_group_ids,
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
        app_security_group_ids=app_security_group_ids,
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
# The request path (ALB, target group, ECS) passes its dimensions in when it lands.
observability = Observability(
    "observability",
    ObservabilityArgs(
        config=config.observability,
        naming=naming,
        region=config.region,
        logs_key_arn=security.keys["logs"].arn,
        alerts_topic_arn=messaging.alerts_topic.arn,
        queue_names={queue: messaging.queues[queue].name for queue in messaging.queues},
        dead_letter_queue_names={queue: dlq.name for queue, dlq in messaging.dead_letter_queues.items()},
        aurora_cluster_id=database.cluster.cluster_identifier,
        aurora_instance_ids=[database.writer.identifier, *[reader.identifier for reader in database.readers]],
        cache_replication_group_id=cache.replication_group_id,
        cache_member_cluster_ids=cache_member_cluster_ids(cache.replication_group_id, 1 + config.cache.replica_count),
    ),
    in_region,
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
