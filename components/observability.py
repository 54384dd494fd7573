"""The observability layer: log groups per service, alarms on what the other layers build, a dashboard, tracing.

Alarms take the resources they watch as inputs: each is created only when its resource is given,
so a stack without a load balancer yet simply has no load-balancer alarms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from app import contract
from app.contract import AppMetric
from components.naming import Naming, child_options
from stack_config.schema import ObservabilityConfig

MINUTE = 60
MIB = 1024 * 1024
ALB, RDS, CACHE, SQS, ECS, CONTAINER_INSIGHTS = (
    "AWS/ApplicationELB",
    "AWS/RDS",
    "AWS/ElastiCache",
    "AWS/SQS",
    "AWS/ECS",
    "ECS/ContainerInsights",
)
# Sustained for five one-minute periods: long enough to skip a blip, short enough to page early.
SUSTAINED_PERIODS = 5
# p99 latency alarms when 3 of 5 minutes are slow: a single slow minute is noise.
LATENCY_DATAPOINTS = 3
QUEUE_AGE_PERIODS = 3
EVICTIONS_PERIOD = 5 * MINUTE
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
}

Comparison = Literal[
    "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
]


@dataclass(frozen=True)
class ObservabilityArgs:
    """What the alarms and the dashboard watch; every watched resource is optional."""

    config: ObservabilityConfig
    naming: Naming
    region: str
    logs_key_arn: pulumi.Input[str]
    alerts_topic_arn: pulumi.Input[str]
    services: Sequence[str] = ("api", "worker")
    # Messaging: configured queue name -> SQS queue name (and the same for the DLQs).
    queue_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    dead_letter_queue_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Request path: `aws.lb.LoadBalancer.arn_suffix` and the API's `aws.lb.TargetGroup.arn_suffix`; with
    # blue/green, also the alternate group's, which serves production after every other deployment.
    alb_arn_suffix: pulumi.Input[str] | None = None
    target_group_arn_suffix: pulumi.Input[str] | None = None
    alternate_target_group_arn_suffix: pulumi.Input[str] | None = None
    # Compute: the ECS cluster's name, and service label ("api", "worker") -> ECS service name.
    ecs_cluster_name: pulumi.Input[str] | None = None
    ecs_service_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Data: the Aurora cluster identifier and its instances' identifiers (writer and readers).
    aurora_cluster_id: pulumi.Input[str] | None = None
    aurora_instance_ids: Sequence[pulumi.Input[str]] = ()
    # Cache: the replication group id and its member cache cluster ids (`<group>-001`, `-002`, ...).
    cache_replication_group_id: pulumi.Input[str] | None = None
    cache_member_cluster_ids: Sequence[pulumi.Input[str]] = ()


class Observability(pulumi.ComponentResource):
    """`log_groups` per service, `alarms` by label (all acting on the alerts topic), `dashboard`, `sampling_rule`."""

    log_groups: dict[str, aws.cloudwatch.LogGroup]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
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
                retention_in_days=config.log_retention_days,
                kms_key_id=args.logs_key_arn,
                tags=self._naming.tags(service, "logs"),
                opts=child_options(self),
            )
            for service in args.services
        }
        self.alarms = {}
        self._load_balancer_alarms()
        self._ecs_alarms()
        self._aurora_alarms()
        self._cache_alarms()
        self._queue_alarms()
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
                "alarm_arns": {label: alarm.arn for label, alarm in self.alarms.items()},
                "dashboard_name": self.dashboard.dashboard_name,
                "sampling_rule_arn": self.sampling_rule.arn,
            }
        )

    # --- alarms -----------------------------------------------------------------------------------

    def _alarm(
        self,
        label: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        threshold: float,
        period: int = MINUTE,
        evaluation_periods: int = SUSTAINED_PERIODS,
        statistic: str | None = "Average",
        extended_statistic: str | None = None,
        comparison: Comparison = "GreaterThanThreshold",
        datapoints_to_alarm: int | None = None,
    ) -> aws.cloudwatch.MetricAlarm:
        return self._register(
            label,
            description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dict(dimensions),
            statistic=None if extended_statistic else statistic,
            extended_statistic=extended_statistic,
            comparison_operator=comparison,
            threshold=threshold,
            period=period,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
        )

    def _math_alarm(
        self,
        label: str,
        description: str,
        queries: Sequence[aws.cloudwatch.MetricAlarmMetricQueryArgs],
        *,
        threshold: float,
        evaluation_periods: int = SUSTAINED_PERIODS,
        datapoints_to_alarm: int | None = None,
    ) -> aws.cloudwatch.MetricAlarm:
        """An alarm on a metric math expression: `queries` fetch the metrics, and the one query with
        `return_data` is what the alarm compares (CloudWatch allows 10 metrics and 10 expressions)."""
        return self._register(
            label,
            description,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            metric_queries=list(queries),
        )

    def _register(self, label: str, description: str, **metric: Any) -> aws.cloudwatch.MetricAlarm:
        """An alarm under `label` with what every alarm of the stack shares: its name, the alerts topic
        for both alarm and OK, and missing data read as healthy."""
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label}",
            name=alarm_name(self._naming, label),
            alarm_description=description,
            # No data means no traffic, no messages or no replica: nothing is wrong.
            treat_missing_data="notBreaching",
            alarm_actions=[self._args.alerts_topic_arn],
            ok_actions=[self._args.alerts_topic_arn],
            tags=self._naming.tags(label),
            opts=child_options(self),
            **metric,
        )
        self.alarms[label] = alarm
        return alarm

    def _load_balancer_alarms(self) -> None:
        args, thresholds = self._args, self._args.config.alarm_thresholds
        if args.alb_arn_suffix is None:
            return
        # ELB-generated errors are the load balancer's own: one series whichever group serves.
        self._alarm(
            "alb-5xx",
            f"The load balancer answered more than {thresholds.alb_5xx_per_minute} 5xx a minute",
            namespace=ALB,
            metric="HTTPCode_ELB_5XX_Count",
            dimensions={"LoadBalancer": args.alb_arn_suffix},
            statistic="Sum",
            threshold=thresholds.alb_5xx_per_minute,
            evaluation_periods=thresholds.alb_5xx_periods,
        )
        self._math_alarm(
            "target-5xx",
            f"The API returned more than {thresholds.target_5xx_per_minute} 5xx a minute (all its target groups)",
            self._over_target_groups("HTTPCode_Target_5XX_Count", stat="Sum", combine="SUM"),
            threshold=thresholds.target_5xx_per_minute,
            evaluation_periods=thresholds.alb_5xx_periods,
        )
        self._math_alarm(
            "target-p99-latency",
            f"p99 target response time above {thresholds.p99_latency_seconds} s in one of the API's target groups",
            self._over_target_groups("TargetResponseTime", stat="p99", combine="MAX"),
            threshold=thresholds.p99_latency_seconds,
            datapoints_to_alarm=LATENCY_DATAPOINTS,
        )

    def _target_group_dimensions(self) -> list[dict[str, pulumi.Input[str]]]:
        """The dimensions of each target group the API serves from (both, with blue/green), or of the load
        balancer as a whole when no group is given."""
        args = self._args
        balancer: dict[str, pulumi.Input[str]] = (
            {"LoadBalancer": args.alb_arn_suffix} if args.alb_arn_suffix is not None else {}
        )
        groups = [g for g in (args.target_group_arn_suffix, args.alternate_target_group_arn_suffix) if g is not None]
        return [{**balancer, "TargetGroup": group} for group in groups] or [balancer]

    def _over_target_groups(
        self, metric: str, *, stat: str, combine: Literal["SUM", "MAX"]
    ) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
        """A target-group metric over every group the API serves from, as one series.

        Blue/green swaps production between the two groups at every deployment: an alarm on one group would
        watch an idle group half the time, and deployment rollback would miss the new revision's errors.
        Each group's series is filled with 0 where it has none (the idle group; a minute without a 5xx), so
        the SUM (counts) or MAX (p99: the union's p99 is above the threshold only if one group's is) is
        defined whenever either group serves.
        """
        scopes = self._target_group_dimensions()
        fetched = [self._query(f"group{index}", ALB, metric, dims, stat=stat) for index, dims in enumerate(scopes)]
        filled = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=f"filled{index}", expression=f"FILL(group{index}, 0)", return_data=False
            )
            for index in range(len(scopes))
        ]
        ids = ", ".join(f"filled{index}" for index in range(len(scopes)))
        combined = aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id="combined", expression=f"{combine}([{ids}])", label=metric, return_data=True
        )
        return [*fetched, *filled, combined]

    def _ecs_alarms(self) -> None:
        args = self._args
        if args.ecs_cluster_name is None:
            return
        for service, service_name in args.ecs_service_names.items():
            dimensions = {"ClusterName": args.ecs_cluster_name, "ServiceName": service_name}
            # Container Insights publishes both counts; desired minus running above 0 for five minutes
            # is a service that cannot place or keep its tasks (a deployment settles well within that).
            self._math_alarm(
                f"{service}-tasks-below-desired",
                f"The {service} service runs fewer tasks than desired",
                [
                    self._query("running", CONTAINER_INSIGHTS, "RunningTaskCount", dimensions),
                    self._query("desired", CONTAINER_INSIGHTS, "DesiredTaskCount", dimensions),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="missing", expression="desired - running", label="Tasks missing", return_data=True
                    ),
                ],
                threshold=0,
            )

    @staticmethod
    def _query(
        query_id: str,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        stat: str = "Average",
    ) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
        return aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=query_id,
            return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=namespace, metric_name=metric, dimensions=dict(dimensions), period=MINUTE, stat=stat
            ),
        )

    def _aurora_alarms(self) -> None:
        args, thresholds = self._args, self._args.config.alarm_thresholds
        for index, instance_id in enumerate(args.aurora_instance_ids):
            instance = {"DBInstanceIdentifier": instance_id}
            self._alarm(
                f"aurora-{index}-cpu",
                f"Aurora instance {index}: CPU above {thresholds.aurora_cpu_percent} %"
                f" for {thresholds.aurora_cpu_minutes} minutes",
                namespace=RDS,
                metric="CPUUtilization",
                dimensions=instance,
                threshold=thresholds.aurora_cpu_percent,
                period=thresholds.aurora_cpu_minutes * MINUTE,
                evaluation_periods=1,
            )
            self._alarm(
                f"aurora-{index}-freeable-memory",
                f"Aurora instance {index}: under {thresholds.aurora_freeable_memory_mib} MiB freeable memory",
                namespace=RDS,
                metric="FreeableMemory",
                dimensions=instance,
                statistic="Minimum",
                comparison="LessThanThreshold",
                threshold=thresholds.aurora_freeable_memory_mib * MIB,
            )
            self._alarm(
                f"aurora-{index}-connections",
                f"Aurora instance {index}: more than {thresholds.aurora_connections} connections",
                namespace=RDS,
                metric="DatabaseConnections",
                dimensions=instance,
                statistic="Maximum",
                threshold=thresholds.aurora_connections,
            )
        if args.aurora_cluster_id is not None:
            self._alarm(
                "aurora-replica-lag",
                f"An Aurora reader lags the writer by more than {thresholds.aurora_replica_lag_ms} ms",
                namespace=RDS,
                metric="AuroraReplicaLagMaximum",
                dimensions={"DBClusterIdentifier": args.aurora_cluster_id},
                statistic="Maximum",
                threshold=thresholds.aurora_replica_lag_ms,
            )

    def _cache_alarms(self) -> None:
        args, thresholds = self._args, self._args.config.alarm_thresholds
        for index, cluster_id in enumerate(args.cache_member_cluster_ids):
            node = {"CacheClusterId": cluster_id}
            self._alarm(
                f"cache-{index}-cpu",
                f"Cache node {index}: engine CPU above {thresholds.redis_cpu_percent} %",
                namespace=CACHE,
                # The engine's own thread: Redis and Valkey run commands on one core.
                metric="EngineCPUUtilization",
                dimensions=node,
                threshold=thresholds.redis_cpu_percent,
            )
            self._alarm(
                f"cache-{index}-memory",
                f"Cache node {index}: memory above {thresholds.redis_memory_percent} % of maxmemory",
                namespace=CACHE,
                metric="DatabaseMemoryUsagePercentage",
                dimensions=node,
                threshold=thresholds.redis_memory_percent,
            )
            self._alarm(
                f"cache-{index}-evictions",
                f"Cache node {index}: more than {thresholds.redis_evictions} evictions in 5 minutes",
                namespace=CACHE,
                metric="Evictions",
                dimensions=node,
                statistic="Sum",
                threshold=thresholds.redis_evictions,
                period=EVICTIONS_PERIOD,
                evaluation_periods=1,
            )

    def _queue_alarms(self) -> None:
        args, thresholds = self._args, self._args.config.alarm_thresholds
        for queue, queue_name in args.queue_names.items():
            self._alarm(
                f"{queue}-oldest-message",
                f"The {queue} queue's oldest message waits over {thresholds.queue_oldest_message_seconds} s",
                namespace=SQS,
                metric="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue_name},
                statistic="Maximum",
                threshold=thresholds.queue_oldest_message_seconds,
                evaluation_periods=QUEUE_AGE_PERIODS,
            )
        for queue, queue_name in args.dead_letter_queue_names.items():
            self._alarm(
                f"{queue}-dlq-not-empty",
                f"A message of the {queue} queue failed processing and waits in its dead-letter queue",
                namespace=SQS,
                metric="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue_name},
                statistic="Maximum",
                threshold=0,
                evaluation_periods=1,
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
        if args.alb_arn_suffix is not None:
            balancer = ["LoadBalancer", args.alb_arn_suffix]
            # Per target group too: with blue/green, which group serves production, and the shift itself.
            per_group = [
                [ALB, "RequestCount", *[part for pair in dims.items() for part in pair], {"label": f"group {index}"}]
                for index, dims in enumerate(self._target_group_dimensions())
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
        if args.ecs_cluster_name is not None and args.ecs_service_names:
            services = [
                ["ClusterName", args.ecs_cluster_name, "ServiceName", name] for name in args.ecs_service_names.values()
            ]
            widgets += [
                self._widget("Service CPU (%)", [[ECS, "CPUUtilization", *dims] for dims in services]),
                self._widget("Service memory (%)", [[ECS, "MemoryUtilization", *dims] for dims in services]),
            ]
        queues = {**args.queue_names, **{f"{k}-dlq": v for k, v in args.dead_letter_queue_names.items()}}
        if queues:
            widgets += [
                self._widget(
                    "Queue depth (visible messages)",
                    [[SQS, "ApproximateNumberOfMessagesVisible", "QueueName", name] for name in queues.values()],
                    stat="Maximum",
                ),
                self._widget(
                    "Queue age of oldest message (s)",
                    [[SQS, "ApproximateAgeOfOldestMessage", "QueueName", name] for name in args.queue_names.values()],
                    stat="Maximum",
                ),
            ]
        if args.aurora_instance_ids:
            instances = [["DBInstanceIdentifier", instance] for instance in args.aurora_instance_ids]
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
        if args.aurora_cluster_id is not None:
            widgets.append(
                self._widget(
                    "Aurora replica lag (ms)",
                    [[RDS, "AuroraReplicaLagMaximum", "DBClusterIdentifier", args.aurora_cluster_id]],
                    stat="Maximum",
                )
            )
        if args.cache_member_cluster_ids:
            nodes = [["CacheClusterId", node] for node in args.cache_member_cluster_ids]
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
        return widgets


def alarm_name(naming: Naming, label: str) -> str:
    """An alarm's name, known before the alarm exists: ECS deployment rollback can name `target-5xx`
    while the alarm itself waits for the service's dimensions."""
    return naming.name(label)


def cache_member_cluster_ids(replication_group_id: pulumi.Input[str], nodes: int) -> list[pulumi.Output[str]]:
    """A cluster-mode-disabled replication group's node ids, `<group>-001` to `<group>-00N`, known at plan time."""
    group = pulumi.Output.from_input(replication_group_id)
    return [pulumi.Output.format("{0}-{1:03d}", group, number) for number in range(1, nodes + 1)]
