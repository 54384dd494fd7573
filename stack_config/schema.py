"""The typed stack config: every key under the `platform:` namespace of `Pulumi.<stack>.yaml`.

Each field carries its default (the seeds' value). Defaults that differ between staging and prod live in
`stack_config.profiles`, which writes each environment's into the editor schema, so descriptions here do
not repeat them; rules that span fields live in `stack_config.rules`.
Keys are camelCase in the stack file, as Pulumi config keys conventionally are.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from app import contract
from stack_config.limits import (
    CLOUDWATCH_LOG_RETENTION_DAYS,
    ENHANCED_MONITORING_INTERVALS,
    FARGATE_MEMORY_BY_CPU,
)
from stack_config.slo import BURN_RATE_WINDOWS

REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
BACKUP_CRON_PATTERN = r"^cron\(.+\)$"
# RDS windows: ddd:hh24:mi-ddd:hh24:mi for maintenance, hh24:mi-hh24:mi for backups.
MAINTENANCE_WINDOW_PATTERN = (
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$"
)
DAILY_WINDOW_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
RESOURCE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase, values immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        frozen=True,
        coerce_numbers_to_str=True,
    )


def _one_of(allowed: tuple[int, ...]) -> AfterValidator:
    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


LogRetentionDays = Annotated[int, _one_of(CLOUDWATCH_LOG_RETENTION_DAYS)]
Percent = Annotated[float, Field(gt=0, le=100)]
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]


# --- network -------------------------------------------------------------------------------------


class SubnetTier(Model):
    """One subnet tier: one subnet per AZ, each of `prefixLength`, or the explicit `cidrs`."""

    prefix_length: int = Field(ge=16, le=28, description="Size of each subnet of the tier (AWS allows /16 to /28).")
    cidrs: list[ipaddress.IPv4Network] | None = Field(
        default=None,
        description="Explicit CIDRs, one per AZ in AZ order; default: carved from the VPC CIDR in tier order.",
    )


class NetworkConfig(Model):
    vpc_cidr: ipaddress.IPv4Network = Field(
        default=ipaddress.IPv4Network("10.0.0.0/16"),
        description="VPC CIDR (AWS allows /16 to /28). Default 10.0.0.0/16.",
    )
    public: SubnetTier = Field(
        default=SubnetTier.model_validate({"prefixLength": 24}),
        description="Public tier (ALB, NAT gateways). Default /24 per AZ.",
    )
    private: SubnetTier = Field(
        default=SubnetTier.model_validate({"prefixLength": 20}),
        description="Private tier (Fargate tasks, interface endpoints). Default /20 per AZ.",
    )
    isolated: SubnetTier = Field(
        default=SubnetTier.model_validate({"prefixLength": 24}),
        description="Isolated tier (Aurora, ElastiCache), no route to the internet. Default /24 per AZ.",
    )
    nat_strategy: Literal["one_per_az", "single", "none"] = Field(
        default="one_per_az",
        description="NAT gateways: one per AZ, a single one (cheaper, one AZ's outage cuts egress), or none.",
    )
    vpc_endpoints: bool = Field(
        default=True,
        description="S3 gateway endpoint and interface endpoints (ECR, Logs, SQS, SNS, Secrets Manager, KMS).",
    )
    flow_log_traffic: Literal["ALL", "ACCEPT", "REJECT"] = Field(
        default="ALL", description="Traffic the VPC flow log records. Default ALL."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not 16 <= value.prefixlen <= 28:
            raise ValueError("VPC CIDR prefix must be between /16 and /28")
        return value


# --- edge ----------------------------------------------------------------------------------------


class EdgeConfig(Model):
    domain: str = Field(
        pattern=DOMAIN_PATTERN, max_length=253, description="The site's domain name, e.g. shop.example.com."
    )
    hosted_zone: str = Field(
        pattern=DOMAIN_PATTERN, max_length=253, description="The Route 53 public hosted zone the domain lives in."
    )
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = Field(
        default="PriceClass_100", description="CloudFront price class. Default PriceClass_100."
    )
    waf_rate_limit: int = Field(
        default=2000,
        ge=10,
        le=2_000_000_000,
        description="Requests per client IP per 5 minutes before WAF blocks (AWS allows 10 to 2e9). Default 2000.",
    )
    latency_routing_region: str | None = Field(
        default=None,
        pattern=REGION_PATTERN,
        description="Set to the region's name to publish latency-based records (ready for a second region).",
    )

    @field_validator("domain", "hosted_zone", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower().rstrip(".") if isinstance(value, str) else value


# --- services ------------------------------------------------------------------------------------


class AutoscalingConfig(Model):
    cpu_target_percent: Percent = Field(default=70, description="Target tracking on CPU. Default 70 %.")
    memory_target_percent: Percent = Field(default=80, description="Target tracking on memory. Default 80 %.")
    requests_per_target: int = Field(
        default=1000, ge=1, description="ALB requests per target (API only). Default 1000."
    )
    backlog_per_task: int = Field(
        default=100,
        ge=1,
        description="Visible messages per running task before the worker scales out. Default 100.",
    )
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600, description="Scale out fast. Default 60 s.")
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600, description="Scale in slowly. Default 300 s.")


# ECS's traffic-shifting strategies: each moves the ALB listener rule between two target groups.
TRAFFIC_SHIFTING_STRATEGIES = ("blue_green", "canary", "linear")
# ECS's bake times (canaryBakeTimeInMinutes, stepBakeTimeInMinutes, bakeTimeInMinutes): 0 to 1440 minutes.
BakeMinutes = Annotated[int, Field(ge=0, le=1440)]


def _tenths(value: float) -> float:
    # ECS takes canary and step percentages as multiples of 0.1 (the ECS API's CanaryConfiguration and
    # LinearConfiguration).
    if abs(value * 10 - round(value * 10)) > 1e-9:
        raise ValueError("must be a multiple of 0.1")
    return value


class CanaryConfig(Model):
    percent: Annotated[float, Field(ge=0.1, le=100), AfterValidator(_tenths)] = Field(
        default=5,
        description="Share of production traffic the new revision takes first (ECS: 0.1 to 100 in steps of 0.1)."
        " Default 5 %.",
    )
    bake_minutes: BakeMinutes = Field(
        default=10, description="Minutes at that share before the rest of the traffic moves (0 to 1440). Default 10."
    )


class LinearConfig(Model):
    step_percent: Annotated[float, Field(ge=3, le=100), AfterValidator(_tenths)] = Field(
        default=10,
        description="Share of production traffic moved at each step (ECS: 3 to 100 in steps of 0.1). Default 10 %.",
    )
    step_bake_minutes: BakeMinutes = Field(default=6, description="Minutes between two steps (0 to 1440). Default 6.")


class DeploymentConfig(Model):
    strategy: Literal["rolling", "blue_green", "canary", "linear"] = Field(
        default="rolling",
        description="rolling (100 % min healthy, 200 % max), or one of ECS's native strategies that shift the"
        " ALB's traffic to the new revision: blue_green (all at once), canary (a share first, see `canary`) or"
        " linear (in equal steps, see `linear`); these need a load balancer, so the API only.",
    )
    bake_minutes: BakeMinutes = Field(
        default=10,
        description="Traffic-shifting strategies: minutes the new revision serves all traffic, its rollback alarms"
        " watched, before the old tasks go (ECS allows 0 to 1440). Default 10.",
    )
    canary: CanaryConfig = Field(default=CanaryConfig(), description="The canary strategy's first step.")
    linear: LinearConfig = Field(default=LinearConfig(), description="The linear strategy's steps.")

    @property
    def shifts_traffic(self) -> bool:
        """ECS moves the listener rule between two target groups (needs the ALB's alternate group)."""
        return self.strategy in TRAFFIC_SHIFTING_STRATEGIES


class ServiceConfig(Model):
    cpu: int = Field(default=512, description="Fargate CPU units (256 to 16384).")
    memory: int = Field(default=1024, description="Fargate memory MiB; must pair with cpu.")
    desired_count: int = Field(default=2, ge=0, le=1000)
    min_count: int = Field(default=2, ge=0, le=1000)
    max_count: int = Field(default=10, ge=1, le=1000)
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    deployment: DeploymentConfig = DeploymentConfig()
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Prebuilt image URI; default: built from app/ at `pulumi up`.",
    )
    use_spot: bool = Field(default=False, description="Run on FARGATE_SPOT capacity (worker).")
    execute_command: bool = Field(
        default=False,
        description=(
            "ECS Exec: shells into this service's tasks, every session recorded in the cluster's exec log group."
            " On, each app container gets writable volumes for the exec agent (the root stays read-only) and the"
            " task role its SSM channel and session-log permissions; a shell runs as root and reads what the task"
            " can (its secrets, its role). Turning it on or off replaces the tasks."
        ),
    )
    job_timeout_seconds: int = Field(
        default=90,
        ge=1,
        le=43200,
        description="Longest a message may take to process (worker); queues' visibility must cover it.",
    )

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if value not in FARGATE_MEMORY_BY_CPU:
            raise ValueError(f"must be one of {', '.join(map(str, FARGATE_MEMORY_BY_CPU))}")
        return value


