"""The bundled app's two services, assembled from the layers they run on: what each container runs, the
settings it gets, the data stores it reaches and what it may do (granted by each resource it uses).

Names, ports, paths and commands all come from `app/contract.py`, the one source the app reads too: this
module is where the platform meets the app, so the layers below it stay free of the app's details.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi

from app import contract
from components.alarms import MINUTE
from components.cache import Cache
from components.context import StackContext
from components.database import Database
from components.ecs import (
    AppSecurityGroups,
    Cluster,
    ContainerSpec,
    Dependency,
    FargateService,
    ImageSource,
    ServiceArgs,
)
from components.ecs.service import DeploymentWatch
from components.iam import Statement
from components.load_balancer import LoadBalancer
from components.messaging import Messaging
from components.network import Network
from components.observability import Observability
from components.slo import ServiceLevelObjectives, fastest_burn_threshold, worker_availability
from stack_config.schema import ApiCompartments, WorkerCompartments

# The uid:gid the image's non-root user runs as (app/Dockerfile).
APP_USER = "10001:10001"
# The ADOT sidecar listens for OTLP over HTTP on the task's loopback.
OTLP_ENDPOINT = "http://127.0.0.1:4318"
# The routes the ALB forwards (with the origin secret); everything else is answered 403.
ROUTED_PATHS = ("/api/*", "/health/*")
# The repository root: the Dockerfile copies from there, wherever the program runs.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("api", "worker")
CACHE_SECRET, ADMIN_SECRET, NOTIFICATION_SECRET = "cache-auth-token", "admin-token", "notification-api-key"


@dataclass(frozen=True)
class AppLayers:
    """The layers the app's services run on (network, task security groups, cluster, log groups) and talk to."""

    network: Network
    groups: AppSecurityGroups
    cluster: Cluster
    observability: Observability
    database: Database
    cache: Cache
    messaging: Messaging
    load_balancer: LoadBalancer
    # The SLOs' fast-burn alarms roll the API's deployments back too.
    slos: ServiceLevelObjectives | None = None


@dataclass(frozen=True)
class AppServices:
    api: FargateService
    worker: FargateService

    @property
    def names(self) -> dict[str, pulumi.Output[str]]:
        return {"api": self.api.service.name, "worker": self.worker.service.name}


def app_services(stack: StackContext, layers: AppLayers) -> AppServices:
    """The API behind the load balancer (it migrates the database first) and the worker on its queue."""
    database, messaging, security = layers.database, layers.messaging, stack.security
    queue = worker_queue(stack)
    notification = NOTIFICATION_SECRET if NOTIFICATION_SECRET in security.secrets else None
    api = _service(
        stack,
        layers,
        "api",
        _api_container(stack, layers),
        statements=[
            database.grant_connect(),
            # The init container's `app migrate` signs in as the master user with the secret's current password.
            database.grant_read_master_login(),
            security.grant_read(ADMIN_SECRET, "ReadAdminToken"),
            security.grant_decrypt("data"),
        ],
        # The admin token rotates: the API reads it by ARN at run time (below), not once from ECS at start.
        own_secrets=[],
        # Its init container migrates as the master user on Aurora's writer, which the proxy would not admit.
        own_data_stores=[Dependency("aurora-writer", database.security_group.id, database.port)],
        load_balancer=layers.load_balancer,
        extra_rollback_alarm_names=[alarm.name for alarm in layers.slos.fast_burn_alarms("api")] if layers.slos else [],
        fault_injection=stack.config.chaos.enabled and "database-latency" in stack.config.chaos.experiments,
    )
    worker = _service(
        stack,
        layers,
        "worker",
        _worker_container(stack, layers, notification),
        # The outbox relay rides in the worker's task: it publishes to the events topic, never to a queue.
        statements=[database.grant_connect(), *messaging.grant_consume(queue), *messaging.grant_publish()],
        own_secrets=[notification] if notification else [],
        backlog_queue_name=messaging.queues[queue].name,
        deployment_watch=_worker_deployment_watch(stack, messaging.dead_letter_queues[queue].name),
    )
    # The exec key admits the task roles of the services an operator may open a shell in, and no others.
    exec_enabled = [
        s for name, s in (("api", api), ("worker", worker)) if getattr(stack.config.services, name).execute_command
    ]
    layers.cluster.admit_exec_sessions([service.task_role.arn for service in exec_enabled])
    return AppServices(api, worker)


