"""Rules that span fields, each returning the problems it finds with the path of the field to change."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from stack_config.cidr import TIERS, CidrAllocationError, subnet_plan
from stack_config.errors import ConfigProblem
from stack_config.limits import FARGATE_MEMORY_BY_CPU
from stack_config.schema import PlatformConfig

Rule = Callable[[PlatformConfig], Iterator[ConfigProblem]]
SERVICE_NAMES = ("api", "worker")
# Aurora point-in-time recovery restores to within about five minutes of a failure.
AURORA_PITR_RPO_MINUTES = 5


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
    if cfg.services.worker.deployment.strategy == "blue_green":
        yield ConfigProblem(
            "services.worker.deployment.strategy",
            "blue_green needs a load balancer; the worker has none, use rolling",
            "blue_green",
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
        if queue.dlq_retention_seconds < queue.retention_seconds:
            yield ConfigProblem(
                f"messaging.queues.{name}.dlqRetentionSeconds",
                f"must be at least retentionSeconds {queue.retention_seconds}, or messages expire in the DLQ first",
                queue.dlq_retention_seconds,
            )


def recovery_objectives(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    recovery = cfg.recovery
    if recovery.rpo_minutes < AURORA_PITR_RPO_MINUTES:
        yield ConfigProblem(
            "recovery.rpoMinutes",
            f"Aurora point-in-time recovery cannot meet an RPO under {AURORA_PITR_RPO_MINUTES} minutes",
            recovery.rpo_minutes,
        )
    if recovery.copy_region is not None and recovery.copy_region == cfg.region:
        yield ConfigProblem(
            "recovery.copyRegion", f"must differ from the stack's region {cfg.region}", recovery.copy_region
        )


def edge_domain(cfg: PlatformConfig) -> Iterator[ConfigProblem]:
    domain, zone = cfg.edge.domain, cfg.edge.hosted_zone
    if domain != zone and not domain.endswith("." + zone):
        yield ConfigProblem("edge.domain", f"must lie in the hosted zone {zone}", domain)


RULES: tuple[Rule, ...] = (
    fargate_sizes,
    task_counts,
    availability_zones,
    subnets,
    production_availability,
    database_capacity,
    cache_failover,
    queues_cover_jobs,
    recovery_objectives,
    edge_domain,
)


def check(cfg: PlatformConfig) -> list[ConfigProblem]:
    return [problem for rule in RULES for problem in rule(cfg)]