class _Compartments(Model):
    """Bulkheads (app/bulkhead.py): how many calls one process may have on each dependency at once. Each is fewer
    than the process's threads, so a stalled dependency holds only its own and the rest keep serving; a call
    that finds its compartment full is shed at once (a fallback, or 503 with Retry-After)."""

    db_writer: int = Field(default=6, ge=1, description="Calls on the database writer at once. Default 6.")
    db_reader: int = Field(default=6, ge=1, description="Calls on the database reader at once. Default 6.")
    redis: int = Field(default=6, ge=1, description="Redis calls at once (more read the database). Default 6.")
    wait_ms: int = Field(
        default=200,
        ge=0,
        le=1000,
        description="Longest a call waits for a slot of a full compartment whose calls are still finishing (a"
        " burst, not a stall: a stalled one sheds at once). Default 200.",
    )

    def _check(self, threads: int, of_what: str) -> None:
        for name in type(self).model_fields:
            if name == "wait_ms":
                continue
            value, key = getattr(self, name), to_camel(name)
            if value > threads:
                raise ValueError(f"{key}: {value} is more than {of_what} ({threads}); allowed 1 to {threads}")
            if name.startswith("db_") and value > contract.DB_POOL_MAX_DEFAULT:
                raise ValueError(
                    f"{key}: {value} is more than the database pool's {contract.DB_POOL_MAX_DEFAULT} connections;"
                    f" allowed 1 to {contract.DB_POOL_MAX_DEFAULT}"
                )


