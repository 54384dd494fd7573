"""Monthly cost of a stack, estimated from its offline plan: per resource, per layer and in total.

Everything is read from the plan (what the program would create, with its sizes and counts) and
two kinds of data: list prices per region (`platformctl/prices/REGION.json`, each with its source
and the date it was read) and usage assumptions (requests, GB, load between minimum and maximum)
from the stack file's `cost:usage` key, with the defaults stated in `UsageAssumptions`. A month is
the price file's `hoursPerMonth` (730). Free tiers and data transfer between AZs are left out.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

PRICES_DIR = Path(__file__).with_name("prices")
USAGE_KEY = "cost:usage"
STACK_TYPE = "pulumi:pulumi:Stack"


class CostError(Exception):
    """The estimate cannot be made: no prices for the region, or bad usage assumptions."""


class UsageAssumptions(BaseModel):
    """What the plan cannot know: traffic, data volumes and load. Set under `cost:usage` in Pulumi.STACK.yaml."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    requests_per_month: float = Field(
        default=10_000_000, ge=0, description="Requests through CloudFront, WAF and the ALB per month."
    )
    cdn_gb_per_month: float = Field(default=100, ge=0, description="GB CloudFront serves to viewers per month.")
    alb_lcu: float = Field(default=1, ge=0, description="Average load balancer capacity units in use per hour.")
    task_load: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Where each service runs between its autoscaling minimum (0) and maximum (1) tasks, on average.",
    )
    aurora_acu_load: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Where Serverless v2 instances run between their minimum (0) and maximum (1) ACUs, on average.",
    )
    aurora_storage_gb: float = Field(default=20, ge=0, description="GB stored in each Aurora cluster.")
    aurora_io_millions: float = Field(
        default=20, ge=0, description="Million Aurora I/O requests per cluster per month."
    )
    nat_gb_per_month: float = Field(default=100, ge=0, description="GB through all NAT gateways per month.")
    endpoint_gb_per_month: float = Field(default=10, ge=0, description="GB through each interface endpoint per month.")
    log_ingest_gb_per_month: float = Field(
        default=20, ge=0, description="GB ingested into CloudWatch Logs per month, spread over the log groups."
    )
    queue_messages_per_month: float = Field(
        default=1_000_000, ge=0, description="Messages through each queue (not DLQs) per month; 3 requests each."
    )
    topic_publishes_per_month: float = Field(default=100_000, ge=0, description="Publishes to each topic per month.")
    bucket_gb: float = Field(default=50, ge=0, description="GB stored in each S3 bucket.")
    backup_gb: float = Field(default=40, ge=0, description="GB of recovery points kept by each backup plan.")
    repository_gb: float = Field(default=2, ge=0, description="GB of images in each ECR repository.")


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    unit: str
    source: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PriceBook:
    region: str
    hours_per_month: float
    read: str
    prices: Mapping[str, Price]
    sources: Mapping[str, Mapping[str, Any]]

    def get(self, key: str) -> Price | None:
        return self.prices.get(key)


def load_prices(region: str, prices_dir: Path = PRICES_DIR) -> PriceBook:
    path = prices_dir / f"{region}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in prices_dir.glob("*.json"))) or "none"
        raise CostError(f"no price data for region {region} (have: {known}); add {path.name} under {prices_dir}")
    document = json.loads(path.read_text())
    prices = {
        key: Price(
            key,
            float(entry["usd"]),
            entry["unit"],
            entry["source"],
            {k: v for k, v in entry.items() if k not in {"usd", "unit", "source"}},
        )
        for key, entry in document["prices"].items()
    }
    return PriceBook(region, float(document["hoursPerMonth"]), document["read"], prices, document["sources"])


