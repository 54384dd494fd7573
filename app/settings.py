"""Every setting the app reads, from the environment, under the names in `app.contract`."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import contract as c

LOGINS = (c.DB_LOGIN_IAM, c.DB_LOGIN_PASSWORD)
# libpq modes that encrypt; `prefer` and `allow` fall back to plain text when the server lets them.
TLS_SSLMODES = ("require", "verify-ca", "verify-full")


def _env(name: str) -> AliasChoices:
    assert name in c.SETTING_NAMES, name
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    db_writer_host: str = Field("127.0.0.1", validation_alias=_env(c.DB_WRITER_HOST))
    db_reader_host: str = Field("", validation_alias=_env(c.DB_READER_HOST))
    db_port: int = Field(5432, validation_alias=_env(c.DB_PORT))
    db_name: str = Field("app", validation_alias=_env(c.DB_NAME))
    db_user: str = Field("postgres", validation_alias=_env(c.DB_USER))
    db_password: SecretStr = Field(SecretStr(""), validation_alias=_env(c.DB_PASSWORD))
    db_sslmode: str = Field("prefer", validation_alias=_env(c.DB_SSLMODE))
    db_pool_max: int = Field(c.DB_POOL_MAX_DEFAULT, ge=1, validation_alias=_env(c.DB_POOL_MAX))
    db_login: str = Field(c.DB_LOGIN_PASSWORD, validation_alias=_env(c.DB_LOGIN))
    db_migration_host: str = Field("", validation_alias=_env(c.DB_MIGRATION_HOST))
    db_migration_master_arn: str = Field("", validation_alias=_env(c.DB_MIGRATION_MASTER_ARN))
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_env(c.REDIS_URL))
    redis_auth_token: SecretStr = Field(SecretStr(""), validation_alias=_env(c.REDIS_AUTH_TOKEN))
    redis_tls: bool = Field(False, validation_alias=_env(c.REDIS_TLS))
    redis_key_prefix: str = Field("app:", validation_alias=_env(c.REDIS_KEY_PREFIX))
    queue_url: str = Field("", validation_alias=_env(c.QUEUE_URL))
    events_topic_arn: str = Field("", validation_alias=_env(c.EVENTS_TOPIC_ARN))
    aws_region: str = Field("us-east-1", validation_alias=_env(c.AWS_REGION))
    aws_endpoint_url: str = Field("", validation_alias=_env(c.AWS_ENDPOINT_URL))
    admin_token: SecretStr = Field(SecretStr(""), validation_alias=_env(c.ADMIN_TOKEN))
    admin_token_secret_id: str = Field("", validation_alias=_env(c.ADMIN_TOKEN_SECRET_ID))
    cors_origins: str = Field("", validation_alias=_env(c.CORS_ORIGINS))
    trusted_proxy_hops: int = Field(0, ge=0, le=5, validation_alias=_env(c.TRUSTED_PROXY_HOPS))
    rate_limit_per_minute: int = Field(600, ge=1, validation_alias=_env(c.RATE_LIMIT_PER_MINUTE))
    otel_exporter_otlp_endpoint: str = Field("", validation_alias=_env(c.OTEL_EXPORTER_OTLP_ENDPOINT))
    otel_service_name: str = Field("app-api", validation_alias=_env(c.OTEL_SERVICE_NAME))
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0, validation_alias=_env(c.TRACE_SAMPLE_RATIO))
    log_level: str = Field("INFO", validation_alias=_env(c.LOG_LEVEL))
    metrics_namespace: str = Field("App", validation_alias=_env(c.METRICS_NAMESPACE))
    web_concurrency: int = Field(2, ge=1, validation_alias=_env(c.WEB_CONCURRENCY))
    gunicorn_threads: int = Field(c.GUNICORN_THREADS_DEFAULT, ge=1, validation_alias=_env(c.GUNICORN_THREADS))
    port: int = Field(c.API_PORT, validation_alias=_env(c.PORT))
    notification_url: str = Field("", validation_alias=_env(c.NOTIFICATION_URL))
    notification_api_key: SecretStr = Field(SecretStr(""), validation_alias=_env(c.NOTIFICATION_API_KEY))
    dead_letter_queue_url: str = Field("", validation_alias=_env(c.DEAD_LETTER_QUEUE_URL))
    worker_in_flight: int = Field(c.WORKER_IN_FLIGHT_DEFAULT, ge=1, le=200, validation_alias=_env(c.WORKER_IN_FLIGHT))
    worker_poll_seconds: int = Field(20, ge=0, le=20, validation_alias=_env(c.WORKER_POLL_SECONDS))
    worker_retry_base_seconds: float = Field(5.0, ge=0, le=900, validation_alias=_env(c.WORKER_RETRY_BASE_SECONDS))
    job_timeout_seconds: int = Field(90, ge=1, le=43200, validation_alias=_env(c.JOB_TIMEOUT_SECONDS))
    notify_defer_limit_seconds: int = Field(
        c.NOTIFY_DEFER_LIMIT_SECONDS_DEFAULT, ge=0, le=1209600, validation_alias=_env(c.NOTIFY_DEFER_LIMIT_SECONDS)
    )
    # Bulkheads: the stack sets them per service (stack_config `services.compartments`); these defaults are the
    # API's (6 of its 8 threads per database pool and for Redis) and the worker's provider share (16 of 20).
    bulkhead_db_writer: int = Field(6, ge=1, le=1000, validation_alias=_env(c.BULKHEAD_DB_WRITER))
    bulkhead_db_reader: int = Field(6, ge=1, le=1000, validation_alias=_env(c.BULKHEAD_DB_READER))
    bulkhead_redis: int = Field(6, ge=1, le=1000, validation_alias=_env(c.BULKHEAD_REDIS))
    bulkhead_sqs: int = Field(4, ge=1, le=1000, validation_alias=_env(c.BULKHEAD_SQS))
    bulkhead_notifications: int = Field(16, ge=1, le=1000, validation_alias=_env(c.BULKHEAD_NOTIFICATIONS))
    bulkhead_wait_ms: int = Field(200, ge=0, le=1000, validation_alias=_env(c.BULKHEAD_WAIT_MS))

    # Not environment-driven: tuning knobs tests may override when constructing Settings directly.
    outbound_timeout: float = c.OUTBOUND_TIMEOUT_SECONDS
    redis_timeout: float = 0.5
    breaker_failure_rate: float = 0.5
    breaker_min_calls: int = 5
    breaker_window_seconds: int = 30
    breaker_reset_seconds: float = 10.0

    @field_validator("db_login")
    @classmethod
    def _known_login(cls, value: str) -> str:
        if value not in LOGINS:
            raise ValueError(f"{c.DB_LOGIN} must be one of {', '.join(map(repr, LOGINS))} (got {value!r})")
        return value

    @model_validator(mode="after")
    def _iam_needs_tls(self) -> Settings:
        # The token is the password for 15 minutes: it never crosses the network in the clear (and RDS Proxy
        # refuses IAM sign-in without TLS anyway).
        if self.db_login == c.DB_LOGIN_IAM and self.db_sslmode not in TLS_SSLMODES:
            raise ValueError(
                f"{c.DB_SSLMODE} must be one of {', '.join(TLS_SSLMODES)} when {c.DB_LOGIN} is"
                f" {c.DB_LOGIN_IAM!r} (got {self.db_sslmode!r})"
            )
        return self

    @property
    def cors_origin_list(self) -> frozenset[str]:
        return frozenset(o.strip() for o in self.cors_origins.split(",") if o.strip())

    def endpoint_conninfo(self, host: str) -> dict[str, object]:
        """The libpq parameters that reach the database at `host`, without anyone's credentials."""
        info: dict[str, object] = {
            "host": host,
            "port": self.db_port,
            "dbname": self.db_name,
            "sslmode": self.db_sslmode,
            "connect_timeout": max(1, int(self.outbound_timeout)),
            "application_name": self.otel_service_name,
        }
        # RDS Proxy refuses any connection that carries command-line options ("Feature not supported"), and a
        # SET after connecting would pin each connection to one database session: in AWS the app's role
        # carries the statement timeout itself (migration 0007). Locally, whoever signs in gets it here.
        if self.db_login == c.DB_LOGIN_PASSWORD:
            info["options"] = f"-c statement_timeout={int(self.outbound_timeout * 1000)}"
        return info

    def conninfo(self, host: str) -> dict[str, object]:
        """`endpoint_conninfo` signed in as DB_USER: with an RDS IAM token (DB_LOGIN 'iam') or DB_PASSWORD.

        Call it for each new connection: an IAM token is only good for 15 minutes.
        """
        info = {**self.endpoint_conninfo(host), "user": self.db_user}
        if self.db_login == c.DB_LOGIN_IAM:
            from app.db_login import iam_token  # noqa: PLC0415 - boto3 only where IAM sign-in is used

            info["password"] = iam_token(self, host)
        elif self.db_password.get_secret_value():
            info["password"] = self.db_password.get_secret_value()
        return info


def load_settings() -> Settings:
    return Settings()