class ApiCompartments(_Compartments):
    """The API's, of its 8 gunicorn threads per process: 6 for each database pool and for Redis leave 2 threads
    free for the others whichever one stalls (the API calls neither SQS nor the provider)."""

    @model_validator(mode="after")
    def _fits(self) -> ApiCompartments:
        self._check(contract.GUNICORN_THREADS_DEFAULT, "the API's threads per process")
        return self


class WorkerCompartments(_Compartments):
    """The worker's (and its outbox relay's), of its 20 messages in flight."""

    redis: int = Field(default=8, ge=1, description="Redis calls at once (idempotency claims fail open). Default 8.")
    sqs: int = Field(default=4, ge=1, description="SQS sends at once (more leave the outbox rows waiting). Default 4.")
    notifications: int = Field(
        default=16,
        ge=1,
        description="Provider calls at once, retries included. Default 16 of the 20 in flight: a stalled provider"
        " holds 16 message threads, a message over it goes back to the queue at once.",
    )

    @model_validator(mode="after")
    def _fits(self) -> WorkerCompartments:
        self._check(contract.WORKER_IN_FLIGHT_DEFAULT, "the worker's messages in flight")
        return self


class CompartmentsConfig(Model):
    api: ApiCompartments = ApiCompartments()
    worker: WorkerCompartments = WorkerCompartments()


