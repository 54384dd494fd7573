"""CloudWatch alarms as every layer of the stack raises them, and the metrics each layer offers to watch.

A layer's alarms live with the layer whose metric they watch (the database's with the database, the
queues' with messaging); this module holds what they share: the name, the alerts topic for alarm and
OK, missing data read as healthy, and the move from the observability layer that used to own them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.naming import Naming, child_options
from stack_config.schema import AlarmThresholds

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
# Every alarm was once a child of this component (`observability-<label>`): the alias moves it to the
# layer that owns its metric instead of deleting one alarm and creating another.
PREVIOUS_OWNER_TYPE, PREVIOUS_OWNER_NAME = "platform:observability:Observability", "observability"

Comparison = Literal[
    "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
]


@dataclass(frozen=True)
class Alerting:
    """Where a layer's alarms go and what they compare against: the alerts topic and the configured thresholds."""

    topic_arn: pulumi.Input[str]
    thresholds: AlarmThresholds


# --- what each layer offers to watch (its alarms and the dashboard read the same dimensions) ---------


@dataclass(frozen=True)
class RequestPathMetrics:
    """The ALB's `arn_suffix` and the API's target groups' (both, with blue/green: after every other
    deployment the alternate group serves production)."""

    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: Sequence[pulumi.Input[str]] = ()

    def target_group_dimensions(self) -> list[dict[str, pulumi.Input[str]]]:
        """The dimensions of each target group the API serves from, or of the ALB as a whole without groups."""
        balancer: dict[str, pulumi.Input[str]] = {"LoadBalancer": self.alb_arn_suffix}
        return [{**balancer, "TargetGroup": group} for group in self.target_group_arn_suffixes] or [balancer]


@dataclass(frozen=True)
class ServiceMetrics:
    """The ECS cluster's name and service label ("api", "worker") -> ECS service name."""

    cluster_name: pulumi.Input[str]
    service_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class AuroraMetrics:
    """The Aurora cluster identifier and its instances' identifiers, writer first."""

    cluster_id: pulumi.Input[str] | None = None
    instance_ids: Sequence[pulumi.Input[str]] = ()


@dataclass(frozen=True)
class CacheMetrics:
    """The replication group's member cache cluster ids (`<group>-001`, `-002`, ...)."""

    member_cluster_ids: Sequence[pulumi.Input[str]] = ()


@dataclass(frozen=True)
class QueueMetrics:
    """Configured queue name -> SQS queue name, for the work queues and their dead-letter queues."""

    queue_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    dead_letter_queue_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


# --- raising alarms -----------------------------------------------------------------------------------


class AlarmSet:
    """The alarms one component raises, as its children, by stack-wide label (`alarms["alb-5xx"]`)."""

    def __init__(self, owner: pulumi.Resource, owner_name: str, naming: Naming, alerting: Alerting) -> None:
        self._owner, self._owner_name, self._naming, self._alerting = owner, owner_name, naming, alerting
        self.thresholds = alerting.thresholds
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}

    def metric(
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

    def math(
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
        topic = self._alerting.topic_arn
        # The logical name is the owner's (`database-aurora-0-cpu`), without repeating it (`api-tasks-...`).
        local = label.removeprefix(f"{self._owner_name}-")
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._owner_name}-{local}",
            name=alarm_name(self._naming, label),
            alarm_description=description,
            # No data means no traffic, no messages or no replica: nothing is wrong.
            treat_missing_data="notBreaching",
            alarm_actions=[topic],
            ok_actions=[topic],
            tags=self._naming.tags(label),
            opts=child_options(self._owner, aliases=[previously_in_observability(label)]),
            **metric,
        )
        self.alarms[label] = alarm
        return alarm


def query(
    query_id: str,
    namespace: str,
    metric: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    stat: str = "Average",
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """One metric a metric math alarm fetches (not compared on its own)."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dict(dimensions), period=MINUTE, stat=stat
        ),
    )


def previously_in_observability(label: str) -> pulumi.Alias:
    """Where the alarm `label` lived before each layer owned its alarms: `observability-<label>` under the stack's
    observability component (whose URN is spelt out: that component is built after the layers it watches)."""
    parent = (
        f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::pulumi:pulumi:Stack"
        f"${PREVIOUS_OWNER_TYPE}::{PREVIOUS_OWNER_NAME}"
    )
    return pulumi.Alias(name=f"{PREVIOUS_OWNER_NAME}-{label}", parent=parent)


def alarm_name(naming: Naming, label: str) -> str:
    """An alarm's physical name, the same whichever layer raises it (ECS rollback and runbooks name them)."""
    return naming.name(label)
