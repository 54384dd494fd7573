"""Rules that span fields, each returning the problems it finds with the path of the field to change."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from stack_config.cidr import TIERS, CidrAllocationError, subnet_plan
from stack_config.errors import ConfigProblem
from stack_config.limits import FARGATE_MEMORY_BY_CPU
from stack_config.schema import REQUIRED_TAGS, PlatformConfig

Rule = Callable[[PlatformConfig], Iterator[ConfigProblem]]
SERVICE_NAMES = ("api", "worker")
# Aurora point-in-time recovery restores to within about five minutes of a failure.
AURORA_PITR_RPO_MINUTES = 5
MINUTES_PER_DAY = 24 * 60


def fargate_sizes(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    for name in SERVICE_NAMES:
        service = getattr(cfg.services, name)
        allowed = FARGATE_MEMORY_BY_CPU[service.cpu]
        if service.memory not in allowed:
            yield ConfigProblem(
                f"services.{name}.memory",
                f"Fargate with cpu {service.cpu} takes memory {allowed[0]}-{allowed[-1]}"
                f" in steps of {allowed[1] - allowed[0]}",
                service.memory,
            )


def task_counts(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    for name in SERVICE_NAMES:
        service = getattr(cfg.services, name)
        if service.min_count > service.max_count:
            yield ConfigProblem(
                f"services.{name}.minCount", f"must not exceed maxCount {service.max_count}", service.min_count
            )
        if not service.min_count <= service.desired_count <= service.max_count:
            yield ConfigProblem(
                f"services.{name}.desiredCount",
                f"must lie between minCount {service.min_count} and maxCount {service.max_count}",
                service.desired_count,
            )
        floor = cfg.az_count * cfg.services.min_tasks_per_az
        if service.min_count < floor:
            yield ConfigProblem(
                f"services.{name}.minCount",
                f"must be at least {floor} ({cfg.services.min_tasks_per_az} per AZ x {cfg.az_count} AZs)",
                service.min_count,
            )
    worker_strategy = cfg.services.worker.deployment.strategy
    if cfg.services.worker.deployment.shifts_traffic:
        yield ConfigProblem(
            "services.worker.deployment.strategy",
            f"{worker_strategy} shifts load balancer traffic; the worker has no load balancer, use rolling",
            worker_strategy,
        )


def availability_zones(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    if isinstance(cfg.availability_zones, list):
        for index, name in enumerate(cfg.availability_zones):
            if not (name.startswith(cfg.region) and len(name) == len(cfg.region) + 1 and name[-1].isalpha()):
                yield ConfigProblem(
                    f"availabilityZones[{index}]", f"must be an AZ of {cfg.region}, like {cfg.region}a", name
                )


def subnets(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    network = cfg.network
    vpc = network.vpc_cidr
    for tier in TIERS:
        spec = getattr(network, tier)
        if spec.prefix_length < vpc.prefixlen:
            yield ConfigProblem(
                f"network.{tier}.prefixLength",
                f"a subnet cannot be larger than the VPC's /{vpc.prefixlen}",
                spec.prefix_length,
            )
        if spec.cidrs is None:
            continue
        if len(spec.cidrs) != cfg.az_count:
            yield ConfigProblem(
                f"network.{tier}.cidrs", f"needs one CIDR per AZ ({cfg.az_count})", [str(c) for c in spec.cidrs]
            )
        for index, cidr in enumerate(spec.cidrs):
            if not cidr.subnet_of(vpc):
                yield ConfigProblem(f"network.{tier}.cidrs[{index}]", f"must lie inside the VPC {vpc}", str(cidr))
            elif not 16 <= cidr.prefixlen <= 28:
                yield ConfigProblem(f"network.{tier}.cidrs[{index}]", "subnets must be /16 to /28", str(cidr))
    explicit = [
        (f"network.{tier}.cidrs[{index}]", cidr)
        for tier in TIERS
        for index, cidr in enumerate(getattr(network, tier).cidrs or [])
    ]
    for position, (path, cidr) in enumerate(explicit):
        for other_path, other in explicit[:position]:
            if cidr.overlaps(other):
                yield ConfigProblem(path, f"overlaps {other_path} ({other})", str(cidr))
    try:
        subnet_plan(network, cfg.az_count)
    except CidrAllocationError as error:
        yield ConfigProblem("network.vpcCidr", f"the subnets do not fit: {error}", str(vpc))


def production_availability(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    if cfg.environment != "prod":
        return
    if cfg.az_count < 2:
        yield ConfigProblem("availabilityZones", "prod needs at least 2 AZs", cfg.availability_zones)
    if cfg.network.nat_strategy != "one_per_az":
        yield ConfigProblem(
            "network.natStrategy",
            "prod needs one_per_az, so one AZ's outage cannot cut egress",
            cfg.network.nat_strategy,
        )
    if cfg.services.min_tasks_per_az < 1:
        yield ConfigProblem(
            "services.minTasksPerAz", "prod needs at least one task per AZ", cfg.services.min_tasks_per_az
        )
    if cfg.database.reader_count < 1:
        yield ConfigProblem(
            "database.readerCount", "prod needs a reader in a second AZ for failover", cfg.database.reader_count
        )
    if not cfg.database.deletion_protection:
        yield ConfigProblem("database.deletionProtection", "prod keeps deletion protection on", False)
    if cfg.database.backup_retention_days < 7:
        yield ConfigProblem(
            "database.backupRetentionDays", "prod keeps at least 7 days", cfg.database.backup_retention_days
        )
    if cfg.recovery.copy_region is None:
        yield ConfigProblem("recovery.copyRegion", "prod copies backups to a second region; name one", None)


def private_egress(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    # VPC endpoints serve private ECR, Logs, SQS, SNS, Secrets Manager and KMS only: without a NAT gateway a
    # task could not pull the collector sidecar from public.ecr.aws, so no task would start at all.
    if cfg.network.nat_strategy == "none":
        yield ConfigProblem(
            "network.natStrategy",
            "Fargate tasks need a NAT gateway (single or one_per_az): they pull the ADOT collector image from"
            " public.ecr.aws and send traces to X-Ray, which no VPC endpoint of the stack serves, and the"
            " worker calls app.notificationUrl on the internet",
            "none",
        )


def database_capacity(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    database = cfg.database
    if (database.instance_class is None) == (database.serverless_v2 is None):
        yield ConfigProblem(
            "database.instanceClass",
            "set exactly one of database.instanceClass and database.serverlessV2",
            database.instance_class,
        )
    if database.serverless_v2 and database.serverless_v2.min_acu > database.serverless_v2.max_acu:
        yield ConfigProblem(
            "database.serverlessV2.minAcu",
            f"must not exceed maxAcu {database.serverless_v2.max_acu}",
            database.serverless_v2.min_acu,
        )


def cache_failover(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    if cfg.cache.replica_count < 1:
        yield ConfigProblem(
            "cache.replicaCount", "Multi-AZ with automatic failover needs at least 1 replica", cfg.cache.replica_count
        )
    if cfg.az_count < 2:
        yield ConfigProblem("availabilityZones", "Multi-AZ cache needs at least 2 AZs", cfg.availability_zones)


# Aurora PostgreSQL majors AWS still offers; Valkey and Redis OSS versions that support TLS mode `required`.
AURORA_POSTGRESQL_MAJORS = (13, 14, 15, 16, 17)
# (lowest, highest major): TLS mode `required` needs Valkey 7.2+ or Redis OSS 7.0+; ElastiCache's
# Redis OSS line ends at 7.x (Valkey succeeds it).
CACHE_VERSIONS = {"valkey": ((7, 2), None), "redis": ((7, 0), 7)}
MINUTES_PER_DAY = 24 * 60
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The shortest windows AWS accepts: RDS 30 minutes, ElastiCache 60 minutes.
RDS_MIN_WINDOW_MINUTES = 30
ELASTICACHE_MIN_WINDOW_MINUTES = 60


def _clock(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _week_minute(text: str) -> int:
    day, clock = text.split(":", 1)
    return DAYS.index(day) * MINUTES_PER_DAY + _clock(clock)


def _span(start: int, end: int, period: int) -> set[int]:
    """The minutes of a window from `start` to `end`, wrapping at `period`."""
    length = (end - start) % period
    return {(start + offset) % period for offset in range(length)}


def _daily_minutes(window: str) -> set[int]:
    """A daily window's minutes in every day of the week."""
    start, end = (_clock(part) for part in window.split("-"))
    daily = _span(start, end, MINUTES_PER_DAY)
    return {day * MINUTES_PER_DAY + minute for day in range(7) for minute in daily}


