"""The bundled app's workloads: what each container runs, the settings it gets and what it may do.

Names, ports, paths and commands all come from `app/contract.py`, the one source the app reads too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from app import contract
from components.iam import Statement
from components.service import ContainerSpec
from stack_config.schema import PlatformConfig

# The uid:gid the image's non-root user runs as (app/Dockerfile).
APP_USER = "10001:10001"
DB_PORT = 5432
# The ADOT sidecar listens for OTLP over HTTP on the task's loopback.
OTLP_ENDPOINT = "http://127.0.0.1:4318"
# The routes the ALB forwards (with the origin secret); everything else is answered 403.
ROUTED_PATHS = ("/api/*", "/health/*")


@dataclass(frozen=True)
class DataEndpoints:
    """Where the data layers answer, and the secrets that open them."""

    writer_host: pulumi.Input[str]
    reader_host: pulumi.Input[str] | None
    database_name: str
    database_user: str
    database_secret_arn: pulumi.Input[str]
    cache_host: pulumi.Input[str]
    cache_port: int
    cache_secret_arn: pulumi.Input[str]
    admin_secret_arn: pulumi.Input[str]
    queue_url: pulumi.Input[str]
    dead_letter_queue_url: pulumi.Input[str]
    notification_secret_arn: pulumi.Input[str] | None
    queue_arn: pulumi.Input[str]
    dead_letter_queue_arn: pulumi.Input[str]
    messaging_key_arn: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    # `rds-db:connect` through the proxy as `database_user`: the tasks' only way in.
    database_connect_arn: pulumi.Input[str]
    # Aurora's writer endpoint, where the migrator signs in as the master user (the proxy admits IAM users only).
    migration_host: pulumi.Input[str]


def _shared_settings(
    config: PlatformConfig, prefix: str, service: str, data: DataEndpoints
) -> dict[str, pulumi.Input[str]]:
    return {
        contract.DB_WRITER_HOST: data.writer_host,
        contract.DB_READER_HOST: data.reader_host if data.reader_host is not None else "",
        contract.DB_PORT: str(DB_PORT),
        contract.DB_NAME: data.database_name,
        contract.DB_USER: data.database_user,
        # An IAM token per new connection through the proxy: nothing a password rotation can make stale.
        contract.DB_LOGIN: contract.DB_LOGIN_IAM,
        contract.DB_SSLMODE: "require",
        contract.REDIS_URL: pulumi.Output.format("rediss://{0}:{1}/0", data.cache_host, data.cache_port),
        contract.REDIS_TLS: "true",
        contract.REDIS_KEY_PREFIX: f"{prefix}:",
        contract.QUEUE_URL: data.queue_url,
        contract.AWS_REGION: config.region,
        contract.OTEL_EXPORTER_OTLP_ENDPOINT: OTLP_ENDPOINT,
        contract.OTEL_SERVICE_NAME: f"{prefix}-{service}",
        contract.TRACE_SAMPLE_RATIO: str(config.observability.tracing_sample_rate),
        contract.LOG_LEVEL: "INFO",
        contract.METRICS_NAMESPACE: config.observability.app_metrics_namespace,
    }


def _secrets(data: DataEndpoints, *, admin: bool) -> Mapping[str, pulumi.Input[str]]:
    # No DB_PASSWORD: the tasks sign in to the database with IAM tokens.
    secrets: dict[str, pulumi.Input[str]] = {contract.REDIS_AUTH_TOKEN: data.cache_secret_arn}
    if admin:
        secrets[contract.ADMIN_TOKEN] = data.admin_secret_arn
    return secrets


def execution_secret_arns(data: DataEndpoints, *, admin: bool) -> list[pulumi.Input[str]]:
    """The secrets ECS reads to start a task: exactly those its containers name (the API's admin
    token, the worker's notification key)."""
    arns = [data.cache_secret_arn]
    if admin:
        arns.append(data.admin_secret_arn)
    elif data.notification_secret_arn is not None:
        arns.append(data.notification_secret_arn)
    return arns


def api_container(config: PlatformConfig, prefix: str, data: DataEndpoints) -> ContainerSpec:
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
            **_shared_settings(config, prefix, "api", data),
            contract.CORS_ORIGINS: ",".join(origins),
            contract.TRUSTED_PROXY_HOPS: str(config.app.trusted_proxy_hops),
            contract.PORT: str(contract.API_PORT),
            # `app migrate` reads the master password when it connects, never a copy from the task's start.
            contract.DB_MIGRATION_HOST: data.migration_host,
            contract.DB_MIGRATION_MASTER_ARN: data.database_secret_arn,
        },
        secrets=_secrets(data, admin=True),
    )


def worker_container(config: PlatformConfig, prefix: str, data: DataEndpoints) -> ContainerSpec:
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
            **_shared_settings(config, prefix, "worker", data),
            contract.DEAD_LETTER_QUEUE_URL: data.dead_letter_queue_url,
            contract.NOTIFICATION_URL: config.app.notification_url or "",
            contract.JOB_TIMEOUT_SECONDS: str(config.services.worker.job_timeout_seconds),
        },
        secrets={
            **_secrets(data, admin=False),
            **({contract.NOTIFICATION_API_KEY: data.notification_secret_arn} if data.notification_secret_arn else {}),
        },
    )


def _database_statements(data: DataEndpoints) -> list[Statement]:
    return [Statement("ConnectToDatabase", ("rds-db:connect",), [data.database_connect_arn])]


def api_statements(data: DataEndpoints) -> list[Statement]:
    return [
        *_database_statements(data),
        # The init container's `app migrate` signs in as the master user with the secret's current password.
        Statement("ReadMigrationLogin", ("secretsmanager:GetSecretValue",), [data.database_secret_arn]),
        Statement("PublishOrders", ("sqs:SendMessage", "sqs:GetQueueAttributes"), [data.queue_arn]),
        Statement("EncryptMessages", ("kms:GenerateDataKey", "kms:Decrypt"), [data.messaging_key_arn]),
        Statement("ReadAdminToken", ("secretsmanager:GetSecretValue",), [data.admin_secret_arn]),
        Statement("DecryptSecrets", ("kms:Decrypt",), [data.data_key_arn]),
    ]


def worker_statements(data: DataEndpoints) -> list[Statement]:
    return [
        *_database_statements(data),
        Statement(
            "ConsumeOrders",
            ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
            [data.queue_arn],
        ),
        # `app dlq redrive` moves messages back once a fix is out.
        Statement(
            "RedriveDeadLetters",
            ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
            [data.dead_letter_queue_arn],
        ),
        Statement("RequeueOrders", ("sqs:SendMessage",), [data.queue_arn]),
        Statement("DecryptMessages", ("kms:GenerateDataKey", "kms:Decrypt"), [data.messaging_key_arn]),
    ]
