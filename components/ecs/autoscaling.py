"""How a Fargate service scales: target tracking on CPU and memory, on ALB requests per task over every
target group the service serves from, or on the queue backlog per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.load_balancer import LoadBalancer
from components.naming import child_options
from stack_config.schema import ServiceConfig

TrackingConfiguration = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs
TrackedMetric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricArgs


@dataclass(frozen=True)
class ScaledService:
    """The service autoscaling adjusts, and what its load is measured by (requests through `load_balancer`, or
    the backlog of `backlog_queue_name`; CPU and memory whenever there is no queue)."""

    name: str
    service: aws.ecs.Service
    cluster_name: pulumi.Input[str]
    config: ServiceConfig
    load_balancer: LoadBalancer | None = None
    backlog_queue_name: pulumi.Input[str] | None = None


def autoscale(owner: pulumi.Resource, name: str, scaled: ScaledService) -> aws.appautoscaling.Target:
    """The scalable target between the config's min and max count, and a target tracking policy per load."""
    config = scaled.config
    target = aws.appautoscaling.Target(
        f"{name}-scaling",
        service_namespace="ecs",
        scalable_dimension="ecs:service:DesiredCount",
        resource_id=pulumi.Output.format("service/{0}/{1}", scaled.cluster_name, scaled.service.name),
        min_capacity=config.min_count,
        max_capacity=config.max_count,
        opts=child_options(owner),
    )
    scaling = config.autoscaling
    policies: dict[str, TrackingConfiguration] = {}
    if scaled.backlog_queue_name is None:
        policies["cpu"] = _tracking(config, scaling.cpu_target_percent, "ECSServiceAverageCPUUtilization")
        policies["memory"] = _tracking(config, scaling.memory_target_percent, "ECSServiceAverageMemoryUtilization")
        if scaled.load_balancer is not None:
            policies["requests"] = _request_tracking(scaled, scaled.load_balancer)
    else:
        policies["backlog"] = _backlog_tracking(scaled, scaled.backlog_queue_name)
    for label, configuration in policies.items():
        aws.appautoscaling.Policy(
            f"{name}-scale-on-{label}",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=configuration,
            opts=child_options(owner),
        )
    return target


def _tracking(config: ServiceConfig, target_value: float, metric: str) -> TrackingConfiguration:
    scaling = config.autoscaling
    return TrackingConfiguration(
        target_value=target_value,
        predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
            predefined_metric_type=metric
        ),
        scale_out_cooldown=scaling.scale_out_cooldown_seconds,
        scale_in_cooldown=scaling.scale_in_cooldown_seconds,
    )


def _request_tracking(scaled: ScaledService, balancer: LoadBalancer) -> TrackingConfiguration:
    """ALB requests per running task, summed over every target group of the service.

    The predefined ALBRequestCountPerTarget watches one group; after a blue/green swap production traffic
    reaches the other one, and the policy would see an idle group. A group without requests publishes no
    data points, so each is FILLed with 0 before the sum.
    """
    groups = {f"requests_{index}": group.arn_suffix for index, group in enumerate(balancer.target_groups)}
    requests = [
        _metric(
            metric_id,
            f"ALB requests ({metric_id})",
            namespace="AWS/ApplicationELB",
            name="RequestCount",
            statistic="Sum",
            dimensions={"LoadBalancer": balancer.alb.arn_suffix, "TargetGroup": suffix},
        )
        for metric_id, suffix in groups.items()
    ]
    total = " + ".join(f"FILL({metric_id}, 0)" for metric_id in groups)
    return _per_task_tracking(
        scaled, scaled.config.autoscaling.requests_per_target, requests, f"({total})", "requests_per_task"
    )


def _backlog_tracking(scaled: ScaledService, queue_name: pulumi.Input[str]) -> TrackingConfiguration:
    """Visible messages divided by running tasks, through metric math: the backlog each task faces."""
    visible = _metric(
        "visible",
        "Messages visible",
        namespace="AWS/SQS",
        name="ApproximateNumberOfMessagesVisible",
        statistic="Sum",
        dimensions={"QueueName": queue_name},
    )
    return _per_task_tracking(
        scaled, scaled.config.autoscaling.backlog_per_task, [visible], "visible", "backlog_per_task"
    )


def _per_task_tracking(
    scaled: ScaledService,
    target_value: float,
    load: Sequence[TrackedMetric],
    load_expression: str,
    result_id: str,
) -> TrackingConfiguration:
    """Target tracking on `load_expression` divided by the service's running tasks (Container Insights)."""
    scaling, spec = scaled.config.autoscaling, aws.appautoscaling
    tasks = _metric(
        "tasks",
        "Running tasks",
        namespace="ECS/ContainerInsights",
        name="RunningTaskCount",
        statistic="Average",
        dimensions={"ClusterName": scaled.cluster_name, "ServiceName": scaled.name},
    )
    per_task = TrackedMetric(
        id=result_id,
        label=result_id.replace("_", " ").capitalize(),
        expression=f"{load_expression} / tasks",
        return_data=True,
    )
    return TrackingConfiguration(
        target_value=target_value,
        customized_metric_specification=spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
            metrics=[*load, tasks, per_task]
        ),
        scale_out_cooldown=scaling.scale_out_cooldown_seconds,
        scale_in_cooldown=scaling.scale_in_cooldown_seconds,
    )


def _metric(
    metric_id: str,
    label: str,
    *,
    namespace: str,
    name: str,
    statistic: str,
    dimensions: Mapping[str, pulumi.Input[str]],
) -> TrackedMetric:
    """One CloudWatch metric a target tracking policy's metric math reads (not returned on its own)."""
    spec = aws.appautoscaling
    stat = spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatArgs
    named = spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs
    dimension = spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs  # noqa: E501
    return TrackedMetric(
        id=metric_id,
        label=label,
        return_data=False,
        metric_stat=stat(
            stat=statistic,
            metric=named(
                namespace=namespace,
                metric_name=name,
                dimensions=[dimension(name=key, value=value) for key, value in dimensions.items()],
            ),
        ),
    )