def worker_queue(stack: StackContext) -> str:
    """The configured queue the worker consumes (the API publishes orders to it)."""
    return next(name for name, queue in stack.config.messaging.queues.items() if queue.consumer == "worker")


def _service(
    stack: StackContext,
    layers: AppLayers,
    name: str,
    container: ContainerSpec,
    *,
    statements: list[Statement],
    own_secrets: list[str],
    own_data_stores: list[Dependency] | None = None,
    load_balancer: LoadBalancer | None = None,
    backlog_queue_name: pulumi.Input[str] | None = None,
    deployment_watch: DeploymentWatch | None = None,
    extra_rollback_alarm_names: list[pulumi.Output[str]] | None = None,
    fault_injection: bool = False,
) -> FargateService:
    """The API and the worker share everything but their container, permissions and wiring."""
    config, security = stack.config, stack.security
    data_stores = [
        Dependency("database", layers.database.proxy_security_group.id, layers.database.port),
        Dependency("cache", layers.cache.security_group.id, layers.cache.port),
        *(own_data_stores or []),
    ]
    return FargateService(
        name,
        ServiceArgs(
            naming=stack.naming,
            account=stack.account,
            service=name,
            config=getattr(config.services, name),
            az_count=len(layers.network.zones),
            cluster=layers.cluster,
            subnet_ids=layers.network.subnet_ids("private"),
            security_group=layers.groups.groups[name],
            container=container,
            log_group_name=layers.observability.log_groups[name].name,
            image=ImageSource(REPOSITORY_ROOT, keep_count=config.services.image_keep_count),
            dependencies=data_stores,
            task_statements=statements,
            # The secrets ECS reads to start a task: exactly those its containers name.
            secret_arns=[layers.cache.auth_token_secret_arn, *[security.secrets[s].arn for s in own_secrets]],
            decrypt_key_arns=[stack.keys["data"].arn],
            load_balancer=load_balancer,
            backlog_queue_name=backlog_queue_name,
            alerting=layers.messaging.alerting,
            deployment_watch=deployment_watch,
            extra_rollback_alarm_names=extra_rollback_alarm_names or [],
            fault_injection=fault_injection,
        ),
        stack.opts,
    )


def _worker_deployment_watch(stack: StackContext, dead_letter_queue_name: pulumi.Input[str]) -> DeploymentWatch:
    """The worker's rollback: its SLO's failed-message ratio past the fastest page burn, or a DLQ arrival."""
    config = stack.config
    errors = worker_availability(config.slos, config.observability.app_metrics_namespace)
    threshold = fastest_burn_threshold(errors, config.slos.window_days)
    return DeploymentWatch(errors.queries(MINUTE), threshold, dead_letter_queue_name)


def _shared_settings(stack: StackContext, layers: AppLayers, service: str) -> dict[str, pulumi.Input[str]]:
    config, prefix, database, cache = stack.config, stack.naming.prefix, layers.database, layers.cache
    reader = database.proxy_reader_endpoint
    return {
        contract.DB_WRITER_HOST: database.proxy_endpoint,
        contract.DB_READER_HOST: reader if reader is not None else "",
        contract.DB_PORT: str(database.port),
        contract.DB_NAME: config.database.database_name,
        contract.DB_USER: database.username,
        # An IAM token per new connection through the proxy: nothing a password rotation can make stale.
        contract.DB_LOGIN: contract.DB_LOGIN_IAM,
        contract.DB_SSLMODE: "require",
        contract.REDIS_URL: pulumi.Output.format("rediss://{0}:{1}/0", cache.primary_endpoint, cache.port),
        contract.REDIS_TLS: "true",
        contract.REDIS_KEY_PREFIX: f"{prefix}:",
        contract.QUEUE_URL: layers.messaging.queues[worker_queue(stack)].url,
        contract.AWS_REGION: config.region,
        contract.OTEL_EXPORTER_OTLP_ENDPOINT: OTLP_ENDPOINT,
        contract.OTEL_SERVICE_NAME: f"{prefix}-{service}",
        contract.TRACE_SAMPLE_RATIO: str(config.observability.tracing_sample_rate),
        contract.LOG_LEVEL: "INFO",
        contract.METRICS_NAMESPACE: config.observability.app_metrics_namespace,
    }