class ServicesConfig(Model):
    api: ServiceConfig = ServiceConfig()
    worker: ServiceConfig = ServiceConfig()
    compartments: CompartmentsConfig = Field(
        default=CompartmentsConfig(), description="Each service's bulkheads: concurrent calls per dependency."
    )
    min_tasks_per_az: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Each service's minimum tasks per AZ (the seeds: 2 where availability matters).",
    )
    image_keep_count: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Images each ECR repository keeps; older ones expire. Default 20.",
    )


# The traffic classes of the load profile (load/locustfile.py); each class's CPU per request is measured.
TrafficClass = Literal["browse", "session", "checkout"]
TRAFFIC_CLASSES: tuple[TrafficClass, ...] = typing.get_args(TrafficClass)
Share = Annotated[float, Field(ge=0, le=100)]


class TrafficMix(Model):
    browse: Share = Field(default=80, description="Catalog reads (product list and product pages), % of requests.")
    session: Share = Field(default=15, description="Sign-in, who-am-I and sign-out, % of requests.")
    checkout: Share = Field(default=5, description="Order placement and the order read after it, % of requests.")

    @model_validator(mode="after")
    def _whole(self) -> TrafficMix:
        total = self.browse + self.session + self.checkout
        if abs(total - 100) > 1e-6:
            raise ValueError(f"browse + session + checkout must add up to 100 (got {total:g})")
        return self


class CapacityConfig(Model):
    peak_requests_per_second: float = Field(
        default=500,
        gt=0,
        le=1_000_000,
        description="Requests per second reaching the API's load balancer at the stated peak (after CloudFront's"
        " cache), which `platformctl capacity` checks the API's autoscaling maximum against.",
    )
    mix: TrafficMix = Field(
        default=TrafficMix(),
        description="Shares of the peak's requests by traffic class; the seeds' workloads are read-heavy (70-90 %"
        " of database traffic reads), so browsing dominates.",
    )


# --- data ----------------------------------------------------------------------------------------


class ServerlessV2Config(Model):
    min_acu: float = Field(default=0.5, ge=0, le=256, description="Aurora Serverless v2 minimum ACU.")
    max_acu: float = Field(default=4, ge=1, le=256, description="Aurora Serverless v2 maximum ACU.")

    @field_validator("min_acu", "max_acu")
    @classmethod
    def _half_steps(cls, value: float) -> float:
        if (value * 2) != int(value * 2):
            raise ValueError("must be a multiple of 0.5")
        return value