def parse_usage(raw: str | None) -> UsageAssumptions:
    """The stack file's `cost:usage` value (as the engine hands it over: JSON text); defaults when absent."""
    if raw is None:
        return UsageAssumptions()
    try:
        value = json.loads(raw)
        return UsageAssumptions.model_validate(value)
    except ValueError as error:
        problems = (
            [f"{USAGE_KEY}.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})" for e in error.errors()]
            if isinstance(error, ValidationError)
            else [f"{USAGE_KEY}: must be a mapping of assumptions ({error})"]
        )
        raise CostError("; ".join(problems)) from None


@dataclass(frozen=True)
class LineItem:
    layer: str
    resource: str
    type: str
    item: str
    quantity: float
    unit: str
    unit_usd: float

    @property
    def monthly_usd(self) -> float:
        return self.quantity * self.unit_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "resource": self.resource,
            "type": self.type,
            "item": self.item,
            "quantity": round(self.quantity, 6),
            "unit": self.unit,
            "unitUsd": self.unit_usd,
            "monthlyUsd": round(self.monthly_usd, 2),
        }


@dataclass
class CostEstimate:
    stack: str
    region: str
    items: list[LineItem]
    usage: UsageAssumptions
    prices_read: str
    budget_usd: float | None = None
    unpriced: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(item.monthly_usd for item in self.items)

    def by_layer(self) -> dict[str, float]:
        return _sum_by(self.items, lambda item: item.layer)

    def by_resource(self) -> dict[str, float]:
        return _sum_by(self.items, lambda item: f"{item.layer}/{item.resource}")

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.total > self.budget_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "currency": "USD",
            "pricesRead": self.prices_read,
            "totalMonthlyUsd": round(self.total, 2),
            "byLayer": {layer: round(usd, 2) for layer, usd in self.by_layer().items()},
            "budgetUsd": self.budget_usd,
            "overBudget": self.over_budget,
            "items": [item.to_json() for item in self.items],
            "unpriced": self.unpriced,
            "usage": self.usage.model_dump(by_alias=True),
        }