def _compartments(sizes: ApiCompartments | WorkerCompartments) -> dict[str, pulumi.Input[str]]:
    """The bulkheads' settings: the sizes a service's config has (the API has no SQS or provider compartment)."""
    return {contract.BULKHEAD_SETTINGS[field]: str(value) for field, value in sizes.model_dump().items()}


def _secrets(layers: AppLayers, **more: pulumi.Input[str]) -> Mapping[str, pulumi.Input[str]]:
    # No DB_PASSWORD: the tasks sign in to the database with IAM tokens.
    return {contract.REDIS_AUTH_TOKEN: layers.cache.auth_token_secret_arn, **more}


def _api_container(stack: StackContext, layers: AppLayers) -> ContainerSpec:
    config = stack.config
    origins = config.app.cors_origins or [f"https://{config.edge.domain}"]
    return ContainerSpec(
        command=contract.API_COMMAND,
        image_target=contract.API_IMAGE_TARGET,
        health_check_command=contract.HEALTHCHECK_COMMAND,
        stop_timeout_seconds=contract.STOP_TIMEOUT_SECONDS,
        user=APP_USER,
        port=contract.API_PORT,
        # Each task migrates first: migrations are versioned and safe to run from many tasks at once.
        init_command=contract.MIGRATE_COMMAND,
        environment={
            **_shared_settings(stack, layers, "api"),
            **_compartments(config.services.compartments.api),
            contract.CORS_ORIGINS: ",".join(origins),
            contract.TRUSTED_PROXY_HOPS: str(config.app.trusted_proxy_hops),
            contract.PORT: str(contract.API_PORT),
            # `app migrate` reads the master password when it connects, never a copy from the task's start.
            contract.DB_MIGRATION_HOST: layers.database.writer_endpoint,
            contract.DB_MIGRATION_MASTER_ARN: layers.database.master_secret_arn,
            contract.ADMIN_TOKEN_SECRET_ID: stack.security.secrets[ADMIN_SECRET].arn,
        },
        secrets=_secrets(layers),
    )


def _worker_container(stack: StackContext, layers: AppLayers, notification: str | None) -> ContainerSpec:
    config, messaging = stack.config, layers.messaging
    notification_key = {contract.NOTIFICATION_API_KEY: stack.security.secrets[notification].arn} if notification else {}
    return ContainerSpec(
        command=contract.WORKER_COMMAND,
        image_target=contract.WORKER_IMAGE_TARGET,
        # The outbox relay rides with the worker: `FOR UPDATE SKIP LOCKED` lets every task run one.
        companions={"relay": contract.RELAY_COMMAND},
        # The worker serves no HTTP: its health is that the process is up.
        health_check_command=("CMD", "python", "-c", "import sys; sys.exit(0)"),
        stop_timeout_seconds=contract.STOP_TIMEOUT_SECONDS,
        user=APP_USER,
        environment={
            **_shared_settings(stack, layers, "worker"),
            **_compartments(config.services.compartments.worker),
            contract.DEAD_LETTER_QUEUE_URL: messaging.dead_letter_queues[worker_queue(stack)].url,
            contract.EVENTS_TOPIC_ARN: messaging.events_topic.arn,
            contract.NOTIFICATION_URL: config.app.notification_url or "",
            contract.JOB_TIMEOUT_SECONDS: str(config.services.worker.job_timeout_seconds),
        },
        secrets=_secrets(layers, **notification_key),
    )