class DatabaseConfig(Model):
    engine_version: str = Field(
        default="17.4",
        pattern=r"^\d{2}\.\d+$",
        description="Aurora PostgreSQL engine version, pinned. Default 17.4.",
    )
    instance_class: str | None = Field(
        default=None,
        pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
        description="Provisioned instance class; conflicts with serverlessV2.",
    )
    serverless_v2: ServerlessV2Config | None = Field(
        default=None, description="Serverless v2 scaling; conflicts with instanceClass."
    )
    reader_count: int = Field(default=1, ge=0, le=15, description="Aurora allows 15 replicas.")
    backup_retention_days: int = Field(default=7, ge=1, le=35, description="AWS allows 1 to 35.")
    backup_window: str = Field(default="03:00-04:00", pattern=DAILY_WINDOW_PATTERN)
    maintenance_window: str = Field(default="sun:04:30-sun:05:30", pattern=MAINTENANCE_WINDOW_PATTERN)
    deletion_protection: bool = True
    performance_insights_retention_days: int = Field(default=7, description="7, or a multiple of 31 up to 731.")
    monitoring_interval_seconds: Annotated[int, _one_of(ENHANCED_MONITORING_INTERVALS)] = 60
    slow_statement_ms: int = Field(default=500, ge=-1, le=2_147_483_647)
    database_name: str = Field(default="app", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    final_snapshot: bool = Field(
        default=True,
        description="Take a final snapshot when the cluster is deleted.",
    )
    auto_minor_version_upgrade: bool = Field(
        default=True, description="Apply minor engine upgrades in the maintenance window. Default true."
    )
    work_mem_mb: int = Field(
        default=8,
        ge=1,
        le=2048,
        description="work_mem per sort or hash (the seeds: tuned for OLTP, small queries). Default 8 MiB.",
    )
    proxy_max_connections_percent: int = Field(
        default=90,
        ge=1,
        le=100,
        description="RDS Proxy pool: share of the database's max_connections it may open. Default 90 %.",
    )
    proxy_max_idle_connections_percent: int = Field(
        default=50,
        ge=0,
        le=100,
        description="RDS Proxy pool: share of max_connections kept idle; at most the max. Default 50 %.",
    )
    proxy_idle_client_timeout_seconds: int = Field(
        default=1800,
        ge=1,
        le=28800,
        description="RDS Proxy closes client connections idle this long (AWS allows 1 to 28800). Default 1800 s.",
    )

    @field_validator("performance_insights_retention_days")
    @classmethod
    def _pi_retention(cls, value: int) -> int:
        if value != 7 and not (value % 31 == 0 and 31 <= value <= 731):
            raise ValueError("must be 7 or a multiple of 31 up to 731")
        return value


class CacheConfig(Model):
    engine: Literal["redis", "valkey"] = "valkey"
    engine_version: str = Field(
        default="8.0",
        pattern=r"^\d+\.\d+$",
        description="Engine version, pinned: Valkey 7.2 or later, or Redis OSS 7.0 or later. Default 8.0 (Valkey).",
    )
    node_type: str = Field(default="cache.t4g.small", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    replica_count: int = Field(default=1, ge=0, le=5, description="Replicas per shard (AWS allows 5).")
    snapshot_retention_days: int = Field(
        default=7, ge=0, le=35, description="Days daily snapshots are kept (the seeds: 7; AWS allows 0 to 35)."
    )
    snapshot_window: str = Field(default="02:00-03:00", pattern=DAILY_WINDOW_PATTERN)
    maintenance_window: str = Field(default="sun:05:30-sun:06:30", pattern=MAINTENANCE_WINDOW_PATTERN)
    eviction_policy: Literal[
        "volatile-lru",
        "allkeys-lru",
        "volatile-lfu",
        "allkeys-lfu",
        "volatile-random",
        "allkeys-random",
        "volatile-ttl",
        "noeviction",
    ] = Field(
        default="volatile-lru",
        description="Only keys with a TTL (cache entries, sessions) are evicted; idempotency keys stay.",
    )


class QueueConfig(Model):
    fifo: bool = False
    visibility_timeout_seconds: int = Field(default=120, ge=0, le=43200, description="SQS allows 0 to 43200.")
    max_receive_count: int = Field(default=3, ge=1, le=1000, description="Receives before the DLQ.")
    retention_seconds: int = Field(default=604800, ge=60, le=1209600, description="7 days.")
    dlq_retention_seconds: int = Field(default=1209600, ge=60, le=1209600, description="14 days.")
    receive_wait_seconds: int = Field(default=20, ge=0, le=20, description="Long polling.")
    encryption: Literal["kms", "sqs"] = Field(
        default="kms",
        description="kms: the stack's messaging key (SNS can deliver to it); sqs: SQS-managed SSE. Default kms.",
    )
    kms_data_key_reuse_seconds: int = Field(
        default=300,
        ge=60,
        le=86400,
        description="How long SQS reuses a data key before calling KMS again (AWS allows 60 to 86400). Default 300.",
    )
    consumer: Literal["worker"] | None = Field(
        default="worker", description="The service that consumes the queue, or none."
    )


class MessagingConfig(Model):
    queues: dict[Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)], QueueConfig] = Field(
        default_factory=lambda: {"orders": QueueConfig()},
        description="Queues by name. Default: `orders`, consumed by the worker.",
    )