def _sum_by(items: Iterable[LineItem], key: Callable[[LineItem], str]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for item in items:
        sums[key(item)] += item.monthly_usd
    return dict(sorted(sums.items(), key=lambda pair: -pair[1]))


def plan_region(plan: Mapping[str, Any]) -> str:
    """The region of the stack's default AWS provider (the first one; others serve e.g. the backup copy)."""
    outputs_region = (plan.get("outputs") or {}).get("region")
    if isinstance(outputs_region, str):
        return outputs_region
    for resource in plan.get("resources", []):
        if resource["type"] == "pulumi:providers:aws" and resource["inputs"].get("region"):
            return str(resource["inputs"]["region"])
    raise CostError("the plan names no region (no `region` output, no aws provider with a region)")


class _Estimator:
    def __init__(self, plan: Mapping[str, Any], book: PriceBook, usage: UsageAssumptions) -> None:
        self.book = book
        self.usage = usage
        self.resources: dict[str, dict[str, Any]] = {r["urn"]: r for r in plan.get("resources", [])}
        self.items: list[LineItem] = []
        self.unpriced: list[str] = []
        self.log_groups = max(1, len(self._of_type("aws:cloudwatch/logGroup:LogGroup")))
        self.nat_gateways = max(1, len(self._of_type("aws:ec2/natGateway:NatGateway")))

    def _of_type(self, type_token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r["type"] == type_token]

    def layer(self, resource: Mapping[str, Any]) -> str:
        """The top-level component the resource sits in (its layer), or `stack` for the stack's own."""
        current = resource
        while True:
            parent = self.resources.get(current.get("parent") or "")
            if parent is None or parent["type"] == STACK_TYPE:
                break
            current = parent
        return "stack" if current is resource else str(current["name"])

    def add(self, resource: Mapping[str, Any], item: str, quantity: float, price_key: str) -> None:
        price = self.book.get(price_key)
        if price is None:
            self.unpriced.append(
                f"{resource['name']} ({resource['type']}): no price `{price_key}` for {self.book.region}"
            )
            return
        if quantity:
            self.items.append(
                LineItem(
                    self.layer(resource), resource["name"], resource["type"], item, quantity, price.unit, price.usd
                )
            )

    def hours(self, count: float = 1) -> float:
        return count * self.book.hours_per_month

    def related(self, resource: Mapping[str, Any], prop: str, type_token: str) -> dict[str, Any] | None:
        """The resource of `type_token` that `prop` of `resource` was built from (its property dependency)."""
        for urn in (resource.get("propertyDependencies") or {}).get(prop, []):
            candidate = self.resources.get(urn)
            if candidate and candidate["type"] == type_token:
                return candidate
        return None

    def dependents(self, resource: Mapping[str, Any], type_token: str) -> list[dict[str, Any]]:
        return [r for r in self._of_type(type_token) if resource["urn"] in r.get("dependencies", [])]

    def run(self) -> None:
        for resource in list(self.resources.values()):
            pricer = PRICERS.get(resource["type"])
            if pricer is not None and resource.get("custom"):
                pricer(self, resource, resource.get("inputs") or {})


Pricer = Callable[[_Estimator, dict[str, Any], dict[str, Any]], None]
PRICERS: dict[str, Pricer] = {}


def prices(type_token: str) -> Callable[[Pricer], Pricer]:
    def register(function: Pricer) -> Pricer:
        PRICERS[type_token] = function
        return function

    return register


@prices("aws:ec2/natGateway:NatGateway")
def _nat(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "hours", est.hours(), "natGateway.hour")
    est.add(
        r, "data processed (share of natGbPerMonth)", est.usage.nat_gb_per_month / est.nat_gateways, "natGateway.gb"
    )


@prices("aws:ec2/eip:Eip")
def _eip(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "public IPv4 address hours", est.hours(), "publicIpv4.hour")


@prices("aws:ec2/vpcEndpoint:VpcEndpoint")
def _endpoint(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    if inputs.get("vpcEndpointType") != "Interface":
        return  # gateway endpoints (S3, DynamoDB) are free
    est.add(r, "endpoint hours (per AZ)", est.hours(len(inputs.get("subnetIds") or [])), "interfaceEndpoint.hour")
    est.add(r, "data processed", est.usage.endpoint_gb_per_month, "interfaceEndpoint.gb")


@prices("aws:lb/loadBalancer:LoadBalancer")
def _alb(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    if inputs.get("loadBalancerType", "application") != "application":
        est.unpriced.append(f"{r['name']}: only application load balancers are priced")
        return
    est.add(r, "hours", est.hours(), "alb.hour")
    est.add(r, "LCU hours (albLcu)", est.hours(est.usage.alb_lcu), "alb.lcu")


@prices("aws:ecs/service:Service")
def _service(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    task = est.related(r, "taskDefinition", "aws:ecs/taskDefinition:TaskDefinition")
    if task is None:
        est.unpriced.append(f"{r['name']}: no task definition in the plan")
        return
    task_inputs = task["inputs"]
    vcpu, memory_gb = int(task_inputs["cpu"]) / 1024, int(task_inputs["memory"]) / 1024
    architecture = (task_inputs.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")
    tasks = _average_tasks(est, r, inputs)
    on_demand, spot = split_capacity(tasks, inputs.get("capacityProviderStrategies") or [])
    discount = est.book.get("fargateSpot.discount")
    for label, count, factor in (("", on_demand, 1.0), (" on Spot", spot, 1 - (discount.usd if discount else 0))):
        if count:
            est.add(
                r,
                f"{count:g} tasks x {vcpu:g} vCPU{label}",
                est.hours(count * vcpu * factor),
                f"fargate.{architecture}.vcpu",
            )
            est.add(
                r,
                f"{count:g} tasks x {memory_gb:g} GB{label}",
                est.hours(count * memory_gb * factor),
                f"fargate.{architecture}.gb",
            )


def _average_tasks(est: _Estimator, service: dict[str, Any], inputs: dict[str, Any]) -> float:
    """Tasks on average: between the autoscaling target's minimum and maximum by taskLoad, else desiredCount."""
    for target in est.dependents(service, "aws:appautoscaling/target:Target"):
        low, high = float(target["inputs"]["minCapacity"]), float(target["inputs"]["maxCapacity"])
        return low + est.usage.task_load * (high - low)
    return float(inputs.get("desiredCount", 1))


def split_capacity(tasks: float, strategies: list[dict[str, Any]]) -> tuple[float, float]:
    """(on-demand, Spot) tasks: each provider's base first, the rest by weight, as ECS places them."""
    if not strategies:
        return tasks, 0.0
    remaining, on_demand, spot = tasks, 0.0, 0.0
    for strategy in strategies:
        base = min(float(strategy.get("base", 0)), remaining)
        remaining -= base
        if strategy["capacityProvider"] == "FARGATE_SPOT":
            spot += base
        else:
            on_demand += base
    total_weight = sum(float(s.get("weight", 0)) for s in strategies) or 1.0
    spot_weight = sum(float(s.get("weight", 0)) for s in strategies if s["capacityProvider"] == "FARGATE_SPOT")
    spot += remaining * spot_weight / total_weight
    on_demand += remaining * (1 - spot_weight / total_weight)
    return on_demand, spot


@prices("aws:rds/clusterInstance:ClusterInstance")
def _aurora_instance(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    instance_class = inputs["instanceClass"]
    if instance_class == "db.serverless":
        est.add(r, "Serverless v2 ACU hours", est.hours(_average_acu(est, r)), "aurora.acu")
    else:
        est.add(r, f"{instance_class} hours", est.hours(), f"aurora.{instance_class}")


def _average_acu(est: _Estimator, instance: dict[str, Any]) -> float:
    cluster = est.related(instance, "clusterIdentifier", "aws:rds/cluster:Cluster")
    scaling = (cluster or {}).get("inputs", {}).get("serverlessv2ScalingConfiguration") or {}
    low, high = float(scaling.get("minCapacity", 0.5)), float(scaling.get("maxCapacity", 0.5))
    return low + est.usage.aurora_acu_load * (high - low)


@prices("aws:rds/cluster:Cluster")
def _aurora_cluster(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "storage (auroraStorageGb)", est.usage.aurora_storage_gb, "aurora.storage")
    est.add(r, "I/O (auroraIoMillions)", est.usage.aurora_io_millions, "aurora.io")


@prices("aws:rds/proxy:Proxy")
def _proxy(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    """RDS Proxy bills the capacity of the database behind it: vCPUs of instances, ACUs of Serverless v2."""
    vcpus, acus = 0.0, 0.0
    for target in est.dependents(r, "aws:rds/proxyTarget:ProxyTarget"):
        cluster = est.related(target, "dbClusterIdentifier", "aws:rds/cluster:Cluster")
        for instance in est.dependents(cluster, "aws:rds/clusterInstance:ClusterInstance") if cluster else []:
            instance_class = instance["inputs"]["instanceClass"]
            if instance_class == "db.serverless":
                acus += _average_acu(est, instance)
            else:
                price = est.book.get(f"aurora.{instance_class}")
                vcpus += float(price.extra.get("vcpu", 0)) if price else 0
    for amount, key in ((vcpus, "rdsProxy.vcpu"), (acus, "rdsProxy.acu")):
        price = est.book.get(key)
        if amount and price:
            billed = max(amount, float(price.extra.get("minimum", 0)))
            est.add(
                r,
                f"{billed:g} {'vCPU' if key.endswith('vcpu') else 'ACU'} hours behind the proxy",
                est.hours(billed),
                key,
            )


@prices("aws:elasticache/replicationGroup:ReplicationGroup")
def _cache(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    nodes = inputs.get("numCacheClusters") or (
        int(inputs.get("numNodeGroups", 1)) * (int(inputs.get("replicasPerNodeGroup", 0)) + 1)
    )
    engine = "valkey" if inputs.get("engine", "redis") == "valkey" else "redis"
    node_type = inputs["nodeType"]
    est.add(r, f"{nodes} x {node_type} node hours", est.hours(float(nodes)), f"elasticache.{engine}.{node_type}")


@prices("aws:cloudfront/distribution:Distribution")
def _cdn(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "data to viewers (cdnGbPerMonth)", est.usage.cdn_gb_per_month, "cloudfront.gb")
    est.add(r, "HTTPS requests (requestsPerMonth)", est.usage.requests_per_month / 1e6, "cloudfront.requests")


@prices("aws:wafv2/webAcl:WebAcl")
def _waf(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    est.add(r, "web ACL", 1, "waf.webAcl")
    est.add(r, "rules and managed rule groups", len(inputs.get("rules") or []), "waf.rule")
    est.add(r, "requests (requestsPerMonth)", est.usage.requests_per_month / 1e6, "waf.requests")


@prices("aws:kms/key:Key")
def _kms(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "customer managed key", 1, "kms.key")


@prices("aws:secretsmanager/secret:Secret")
def _secret(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "secret", 1, "secretsmanager.secret")


@prices("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    queries = inputs.get("metricQueries") or []
    metrics = sum(1 for query in queries if query.get("metric")) if queries else 1
    periods = [int(inputs.get("period") or 60)] + [int((q.get("metric") or {}).get("period", 60)) for q in queries]
    key = "cloudwatch.alarmHighResolution" if min(periods) < 60 else "cloudwatch.alarm"
    est.add(r, f"alarm on {metrics} metric(s)", metrics, key)


@prices("aws:cloudwatch/logGroup:LogGroup")
def _logs(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    ingest = est.usage.log_ingest_gb_per_month / est.log_groups
    est.add(r, "ingest (share of logIngestGbPerMonth)", ingest, "cloudwatch.logsIngest")
    # In steady state a group holds its retention's worth of ingest.
    months_kept = float(inputs.get("retentionInDays") or 3650) / 30
    est.add(r, f"storage ({months_kept:.1f} months kept)", ingest * months_kept, "cloudwatch.logsStorage")


@prices("aws:cloudwatch/dashboard:Dashboard")
def _dashboard(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "dashboard", 1, "cloudwatch.dashboard")


@prices("aws:sqs/queue:Queue")
def _queue(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    if not inputs.get("redrivePolicy"):
        return  # a dead-letter queue only holds failures: no steady traffic
    requests = est.usage.queue_messages_per_month * 3 / 1e6  # send, receive, delete
    est.add(r, "requests (3 per message)", requests, "sqs.requests")


@prices("aws:sns/topic:Topic")
def _topic(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "publishes (topicPublishesPerMonth)", est.usage.topic_publishes_per_month / 1e6, "sns.publishes")


@prices("aws:s3/bucket:Bucket")
def _bucket(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "storage (bucketGb)", est.usage.bucket_gb, "s3.storage")


@prices("aws:backup/plan:Plan")
def _backup(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    est.add(r, "recovery points (backupGb)", est.usage.backup_gb, "backup.aurora")
    for rule in inputs.get("rules") or []:
        for _ in rule.get("copyActions") or []:
            est.add(
                r, f"copy to another region ({rule.get('ruleName', 'rule')})", est.usage.backup_gb, "backup.crossRegion"
            )
            est.add(r, "recovery points kept in the copy region", est.usage.backup_gb, "backup.aurora")


@prices("aws:route53/zone:Zone")
def _zone(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "hosted zone", 1, "route53.zone")


@prices("aws:route53/healthCheck:HealthCheck")
def _health_check(est: _Estimator, r: dict[str, Any], inputs: dict[str, Any]) -> None:
    est.add(r, "health check", 1, "route53.healthCheck")
    features = [
        name
        for name, on in (
            ("HTTPS", str(inputs.get("type", "")).startswith("HTTPS")),
            ("string matching", "STR_MATCH" in str(inputs.get("type", ""))),
            ("fast interval", int(inputs.get("requestInterval") or 30) == 10),
            ("latency measurement", bool(inputs.get("measureLatency"))),
        )
        if on
    ]
    est.add(r, f"optional features: {', '.join(features) or 'none'}", len(features), "route53.healthCheckFeature")


@prices("aws:ecr/repository:Repository")
def _repository(est: _Estimator, r: dict[str, Any], _: dict[str, Any]) -> None:
    est.add(r, "image storage (repositoryGb)", est.usage.repository_gb, "ecr.storage")


def estimate(plan: Mapping[str, Any], usage: UsageAssumptions, prices_dir: Path = PRICES_DIR) -> CostEstimate:
    region = plan_region(plan)
    book = load_prices(region, prices_dir)
    estimator = _Estimator(plan, book, usage)
    estimator.run()
    return CostEstimate(
        stack=str(plan.get("stack", "?")),
        region=region,
        items=estimator.items,
        usage=usage,
        prices_read=book.read,
        budget_usd=_budget(plan),
        unpriced=estimator.unpriced,
    )


def _budget(plan: Mapping[str, Any]) -> float | None:
    """The stack's own monthly COST budget, as the program registers it."""
    for resource in plan.get("resources", []):
        inputs = resource.get("inputs") or {}
        if resource["type"] == "aws:budgets/budget:Budget" and inputs.get("budgetType", "COST") == "COST":
            return float(inputs["limitAmount"])
    return None


@dataclass(frozen=True)
class CostChange:
    key: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


def compare(before: CostEstimate, after: CostEstimate) -> list[CostChange]:
    """Per layer, then the total: what the change does to the monthly estimate."""
    old, new = before.by_layer(), after.by_layer()
    rows = [CostChange(layer, old.get(layer, 0.0), new.get(layer, 0.0)) for layer in sorted(set(old) | set(new))]
    rows = [row for row in rows if abs(row.delta) >= 0.005]
    rows.append(CostChange("total", before.total, after.total))
    return rows


def money(usd: float) -> str:
    return f"${usd:,.2f}"


def signed_money(usd: float) -> str:
    return ("+" if usd >= 0.005 else "-" if usd <= -0.005 else "±") + money(abs(usd))


def render_markdown(estimate_: CostEstimate, against: CostEstimate | None = None) -> str:
    """Per layer and total (and the change against another plan), for the pull-request comment."""
    lines = [
        f"**Monthly cost estimate ({estimate_.region}, list prices read {estimate_.prices_read}):** "
        f"{money(estimate_.total)}"
    ]
    if estimate_.budget_usd is not None:
        state = "over" if estimate_.over_budget else "within"
        lines[-1] += f", {state} the budget of {money(estimate_.budget_usd)}"
        if estimate_.over_budget:
            lines[-1] = ":warning: " + lines[-1]
    lines += ["", "| Layer | Monthly USD |", "| --- | ---: |"]
    lines += [f"| {layer} | {money(usd)} |" for layer, usd in estimate_.by_layer().items()]
    if against is not None:
        lines += ["", "| Change against base | Before | After | Delta |", "| --- | ---: | ---: | ---: |"]
        lines += [
            f"| {row.key} | {money(row.before)} | {money(row.after)} | {signed_money(row.delta)} |"
            for row in compare(against, estimate_)
        ]
    if estimate_.unpriced:
        lines += ["", "Not priced: " + "; ".join(estimate_.unpriced)]
    return "\n".join(lines) + "\n"