def _weekly_minutes(window: str) -> set[int]:
    start, end = (_week_minute(part) for part in window.split("-"))
    return _span(start, end, 7 * MINUTES_PER_DAY)


def data_windows(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    """Backup/snapshot and maintenance windows: long enough, and never overlapping (AWS rejects both)."""
    layers = (
        (
            "database",
            "backupWindow",
            cfg.database.backup_window,
            cfg.database.maintenance_window,
            RDS_MIN_WINDOW_MINUTES,
        ),
        (
            "cache",
            "snapshotWindow",
            cfg.cache.snapshot_window,
            cfg.cache.maintenance_window,
            ELASTICACHE_MIN_WINDOW_MINUTES,
        ),
    )
    for layer, daily_key, daily, weekly, shortest in layers:
        daily_minutes, weekly_minutes = _daily_minutes(daily), _weekly_minutes(weekly)
        if len(daily_minutes) < 7 * shortest:
            yield ConfigProblem(f"{layer}.{daily_key}", f"must last at least {shortest} minutes", daily)
        if len(weekly_minutes) < shortest:
            yield ConfigProblem(f"{layer}.maintenanceWindow", f"must last at least {shortest} minutes", weekly)
        if daily_minutes & weekly_minutes:
            yield ConfigProblem(f"{layer}.maintenanceWindow", f"must not overlap {layer}.{daily_key} ({daily})", weekly)


def data_engines(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    database, cache = cfg.database, cfg.cache
    major = int(database.engine_version.split(".")[0])
    if major not in AURORA_POSTGRESQL_MAJORS:
        yield ConfigProblem(
            "database.engineVersion",
            f"Aurora PostgreSQL offers majors {', '.join(map(str, AURORA_POSTGRESQL_MAJORS))}",
            database.engine_version,
        )
    version = tuple(int(part) for part in cache.engine_version.split("."))
    lowest, highest_major = CACHE_VERSIONS[cache.engine]
    if version < lowest:
        yield ConfigProblem(
            "cache.engineVersion",
            f"{cache.engine} {lowest[0]}.{lowest[1]} or later is needed for TLS mode `required`"
            f" (check cache.engine, {cache.engine})",
            cache.engine_version,
        )
    elif highest_major is not None and version[0] > highest_major:
        yield ConfigProblem(
            "cache.engineVersion",
            f"ElastiCache offers {cache.engine} up to {highest_major}.x; use valkey for newer versions"
            f" (check cache.engine, {cache.engine})",
            cache.engine_version,
        )


def database_proxy_pool(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    database = cfg.database
    if database.proxy_max_idle_connections_percent > database.proxy_max_connections_percent:
        yield ConfigProblem(
            "database.proxyMaxIdleConnectionsPercent",
            f"must not exceed proxyMaxConnectionsPercent {database.proxy_max_connections_percent}",
            database.proxy_max_idle_connections_percent,
        )


def production_data(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    if cfg.environment != "prod":
        return
    if not cfg.database.final_snapshot:
        yield ConfigProblem("database.finalSnapshot", "prod takes a final snapshot before deleting the cluster", False)
    if cfg.cache.snapshot_retention_days < 1:
        yield ConfigProblem(
            "cache.snapshotRetentionDays",
            "prod keeps cache snapshots (at least 1 day)",
            cfg.cache.snapshot_retention_days,
        )


def queues_cover_jobs(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    job_timeout = cfg.services.worker.job_timeout_seconds
    for name, queue in cfg.messaging.queues.items():
        if queue.consumer == "worker" and queue.visibility_timeout_seconds < job_timeout:
            yield ConfigProblem(
                f"messaging.queues.{name}.visibilityTimeoutSeconds",
                f"must cover the worker's job timeout of {job_timeout} s (services.worker.jobTimeoutSeconds),"
                " or a message is redelivered while it is still being processed",
                queue.visibility_timeout_seconds,
            )
        # A standard queue's message keeps its enqueue time in the DLQ (a FIFO queue's is reset), so a
        # standard queue's DLQ must keep messages longer than the queue, or a late failure expires on arrival.
        retention, dlq_retention = queue.retention_seconds, queue.dlq_retention_seconds
        if dlq_retention < retention or (not queue.fifo and dlq_retention == retention):
            yield ConfigProblem(
                f"messaging.queues.{name}.dlqRetentionSeconds",
                f"must be at least retentionSeconds {retention}, or messages expire in the DLQ first"
                if queue.fifo
                else f"must be longer than retentionSeconds {retention}: a standard queue's message keeps its"
                " enqueue time in the DLQ and would expire there on arrival (SQS keeps at most 1209600 s,"
                " so lower retentionSeconds)",
                queue.dlq_retention_seconds,
            )


def backup_interval_minutes(schedule: str) -> int | None:
    """The longest gap between two runs of an AWS Backup `cron(min hour dom month dow year)`.

    Daily or more frequent schedules only (fixed hours, lists, ranges, steps, `*`); None otherwise.
    """
    fields = schedule.removeprefix("cron(").removesuffix(")").split()
    if len(fields) != 6:
        return None
    _, hours, day_of_month, _, day_of_week, _ = fields
    if day_of_month not in ("*", "?") or day_of_week not in ("*", "?"):
        return None
    run_hours = _run_hours(hours)
    if not run_hours:
        return None
    following = [*run_hours[1:], run_hours[0]]
    return max(((later - earlier) % 24 or 24) * 60 for earlier, later in zip(run_hours, following, strict=True))


def _run_hours(hours: str) -> list[int] | None:
    """The hours of the day a cron hour field fires at, e.g. `0/6` -> [0, 6, 12, 18]."""
    found: set[int] = set()
    for part in hours.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if span == "*":
            first, last = 0, 23
        elif "-" in span:
            low, _, high = span.partition("-")
            if not (low.isdigit() and high.isdigit()):
                return None
            first, last = int(low), int(high)
        elif span.isdigit():
            first, last = int(span), 23 if step_text else int(span)
        else:
            return None
        if step < 1 or not 0 <= first <= last <= 23:
            return None
        found.update(range(first, last + 1, step))
    return sorted(found)


def recovery_objectives(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    recovery = cfg.recovery
    interval = backup_interval_minutes(recovery.backup_schedule)
    if interval is None:
        yield ConfigProblem(
            "recovery.backupSchedule",
            "use a daily or more frequent cron(min hour * * ? *) so the plan can be checked against the RPO",
            recovery.backup_schedule,
        )
    # Between two backups only Aurora's point-in-time recovery meets an RPO; below its floor nothing does.
    if recovery.rpo_minutes < AURORA_PITR_RPO_MINUTES and (interval is None or recovery.rpo_minutes < interval):
        yield ConfigProblem(
            "recovery.rpoMinutes",
            f"Aurora point-in-time recovery cannot meet an RPO under {AURORA_PITR_RPO_MINUTES} minutes"
            + (f", and the backup plan runs only every {interval} minutes" if interval is not None else ""),
            recovery.rpo_minutes,
        )
    if recovery.copy_region is not None and recovery.copy_region == cfg.region:
        yield ConfigProblem(
            "recovery.copyRegion", f"must differ from the stack's region {cfg.region}", recovery.copy_region
        )


# What the architecture can recover in, in minutes. Failover: the Aurora User Guide ("High availability for
# Aurora DB instances") and FAQ give 30 to 120 s to promote a reader; without one Aurora creates a new writer,
# "typically in under 10 minutes". A restore (point in time or snapshot) makes a new cluster and its writer:
# AWS publishes no figure, so these are planning assumptions by size class (cluster and instance creation,
# about 20 to 30 minutes when small, growing with the volume), rounded up; a restore drill's time replaces them.
AURORA_FAILOVER_MINUTES = 2
AURORA_REPLACE_WRITER_MINUTES = 10
# (largest size in GiB, minutes until the restored cluster's writer is available)
RESTORE_MINUTES_BY_SIZE = ((100, 30), (1024, 60), (10240, 180), (131072, 480))
# Pointing the proxy and services at the restored cluster: a stack update and the services' rollout.
RESTORE_CUTOVER_MINUTES = 15


def restore_minutes(size_gib: int) -> int:
    """Minutes from deciding to restore to the stack serving from the restored cluster, by size class."""
    for largest, minutes in RESTORE_MINUTES_BY_SIZE:
        if size_gib <= largest:
            return minutes + RESTORE_CUTOVER_MINUTES
    raise ValueError(f"no restore size class holds {size_gib} GiB")


def recovery_paths(cfg: PlatformConfig) -> dict[str, int]:
    """Each way the stack recovers its database, and the minutes it takes."""
    if cfg.database.reader_count:
        failover = ("failover to a reader", AURORA_FAILOVER_MINUTES)
    else:
        failover = ("a new writer (no reader to fail over to)", AURORA_REPLACE_WRITER_MINUTES)
    return dict([failover, ("restore from a backup", restore_minutes(cfg.recovery.database_size_gib))])


def recovery_time(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    """The RTO must cover the slowest way back the architecture has: losing data means restoring it."""
    paths = recovery_paths(cfg)
    slowest = max(paths.values())
    if cfg.recovery.rto_minutes < slowest:
        can_do = "; ".join(f"{path} about {minutes} min" for path, minutes in paths.items())
        yield ConfigProblem(
            "recovery.rtoMinutes",
            f"the architecture's slowest recovery takes about {slowest} minutes ({can_do}, for"
            f" recovery.databaseSizeGib {cfg.recovery.database_size_gib}); raise the RTO to at least {slowest}",
            cfg.recovery.rto_minutes,
        )


def budget_thresholds(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    thresholds = cfg.budget.alert_thresholds_percent
    if len(set(thresholds)) != len(thresholds):
        yield ConfigProblem(
            "budget.alertThresholdsPercent",
            "must be distinct: AWS Budgets rejects two notifications with the same threshold",
            thresholds,
        )


def required_tags(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    missing = [key for key in REQUIRED_TAGS if not cfg.tags.get(key, "").strip()]
    if missing:
        yield ConfigProblem(
            "tags",
            f"cost allocation needs the tags {', '.join(missing)} (every resource carries them)",
            dict(cfg.tags),
        )


def edge_domain(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    domain, zone = cfg.edge.domain, cfg.edge.hosted_zone
    if domain != zone and not domain.endswith("." + zone):
        yield ConfigProblem("edge.domain", f"must lie in the hosted zone {zone}", domain)


def chaos_targets(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    experiments = cfg.chaos.experiments if cfg.chaos.enabled else []
    # FIS: the aws:ecs:task network actions need ECS Exec off on the targeted tasks.
    if "database-latency" in experiments and cfg.services.api.execute_command:
        yield ConfigProblem(
            "chaos.experiments",
            "database-latency needs services.api.executeCommand false (FIS cannot inject network faults into"
            " tasks with ECS Exec on)",
            "database-latency",
        )
    if "sqs-unreachable" in experiments and not cfg.network.vpc_endpoints:
        yield ConfigProblem(
            "chaos.experiments",
            "sqs-unreachable blocks the SQS interface endpoint: it needs network.vpcEndpoints true",
            "sqs-unreachable",
        )


RULES: tuple[Rule, ...] = (
    fargate_sizes,
    task_counts,
    availability_zones,
    subnets,
    production_availability,
    private_egress,
    database_capacity,
    cache_failover,
    data_windows,
    data_engines,
    database_proxy_pool,
    production_data,
    queues_cover_jobs,
    recovery_objectives,
    recovery_time,
    budget_thresholds,
    required_tags,
    edge_domain,
    chaos_targets,
)


def check(cfg: PlatformConfig) -> list[ConfigProblem]:
    return [problem for rule in RULES for problem in rule(cfg)]