class AlarmThresholds(Model):
    alb_5xx_per_minute: int = Field(default=50, ge=1, description="Seeds: > 50 5xx a minute.")
    alb_5xx_periods: int = Field(default=2, ge=1, le=60)
    target_5xx_per_minute: int = Field(default=25, ge=1)
    p99_latency_seconds: float = Field(default=1.0, gt=0)
    aurora_cpu_percent: Percent = Field(default=80, description="Seeds: 80 % for 5 minutes.")
    aurora_cpu_minutes: int = Field(default=5, ge=1, le=60)
    aurora_freeable_memory_mib: int = Field(default=256, ge=1)
    aurora_connections: int = Field(default=800, ge=1)
    aurora_replica_lag_ms: int = Field(default=1000, ge=1)
    redis_cpu_percent: Percent = 75
    redis_memory_percent: Percent = 80
    redis_evictions: int = Field(default=100, ge=0)
    queue_oldest_message_seconds: int = Field(default=600, ge=1)


class ObservabilityConfig(Model):
    log_retention_days: LogRetentionDays = Field(default=30, description="One of CloudWatch's allowed values.")
    alarm_thresholds: AlarmThresholds = AlarmThresholds()
    alert_emails: list[Email] = Field(default_factory=list, max_length=20)
    tracing_sample_rate: float = Field(default=0.05, ge=0, le=1)
    access_log_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days ALB and CloudFront access logs stay in the logs bucket before they expire. Default 90.",
    )
    app_metrics_namespace: str = Field(
        default="Platform/App",
        pattern=r"^[A-Za-z0-9._/#:\- ]{1,255}$",
        description="CloudWatch namespace of the app's own metrics (breaker opens, retries). Default Platform/App.",
    )


# 100 % leaves no error budget: nothing could burn it, and no alarm could fire.
ObjectivePercent = Annotated[float, Field(gt=0, lt=100)]


class ServiceLevelObjective(Model):
    availability_percent: ObjectivePercent = Field(
        default=99.9,
        description="Share of good events (answers without a 5xx, messages processed) over the window. Default 99.9.",
    )


class ApiServiceLevelObjectives(ServiceLevelObjective):
    latency_threshold_ms: int = Field(
        default=500,
        ge=10,
        le=60_000,
        description="The latency objective's bound: requests answered within it are good. Default 500 ms.",
    )
    latency_percent: ObjectivePercent = Field(
        default=95,
        description="Share of requests answered within latencyThresholdMs: 95 makes it a p95 objective. Default 95.",
    )


class SloConfig(Model):
    """`platform:slos`: the objectives the burn-rate alarms (components/slo.py) are computed from."""

    window_days: int = Field(
        default=30, ge=7, le=90, description="The SLO window, at least the slowest alarm's 3 days. Default 30."
    )
    api: ApiServiceLevelObjectives = ApiServiceLevelObjectives()
    worker: ServiceLevelObjective = ServiceLevelObjective()
    page_emails: list[Email] = Field(
        default_factory=list,
        max_length=20,
        description="Subscribed to the page topic (fast burns, the health check); tickets go to the alerts topic.",
    )

    @model_validator(mode="after")
    def _budget_can_burn(self) -> SloConfig:
        # A threshold at or above a ratio of 1 can never be crossed: the alarm would never fire.
        fastest = max(BURN_RATE_WINDOWS, key=lambda pair: pair.burn_rate(self.window_days))
        objectives = {
            "api.availabilityPercent": self.api.availability_percent,
            "api.latencyPercent": self.api.latency_percent,
            "worker.availabilityPercent": self.worker.availability_percent,
        }
        for field_name, objective in objectives.items():
            if fastest.threshold(objective, self.window_days) >= 1:
                lowest = 100 * (1 - 1 / fastest.burn_rate(self.window_days))
                raise ValueError(
                    f"slos.{field_name}: {objective} leaves a budget the {fastest.label} burn-rate alarm"
                    f" ({fastest.burn_rate(self.window_days):g}x) can never cross; use more than {lowest:.2f}"
                )
        return self


