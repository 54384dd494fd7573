"""What the infrastructure and the app agree on: ports, health paths, commands, timeouts, setting names.

Pure stdlib and import-light: the Pulumi components import this module, so it must never import Flask,
psycopg, boto3 or anything else heavy, and must have no side effects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

API_PORT: Final = 8080
HEALTH_LIVE_PATH: Final = "/health/live"
HEALTH_READY_PATH: Final = "/health/ready"
OPENAPI_PATH: Final = "/openapi.json"

# Gunicorn finishes in-flight requests within this many seconds of SIGTERM; ECS waits STOP_TIMEOUT_SECONDS
# before SIGKILL, so the graceful timeout must stay strictly below it.
GRACEFUL_TIMEOUT_SECONDS: Final = 25
STOP_TIMEOUT_SECONDS: Final = 30
# ALB idle timeout is 60 s by default: keep-alive on the target must outlast it.
KEEPALIVE_SECONDS: Final = 75
# Every outbound call (database, Redis, SQS, Secrets Manager) is bounded by this.
OUTBOUND_TIMEOUT_SECONDS: Final = 3.0
# The largest request body, end to end: Flask refuses a longer one with a 413 and the edge's WAF blocks it
# (components/edge.py). 16 KiB is what a CloudFront web ACL forwards to WAF for inspection at the base price,
# so every byte of a body the app accepts is inspected; the largest valid request (a product with 2,000
# four-byte characters of description, about 9 KB of UTF-8) fits with room to spare. Above 16 KiB the WAF must
# be paid to inspect more (up to 64 KiB), and the edge raises that setting to match this number.
MAX_REQUEST_BYTES: Final = 16 * 1024

# Published policies.
# Product reads (Redis cache-aside, the response's `Cache-Control: max-age`, and CloudFront's products cache
# policy) are at most this old.
PRODUCT_CACHE_TTL_SECONDS: Final = 300
# The query parameters GET /api/products takes; CloudFront keys its cache on these and drops any other.
PRODUCT_LIST_QUERY_PARAMETERS: Final[tuple[str, ...]] = ("page", "per_page", "category", "min_price", "max_price", "q")
SESSION_TTL_SECONDS: Final = 900
CONFIG_CACHE_TTL_SECONDS: Final = 3600
IDEMPOTENCY_KEY_TTL_SECONDS: Final = 24 * 3600
OUTBOX_BATCH_SIZE: Final = 10
# Receives before SQS moves a message to its DLQ (the stack's default `maxReceiveCount`).
MAX_RECEIVE_COUNT: Final = 3
# The domain events the orders worker consumes: the events topic's subscription of the orders queue filters on
# the `event_type` message attribute with exactly these (components/messaging.py), and app/events.py parses them.
ORDER_EVENT_TYPES: Final[tuple[str, ...]] = ("order.placed", "order.created")
# The orders subscription's filter policy (scope MessageAttributes): only these event types reach the queue.
ORDER_EVENTS_FILTER_POLICY: Final = json.dumps({"event_type": list(ORDER_EVENT_TYPES)}, separators=(",", ":"))
# The longest an order waits on an open notification breaker (from its event's occurred_at) before the worker
# compensates it (stock released, FAILED): the default of NOTIFY_DEFER_LIMIT_SECONDS.
NOTIFY_DEFER_LIMIT_SECONDS_DEFAULT: Final = 3600

# Container commands (exec form). The image's entry point is gunicorn; the other commands override it.
API_COMMAND: Final[tuple[str, ...]] = (
    "gunicorn",
    "--config",
    "python:app.gunicorn_conf",
    "app.wsgi:application",
)
MIGRATE_COMMAND: Final[tuple[str, ...]] = ("app", "migrate")
RELAY_COMMAND: Final[tuple[str, ...]] = ("app", "relay")
WORKER_COMMAND: Final[tuple[str, ...]] = ("app", "worker")
# The stages of app/Dockerfile (`FROM ... AS <stage>`) each service's image is built from.
API_IMAGE_TARGET: Final = "api"
WORKER_IMAGE_TARGET: Final = "worker"
HEALTHCHECK_COMMAND: Final[tuple[str, ...]] = (
    "CMD",
    "python",
    "-c",
    f"import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:{API_PORT}{HEALTH_LIVE_PATH}', timeout=2)",
)


@dataclass(frozen=True)
class Setting:
    """One environment variable the app reads."""

    name: str
    secret: bool
    description: str
    required_in_aws: bool = False


# Every setting the app reads, by its environment variable name. `secret=True` ones are filled by ECS from
# Secrets Manager (`valueFrom`) and are never logged.
DB_WRITER_HOST: Final = "DB_WRITER_HOST"
DB_READER_HOST: Final = "DB_READER_HOST"
DB_PORT: Final = "DB_PORT"
DB_NAME: Final = "DB_NAME"
DB_USER: Final = "DB_USER"
DB_PASSWORD: Final = "DB_PASSWORD"  # noqa: S105 - a variable name, not a password
DB_SSLMODE: Final = "DB_SSLMODE"
DB_POOL_MAX: Final = "DB_POOL_MAX"
DB_LOGIN: Final = "DB_LOGIN"
DB_MIGRATION_HOST: Final = "DB_MIGRATION_HOST"
DB_MIGRATION_MASTER_ARN: Final = "DB_MIGRATION_MASTER_ARN"
# DB_LOGIN's values. In AWS the tasks sign in through RDS Proxy with IAM (a token per new connection, so the
# RDS-managed master password's rotation never reaches them); locally PostgreSQL takes a password (or trust).
DB_LOGIN_IAM: Final = "iam"
DB_LOGIN_PASSWORD: Final = "password"  # noqa: S105 - a sign-in method, not a password
# The database role the app signs in as (DB_USER in AWS): migration 0007 creates it with the privileges the app
# needs and no more, the task roles may `rds-db:connect` as it and as no other user.
DB_APP_USER: Final = "platform_app"
REDIS_URL: Final = "REDIS_URL"
REDIS_AUTH_TOKEN: Final = "REDIS_AUTH_TOKEN"  # noqa: S105
REDIS_TLS: Final = "REDIS_TLS"
REDIS_KEY_PREFIX: Final = "REDIS_KEY_PREFIX"
QUEUE_URL: Final = "QUEUE_URL"
EVENTS_TOPIC_ARN: Final = "EVENTS_TOPIC_ARN"
AWS_REGION: Final = "AWS_REGION"
AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"
ADMIN_TOKEN: Final = "ADMIN_TOKEN"  # noqa: S105
ADMIN_TOKEN_SECRET_ID: Final = "ADMIN_TOKEN_SECRET_ID"  # noqa: S105
CORS_ORIGINS: Final = "CORS_ORIGINS"
TRUSTED_PROXY_HOPS: Final = "TRUSTED_PROXY_HOPS"
RATE_LIMIT_PER_MINUTE: Final = "RATE_LIMIT_PER_MINUTE"
OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
TRACE_SAMPLE_RATIO: Final = "TRACE_SAMPLE_RATIO"
LOG_LEVEL: Final = "LOG_LEVEL"
METRICS_NAMESPACE: Final = "METRICS_NAMESPACE"
WEB_CONCURRENCY: Final = "WEB_CONCURRENCY"
GUNICORN_THREADS: Final = "GUNICORN_THREADS"
PORT: Final = "PORT"
# The worker (`app worker`, `app dlq redrive`).
NOTIFICATION_URL: Final = "NOTIFICATION_URL"
NOTIFICATION_API_KEY: Final = "NOTIFICATION_API_KEY"
DEAD_LETTER_QUEUE_URL: Final = "DEAD_LETTER_QUEUE_URL"
WORKER_IN_FLIGHT: Final = "WORKER_IN_FLIGHT"
WORKER_POLL_SECONDS: Final = "WORKER_POLL_SECONDS"
WORKER_RETRY_BASE_SECONDS: Final = "WORKER_RETRY_BASE_SECONDS"
JOB_TIMEOUT_SECONDS: Final = "JOB_TIMEOUT_SECONDS"
NOTIFY_DEFER_LIMIT_SECONDS: Final = "NOTIFY_DEFER_LIMIT_SECONDS"
# Bulkheads (app/bulkhead.py): slots per dependency per process, and how long a call may wait for one.
BULKHEAD_DB_WRITER: Final = "BULKHEAD_DB_WRITER"
BULKHEAD_DB_READER: Final = "BULKHEAD_DB_READER"
BULKHEAD_REDIS: Final = "BULKHEAD_REDIS"
BULKHEAD_SQS: Final = "BULKHEAD_SQS"
BULKHEAD_NOTIFICATIONS: Final = "BULKHEAD_NOTIFICATIONS"
BULKHEAD_WAIT_MS: Final = "BULKHEAD_WAIT_MS"
# The stack config's compartment fields (`services.compartments.<service>`) and the settings they are passed as.
BULKHEAD_SETTINGS: Final[dict[str, str]] = {
    "db_writer": BULKHEAD_DB_WRITER,
    "db_reader": BULKHEAD_DB_READER,
    "redis": BULKHEAD_REDIS,
    "sqs": BULKHEAD_SQS,
    "notifications": BULKHEAD_NOTIFICATIONS,
    "wait_ms": BULKHEAD_WAIT_MS,
}
# The app's defaults the stack does not override, which the compartments are sized against.
GUNICORN_THREADS_DEFAULT: Final = 8
WORKER_IN_FLIGHT_DEFAULT: Final = 20
DB_POOL_MAX_DEFAULT: Final = 10

SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(DB_WRITER_HOST, False, "Writer endpoint (RDS Proxy / Aurora cluster endpoint)", True),
    Setting(DB_READER_HOST, False, "Reader endpoint; empty means reads use the writer"),
    Setting(DB_PORT, False, "PostgreSQL port (5432)"),
    Setting(DB_NAME, False, "Database name", True),
    Setting(DB_USER, False, "Database user", True),
    Setting(DB_PASSWORD, True, "Database password when DB_LOGIN is 'password' (locally); unset in AWS"),
    Setting(DB_SSLMODE, False, "libpq sslmode: 'require' in AWS, 'prefer' locally"),
    Setting(DB_POOL_MAX, False, "Connections per pool per process"),
    Setting(DB_LOGIN, False, "How the app signs in: 'iam' (an RDS IAM token per new connection; AWS) or 'password'"),
    Setting(
        DB_MIGRATION_HOST, False, "`app migrate`: where the migrator signs in (Aurora's writer); default DB_WRITER_HOST"
    ),
    Setting(
        DB_MIGRATION_MASTER_ARN,
        False,
        "`app migrate`: ARN of the RDS-managed master user secret, read when it connects; empty: DB_USER/DB_PASSWORD",
    ),
    Setting(REDIS_URL, False, "redis:// or rediss:// URL of the cache (without the password)", True),
    Setting(REDIS_AUTH_TOKEN, True, "ElastiCache AUTH token (Secrets Manager)"),
    Setting(REDIS_TLS, False, "true to use TLS to Redis (ElastiCache in-transit encryption)"),
    Setting(REDIS_KEY_PREFIX, False, "Prefix of every Redis key and channel the app uses"),
    Setting(QUEUE_URL, False, "SQS queue URL the worker consumes (the events topic's orders subscription)", True),
    Setting(EVENTS_TOPIC_ARN, False, "SNS events topic the outbox relay publishes domain events to (relay)"),
    Setting(AWS_REGION, False, "AWS region"),
    Setting(AWS_ENDPOINT_URL, False, "Endpoint override for SQS/Secrets Manager (moto locally); unset in AWS"),
    Setting(ADMIN_TOKEN, True, "Admin bearer token (ECS fills it from Secrets Manager)"),
    Setting(
        ADMIN_TOKEN_SECRET_ID, False, "Secrets Manager id of the admin token, read at run time if ADMIN_TOKEN unset"
    ),
    Setting(CORS_ORIGINS, False, "Comma-separated allowed CORS origins"),
    Setting(
        TRUSTED_PROXY_HOPS, False, "Proxies in front of the task to trust in X-Forwarded-For (CloudFront + ALB = 2)"
    ),
    Setting(RATE_LIMIT_PER_MINUTE, False, "Requests per client address per minute"),
    Setting(OTEL_EXPORTER_OTLP_ENDPOINT, False, "OTLP/HTTP endpoint (collector sidecar); 'console' or empty locally"),
    Setting(OTEL_SERVICE_NAME, False, "Service name on traces"),
    Setting(
        TRACE_SAMPLE_RATIO,
        False,
        "Share of new traces recorded, 0-1 (the stack's tracingSampleRate); a caller's traceparent decides its own",
    ),
    Setting(LOG_LEVEL, False, "Log level (INFO)"),
    Setting(METRICS_NAMESPACE, False, "CloudWatch namespace of the app's embedded-metric-format metrics (APP_METRICS)"),
    Setting(WEB_CONCURRENCY, False, "Gunicorn worker processes"),
    Setting(GUNICORN_THREADS, False, "Threads per gunicorn worker"),
    Setting(PORT, False, "Listen port (8080)"),
    Setting(NOTIFICATION_URL, False, "Worker: the notification provider's HTTP endpoint (POST); empty: none"),
    Setting(NOTIFICATION_API_KEY, True, "Worker: the notification provider's API key (Secrets Manager)"),
    Setting(
        DEAD_LETTER_QUEUE_URL, False, "Worker: the DLQ's URL for `app dlq redrive`; default: from the redrive policy"
    ),
    Setting(WORKER_IN_FLIGHT, False, "Worker: messages processed at once (20)"),
    Setting(WORKER_POLL_SECONDS, False, "Worker: SQS long-poll wait (20; 0-20)"),
    Setting(WORKER_RETRY_BASE_SECONDS, False, "Worker: first retry delay of a failed message, doubled per receive"),
    Setting(JOB_TIMEOUT_SECONDS, False, "Worker: longest a message may take; visibility is extended up to it (90)"),
    Setting(
        NOTIFY_DEFER_LIMIT_SECONDS,
        False,
        "Worker: longest an order waits on an open notification breaker before it is compensated (3600)",
    ),
    Setting(BULKHEAD_DB_WRITER, False, "Concurrent calls on the database writer per process; more are shed"),
    Setting(BULKHEAD_DB_READER, False, "Concurrent calls on the database reader per process; more are shed"),
    Setting(BULKHEAD_REDIS, False, "Concurrent Redis calls per process; more fall back to the database"),
    Setting(BULKHEAD_SQS, False, "Concurrent SQS sends per process; more wait in the outbox"),
    Setting(BULKHEAD_NOTIFICATIONS, False, "Worker: concurrent provider calls; more go back to the queue"),
    Setting(BULKHEAD_WAIT_MS, False, "Longest a call waits for a slot of its dependency's compartment (ms)"),
)

SETTING_NAMES: Final[frozenset[str]] = frozenset(s.name for s in SETTINGS)
SECRET_SETTING_NAMES: Final[frozenset[str]] = frozenset(s.name for s in SETTINGS if s.secret)


@dataclass(frozen=True)
class AppMetric:
    """One metric the app publishes (CloudWatch embedded metric format) in the namespace `METRICS_NAMESPACE`.

    CloudWatch files a metric under its name *and* its exact dimension set, so the dashboard and alarms find
    it only with these `dimensions`; the app's emitter refuses any other name or dimension set.
    """

    name: str
    unit: str  # a CloudWatch unit name
    dimensions: tuple[str, ...]
    description: str


REQUEST_DIMENSIONS: Final = ("Route", "Method")
WORKER_DIMENSIONS: Final = ("Service",)
BREAKER_DIMENSIONS: Final = ("breaker", "state")
# The `state` value of a breaker's transition to open (the others: half_open, closed).
BREAKER_OPENED: Final = "open"

METRIC_REQUEST_LATENCY: Final = AppMetric("Latency", "Milliseconds", REQUEST_DIMENSIONS, "API: time to answer")
METRIC_REQUESTS: Final = AppMetric("Requests", "Count", REQUEST_DIMENSIONS, "API: requests answered")
METRIC_REQUEST_ERRORS_5XX: Final = AppMetric("Errors5xx", "Count", REQUEST_DIMENSIONS, "API: answers with a 5xx")
METRIC_MESSAGES_PROCESSED: Final = AppMetric("MessagesProcessed", "Count", WORKER_DIMENSIONS, "Worker: done")
METRIC_MESSAGES_FAILED: Final = AppMetric("MessagesFailed", "Count", WORKER_DIMENSIONS, "Worker: failed or invalid")
METRIC_MESSAGES_RETRIED: Final = AppMetric(
    "MessagesRetried", "Count", WORKER_DIMENSIONS, "Worker: handed back to the queue for a later receive"
)
METRIC_DUPLICATES_SKIPPED: Final = AppMetric(
    "DuplicatesSkipped", "Count", WORKER_DIMENSIONS, "Worker: redeliveries already applied"
)
METRIC_QUEUE_LAG: Final = AppMetric("QueueLag", "Milliseconds", WORKER_DIMENSIONS, "Worker: oldest message's wait")
METRIC_NOTIFICATION_BREAKER_OPEN: Final = AppMetric(
    "NotificationBreakerOpen", "Count", WORKER_DIMENSIONS, "Worker: 1 while the notification breaker is not closed"
)
METRIC_BREAKER_TRANSITIONS: Final = AppMetric(
    "BreakerTransitions", "Count", BREAKER_DIMENSIONS, "A circuit breaker changed state (per breaker and new state)"
)
METRIC_BULKHEAD_REJECTED: Final = AppMetric(
    "BulkheadRejected", "Count", ("Dependency",), "A call shed because its dependency's compartment was full"
)

APP_METRICS: Final[tuple[AppMetric, ...]] = (
    METRIC_REQUEST_LATENCY,
    METRIC_REQUESTS,
    METRIC_REQUEST_ERRORS_5XX,
    METRIC_MESSAGES_PROCESSED,
    METRIC_MESSAGES_FAILED,
    METRIC_MESSAGES_RETRIED,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_QUEUE_LAG,
    METRIC_NOTIFICATION_BREAKER_OPEN,
    METRIC_BREAKER_TRANSITIONS,
    METRIC_BULKHEAD_REJECTED,
)

assert GRACEFUL_TIMEOUT_SECONDS < STOP_TIMEOUT_SECONDS
