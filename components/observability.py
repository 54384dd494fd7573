"""The observability layer: log groups per service, a dashboard of what the other layers offer to watch, tracing.

Each layer raises its own alarms (`components/alarms.py`); the dashboard reads the same metrics, from
the layers given: a stack without a load balancer yet simply has no request-path widgets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from app import contract
from app.contract import AppMetric
from components.alarms import (
    ALB,
    CACHE,
    ECS,
    MINUTE,
    RDS,
    SQS,
    AuroraMetrics,
    CacheMetrics,
    QueueMetrics,
    RequestPathMetrics,
    ServiceMetrics,
)
from components.naming import LogPolicy, Naming, child_options
from components.slo import Indicator, dashboard_row, indicators
from stack_config.schema import ObservabilityConfig

if TYPE_CHECKING:
    from components.cache import Cache
    from components.context import StackContext
    from components.database import Database
    from components.ecs import Cluster
    from components.load_balancer import LoadBalancer
    from components.messaging import Messaging

SAMPLING_RULE_PRIORITY = 1000
SAMPLING_RESERVOIR_PER_SECOND = 1
XRAY_RULE_NAME_MAX = 32


@dataclass(frozen=True)
class AppMetricLine:
    """The lines of a dashboard widget on one of the app's own metrics: one per dimension value set found.

    The metric comes from `app.contract.APP_METRICS`, the list the app's emitter publishes from, and the
    search names its exact dimension set: CloudWatch files a metric under name and dimensions together.
    """

    metric: AppMetric
    statistic: str
    label: str
    # Dimension values to keep (a breaker's `state` "open"); every other value set is a line of its own.
    where: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        undeclared = sorted(set(self.where) - set(self.metric.dimensions))
        if undeclared:
            raise ValueError(f"{self.metric.name} has no dimension {', '.join(undeclared)}")

    def search(self, namespace: str) -> str:
        schema = ",".join([json.dumps(namespace), *self.metric.dimensions])
        terms = " ".join([f'MetricName="{self.metric.name}"', *(f'{k}="{v}"' for k, v in self.where.items())])
        return f"SEARCH('{{{schema}}} {terms}', '{self.statistic}', {MINUTE})"


APP_WIDGETS: dict[str, tuple[AppMetricLine, ...]] = {
    "App: circuit breaker opens and worker retries": (
        AppMetricLine(contract.METRIC_BREAKER_TRANSITIONS, "Sum", "Breaker opened", {"state": contract.BREAKER_OPENED}),
        AppMetricLine(contract.METRIC_MESSAGES_RETRIED, "Sum", "Messages retried"),
    ),
    "App: API 5xx by route": (AppMetricLine(contract.METRIC_REQUEST_ERRORS_5XX, "Sum", "5xx"),),
    "App: worker messages": (
        AppMetricLine(contract.METRIC_MESSAGES_PROCESSED, "Sum", "Processed"),
        AppMetricLine(contract.METRIC_MESSAGES_FAILED, "Sum", "Failed"),
        AppMetricLine(contract.METRIC_DUPLICATES_SKIPPED, "Sum", "Duplicates skipped"),
    ),
    # A line per dependency: which compartment filled (a slow dependency, or one sized too small for its load).
    "App: calls shed by bulkheads": (AppMetricLine(contract.METRIC_BULKHEAD_REJECTED, "Sum", "Shed"),),
}


@dataclass(frozen=True)
class ObservabilityArgs:
    """The services' log groups, and what the dashboard shows: each layer's metrics, every one optional."""

    config: ObservabilityConfig
    naming: Naming
    region: str
    logs: LogPolicy
    services: Sequence[str] = ("api", "worker")
    # `load_balancer.metrics`, the ECS services', `messaging.metrics`, `database.metrics`, `cache.metrics`.
    request_path: RequestPathMetrics | None = None
    compute: ServiceMetrics | None = None
    queues: QueueMetrics | None = None
    aurora: AuroraMetrics | None = None
    cache: CacheMetrics | None = None
    # A row per service level objective: its budget left over the window and its burn rate.
    slos: Sequence[Indicator] = ()
    slo_window_days: int = 30

    @classmethod
    def for_stack(
        cls,
        stack: StackContext,
        services: Sequence[str],
        watching: tuple[LoadBalancer, Cluster, Messaging, Database, Cache],
    ) -> ObservabilityArgs:
        """Log groups for `services` (ECS names each service by its label), the dashboard over the layers watched."""
        load_balancer, cluster, messaging, database, cache = watching
        return cls(
            stack.config.observability,
            stack.naming,
            stack.config.region,
            stack.logs,
            services,
            request_path=load_balancer.metrics,
            compute=ServiceMetrics(cluster.cluster.name, {service: service for service in services}),
            queues=messaging.metrics,
            aurora=database.metrics,
            cache=cache.metrics,
            slos=indicators(stack.config.slos, load_balancer.metrics, stack.config.observability.app_metrics_namespace),
            slo_window_days=stack.config.slos.window_days,
        )


class Observability(pulumi.ComponentResource):
    """`log_groups` per service, `dashboard`, `sampling_rule`."""

    log_groups: dict[str, aws.cloudwatch.LogGroup]
    dashboard: aws.cloudwatch.Dashboard
    sampling_rule: aws.xray.SamplingRule

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:observability:Observability", name, None, opts)
        self._name, self._naming, self._args = name, args.naming, args
        config = args.config
        self.log_groups = {
            service: aws.cloudwatch.LogGroup(
                f"{name}-{service}-logs",
                name=self._naming.log_group(service),
                retention_in_days=args.logs.retention_days,
                kms_key_id=args.logs.key_arn,
                tags=self._naming.tags(service, "logs"),
                opts=child_options(self),
            )
            for service in args.services
        }
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=self._naming.name("overview"),
            dashboard_body=pulumi.Output.json_dumps({"widgets": self._widgets()}),
            opts=child_options(self),
        )
        self.sampling_rule = aws.xray.SamplingRule(
            f"{name}-sampling",
            rule_name=self._naming.name("default")[:XRAY_RULE_NAME_MAX],
            priority=SAMPLING_RULE_PRIORITY,
            version=1,
            reservoir_size=SAMPLING_RESERVOIR_PER_SECOND,
            fixed_rate=config.tracing_sample_rate,
            service_name="*",
            service_type="*",
            host="*",
            http_method="*",
            url_path="*",
            resource_arn="*",
            tags=self._naming.tags("sampling"),
            opts=child_options(self),
        )
        self.register_outputs(
            {
                "log_group_names": {service: group.name for service, group in self.log_groups.items()},
                "dashboard_name": self.dashboard.dashboard_name,
                "sampling_rule_arn": self.sampling_rule.arn,
            }
        )

    # --- dashboard --------------------------------------------------------------------------------

    def _widget(self, title: str, metrics: list[list[Any]], stat: str = "Average") -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": self._args.region,
                "view": "timeSeries",
                "stacked": False,
                "period": MINUTE,
                "stat": stat,
                "metrics": metrics,
            },
        }

    def _widgets(self) -> list[dict[str, Any]]:
        args = self._args
        widgets: list[dict[str, Any]] = []
        if args.request_path is not None:
            balancer = ["LoadBalancer", args.request_path.alb_arn_suffix]
            # Per target group too: with blue/green, which group serves production, and the shift itself.
            per_group = [
                [ALB, "RequestCount", *[part for pair in dims.items() for part in pair], {"label": f"group {index}"}]
                for index, dims in enumerate(args.request_path.target_group_dimensions())
                if "TargetGroup" in dims
            ]
            widgets += [
                self._widget("Traffic (requests)", [[ALB, "RequestCount", *balancer], *per_group], stat="Sum"),
                self._widget(
                    "Latency p50 / p95 / p99 (s)",
                    [
                        [ALB, "TargetResponseTime", *balancer, {"stat": stat, "label": stat}]
                        for stat in ("p50", "p95", "p99")
                    ],
                ),
                self._widget(
                    "4xx / 5xx",
                    [
                        [ALB, metric, *balancer]
                        for metric in (
                            "HTTPCode_Target_4XX_Count",
                            "HTTPCode_Target_5XX_Count",
                            "HTTPCode_ELB_4XX_Count",
                            "HTTPCode_ELB_5XX_Count",
                        )
                    ],
                    stat="Sum",
                ),
            ]
        if args.compute is not None and args.compute.service_names:
            cluster = args.compute.cluster_name
            services = [["ClusterName", cluster, "ServiceName", name] for name in args.compute.service_names.values()]
            widgets += [
                self._widget("Service CPU (%)", [[ECS, "CPUUtilization", *dims] for dims in services]),
                self._widget("Service memory (%)", [[ECS, "MemoryUtilization", *dims] for dims in services]),
            ]
        work = args.queues.queue_names if args.queues else {}
        dead_letters = args.queues.dead_letter_queue_names if args.queues else {}
        queues = {**work, **{f"{k}-dlq": v for k, v in dead_letters.items()}}
        if queues:
            widgets += [
                self._widget(
                    "Queue depth (visible messages)",
                    [[SQS, "ApproximateNumberOfMessagesVisible", "QueueName", name] for name in queues.values()],
                    stat="Maximum",
                ),
                self._widget(
                    "Queue age of oldest message (s)",
                    [[SQS, "ApproximateAgeOfOldestMessage", "QueueName", name] for name in work.values()],
                    stat="Maximum",
                ),
            ]
        aurora = args.aurora or AuroraMetrics()
        if aurora.instance_ids:
            instances = [["DBInstanceIdentifier", instance] for instance in aurora.instance_ids]
            widgets += [
                self._widget("Aurora CPU (%)", [[RDS, "CPUUtilization", *dims] for dims in instances]),
                self._widget(
                    "Aurora connections and freeable memory",
                    [
                        *[[RDS, "DatabaseConnections", *dims] for dims in instances],
                        *[[RDS, "FreeableMemory", *dims, {"yAxis": "right"}] for dims in instances],
                    ],
                ),
            ]
        if aurora.cluster_id is not None:
            widgets.append(
                self._widget(
                    "Aurora replica lag (ms)",
                    [[RDS, "AuroraReplicaLagMaximum", "DBClusterIdentifier", aurora.cluster_id]],
                    stat="Maximum",
                )
            )
        if args.cache is not None and args.cache.member_cluster_ids:
            nodes = [["CacheClusterId", node] for node in args.cache.member_cluster_ids]
            widgets += [
                self._widget(
                    "Cache engine CPU and memory (%)",
                    [
                        *[[CACHE, "EngineCPUUtilization", *dims] for dims in nodes],
                        *[[CACHE, "DatabaseMemoryUsagePercentage", *dims] for dims in nodes],
                    ],
                ),
                self._widget("Cache evictions", [[CACHE, "Evictions", *dims] for dims in nodes], stat="Sum"),
            ]
        namespace = args.config.app_metrics_namespace
        for title, lines in APP_WIDGETS.items():
            metrics = [
                [{"expression": line.search(namespace), "id": f"app{index}", "label": line.label}]
                for index, line in enumerate(lines)
            ]
            widgets.append(self._widget(title, metrics, stat=lines[0].statistic))
        for indicator in args.slos:
            widgets += dashboard_row(indicator, args.region, args.slo_window_days)
        return widgets