class RecoveryConfig(Model):
    rpo_minutes: int = Field(
        default=60,
        ge=1,
        description=(
            "Recovery point objective. Between two backups only Aurora point-in-time recovery (about 5 minutes)"
            " meets it (stack_config.rules.recovery_objectives)."
        ),
    )
    rto_minutes: int = Field(
        default=240,
        ge=15,
        description=(
            "Recovery time objective. Restoring the database from a backup must fit in it, at the time its"
            " size class takes (stack_config.rules.recovery_time)."
        ),
    )
    database_size_gib: int = Field(
        default=100,
        ge=1,
        le=131072,
        description=(
            "The database's expected size, GiB: the RTO is checked against the restore time of its size class"
            " (Aurora grows to 128 TiB). Default 100."
        ),
    )
    backup_schedule: str = Field(
        default="cron(0 5 * * ? *)", pattern=BACKUP_CRON_PATTERN, description="Daily at 05:00 UTC."
    )
    backup_retention_days: int = Field(default=35, ge=1, le=36500)
    copy_region: str | None = Field(
        default=None, pattern=REGION_PATTERN, description="Cross-region backup copy target."
    )
    noncurrent_version_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days S3 keeps overwritten or deleted object versions before they expire. Default 30.",
    )


# The FIS experiments a stack can have, by name (components.chaos builds each).
ChaosExperiment = Literal["stop-api-tasks", "aurora-failover", "cache-az-power", "sqs-unreachable", "database-latency"]
CHAOS_EXPERIMENTS: tuple[ChaosExperiment, ...] = typing.get_args(ChaosExperiment)
# database-latency is opt-in: FIS reaches into a Fargate task only through SSM, so it adds AWS's SSM agent sidecar
# (root, writable root) to the API's tasks (components/ecs/fis_agent.py).
DEFAULT_CHAOS_EXPERIMENTS: tuple[ChaosExperiment, ...] = tuple(e for e in CHAOS_EXPERIMENTS if e != "database-latency")


# How long one fault lasts: FIS takes 1 minute to 12 hours; an hour is already more than staging needs.
FaultMinutes = Annotated[int, Field(ge=1, le=60)]


class ChaosConfig(Model):
    """AWS FIS experiment templates against this stack's own resources, each stopped by the API's alarm."""

    enabled: bool = Field(
        default=False,
        description=(
            "Create the FIS experiment templates. A prod stack also needs the policy pack's opt-in"
            " (`fis-templates-opted-in` in policy/config/prod.json)."
        ),
    )
    experiments: list[ChaosExperiment] = Field(
        default_factory=lambda: list(DEFAULT_CHAOS_EXPERIMENTS),
        min_length=1,
        description=(
            "Which templates: stop-api-tasks (stop a share of the API's tasks), aurora-failover (fail the"
            " writer over to a reader), cache-az-power (cut power to the cache's primary AZ), sqs-unreachable"
            " (block the SQS interface endpoint: FIS cannot throttle SQS calls), database-latency (delay the API"
            " tasks' traffic to the database proxy; needs the API's executeCommand off, and adds AWS's SSM agent"
            " sidecar to the API's tasks, which registers them with SSM for FIS). Default all but database-latency."
        ),
    )
    stop_task_percent: int = Field(
        default=50,
        ge=1,
        le=50,
        description=(
            "Share of the API's tasks stop-api-tasks stops (FIS PERCENT(n)); more than half is an outage, not a"
            " fault the service should ride out. Default 50."
        ),
    )
    cache_interruption_minutes: FaultMinutes = Field(
        default=5, description="How long cache-az-power keeps the AZ's cache nodes off. Default 5."
    )
    sqs_outage_minutes: FaultMinutes = Field(
        default=5, description="How long sqs-unreachable blocks the SQS endpoint. Default 5."
    )
    database_latency_ms: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Delay database-latency adds to each packet toward the database proxy (FIS default 200).",
    )
    database_jitter_ms: int = Field(
        default=10, ge=0, le=10_000, description="Jitter around that delay (FIS default 10)."
    )
    database_latency_minutes: FaultMinutes = Field(default=5, description="How long database-latency lasts. Default 5.")
    database_latency_task_percent: int = Field(
        default=50,
        ge=1,
        le=100,
        description="Share of the API's tasks database-latency slows (FIS PERCENT(n)). Default 50.",
    )

    @field_validator("experiments")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each experiment once")
        return value


class BudgetConfig(Model):
    monthly_usd: float = Field(default=1000, gt=0, le=10_000_000)
    alert_thresholds_percent: list[Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=lambda: [80.0, 100.0],
        min_length=1,
        max_length=5,
        description=(
            "Percent of the monthly budget that alerts, each as actual and as forecast cost"
            " (AWS allows 10 notifications per budget, so 5 thresholds). Default 80 and 100."
        ),
    )
    scope_to_stack: bool = Field(
        default=True,
        description=(
            "Count only costs tagged with this stack (the `stack` tag must be an active cost-allocation tag);"
            " false counts the whole account. Default true."
        ),
    )


class AppConfig(Model):
    cors_origins: list[Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]] = Field(
        default_factory=list, description="Origins allowed by CORS; default: the site's own."
    )
    trusted_proxy_hops: int = Field(
        default=2, ge=0, le=5, description="CloudFront and the ALB: 2 hops in front of the API."
    )
    notification_url: str | None = Field(
        default=None, pattern=r"^https://\S+$", description="The worker's notification provider."
    )
    notification_api_key: SecretStr | None = Field(
        default=None,
        description="The provider's API key; set it with `pulumi config set --secret --path`.",
    )


def _validate_tag_key(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise ValueError("tag keys may not start with 'aws:'")
    if not 1 <= len(key) <= 128 or not re.fullmatch(r"[\w .:/=+\-@]+", key):
        raise ValueError("tag keys are 1-128 letters, digits, spaces and _ . : / = + - @")
    return key


# Cost allocation: every stack names who owns it and which cost center pays (rules.required_tags).
REQUIRED_TAGS = ("owner", "cost-center")
TagKey = Annotated[str, AfterValidator(_validate_tag_key)]
TagValue = Annotated[str, Field(pattern=r"^[\w .:/=+\-@]*$", max_length=256)]


class PlatformConfig(Model):
    """Everything under `platform:` in a stack file."""

    environment: Literal["staging", "prod"]
    region: str = Field(default="us-east-1", pattern=REGION_PATTERN)
    availability_zones: int | list[str] = Field(
        default=3,
        description="How many AZs (the region's first N), or their names.",
    )
    network: NetworkConfig = NetworkConfig()
    edge: EdgeConfig
    services: ServicesConfig = ServicesConfig()
    capacity: CapacityConfig = CapacityConfig()
    database: DatabaseConfig = DatabaseConfig()
    cache: CacheConfig = CacheConfig()
    messaging: MessagingConfig = MessagingConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    slos: SloConfig = SloConfig()
    recovery: RecoveryConfig = RecoveryConfig()
    budget: BudgetConfig = BudgetConfig()
    app: AppConfig = AppConfig()
    chaos: ChaosConfig = ChaosConfig()
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=40, description="Tags on every resource (AWS allows 50)."
    )

    @field_validator("availability_zones", mode="before")
    @classmethod
    def _azs(cls, value: object) -> object:
        is_count = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 6
        is_names = (
            isinstance(value, list)
            and 1 <= len(value) <= 6
            and all(isinstance(name, str) for name in value)
            and len(set(value)) == len(value)
        )
        if not (is_count or is_names):
            raise ValueError("must be an AZ count from 1 to 6, or a list of 1 to 6 distinct AZ names")
        return value

    @model_validator(mode="before")
    @classmethod
    def _chaos_defaults_fit_the_network(cls, data: typing.Any) -> typing.Any:
        # sqs-unreachable needs the SQS interface endpoint: without endpoints the default list leaves it out (a
        # stack that names it anyway is refused by stack_config.rules.chaos_targets).
        chaos, network = (data.get(key) if isinstance(data, dict) else None for key in ("chaos", "network"))
        without_endpoints = isinstance(network, dict) and network.get("vpcEndpoints") is False
        if isinstance(chaos, dict) and "experiments" not in chaos and without_endpoints:
            defaults = [e for e in DEFAULT_CHAOS_EXPERIMENTS if e != "sqs-unreachable"]
            return {**data, "chaos": {**chaos, "experiments": defaults}}
        return data

    @property
    def az_count(self) -> int:
        return self.availability_zones if isinstance(self.availability_zones, int) else len(self.availability_zones)
