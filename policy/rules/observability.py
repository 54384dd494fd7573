"""Observability: logs kept and encrypted, alarms that page someone, the alarms the seeds require."""

from __future__ import annotations

from functools import partial
from typing import Any

from pulumi_policy import Severity

from rules.common import Check, Report, Resource, Rule, Stack, StackReport, items

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ECS_CLUSTER = "aws:ecs/cluster:Cluster"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
CLUSTER = "aws:rds/cluster:Cluster"
REQUIRED_ALARMS = [
    {
        "label": "ALB 5xx",
        "namespace": "AWS/ApplicationELB",
        "metrics": ["HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"],
    },
    {"label": "Aurora CPU", "namespace": "AWS/RDS", "metrics": ["CPUUtilization"]},
    {"label": "DLQ not empty", "namespace": "AWS/SQS", "metrics": ["ApproximateNumberOfMessagesVisible"]},
    {"label": "queue age", "namespace": "AWS/SQS", "metrics": ["ApproximateAgeOfOldestMessage"]},
]

retention = Rule(
    name="log-retention-set",
    area="observability",
    kind="operations",
    severity=Severity.LOW,
    summary="Every log group has a retention period of at least the configured days (never 'forever', never "
    "too short to investigate).",
    seed="seed 000 observability objectives",
    checks="Checkov CKV_AWS_338 (retention), cdk-nag NIST.800.53 CloudWatchLogGroupRetentionPeriod",
    remediation="Pass retention_in_days=config.observability.log_retention_days (platform:observability."
    "logRetentionDays in Pulumi.STACK.yaml) to every aws.cloudwatch.LogGroup.",
    resource_types=(LOG_GROUP,),
    config={"minDays": {"type": "integer", "minimum": 1, "default": 7}},
)


def _retention(resource: Resource, config: dict[str, Any], report: Report) -> None:
    days = resource.get("retentionInDays")
    if not days:
        report(f"{resource.label}: no retentionInDays (kept forever)")
    elif days < config["minDays"]:
        report(f"{resource.label}: retentionInDays {days} < {config['minDays']}")


alarm_actions = Rule(
    name="alarms-have-actions",
    area="observability",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="Every metric alarm notifies someone: actions enabled, at least one alarm action.",
    seed="seed 002 observability (alarm_actions to the alerts topic)",
    checks="Checkov CKV_AWS_319",
    remediation="Set alarm_actions=[<alerts aws.sns.Topic>.arn] (and ok_actions) on every aws.cloudwatch.MetricAlarm "
    "in the observability layer; alertEmails in Pulumi.STACK.yaml subscribe to that topic.",
    resource_types=(ALARM,),
)


def _alarm_actions(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("actionsEnabled") is False or not items(resource.get("alarmActions")):
        report(f"{resource.label}: no enabled alarm action")


required_alarms = Rule(
    name="required-alarms-exist",
    area="observability",
    kind="operations",
    severity=Severity.HIGH,
    summary="The alarms the seeds require exist: ALB 5xx, Aurora CPU, dead-letter queue not empty, and age of the "
    "oldest queued message.",
    seed="seed 002 key CloudWatch alarms (ALB 5xx rate, Aurora CPU), seed 000 observability objectives",
    checks="",
    remediation="Create aws.cloudwatch.MetricAlarm resources in the observability layer for each missing metric "
    "(namespace and metric_name, or metric_queries), with alarm_actions to the alerts topic. The list is the "
    "requiredAlarms knob of policy/config/STACK.json.",
    stack=True,
    config={
        "requiredAlarms": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "namespace": {"type": "string"},
                    "metrics": {"type": "array", "items": {"type": "string"}},
                },
            },
            "default": REQUIRED_ALARMS,
        }
    },
)


def _alarm_metrics(alarm: Resource) -> set[tuple[str, str]]:
    metrics = {(str(alarm.get("namespace")), str(alarm.get("metricName")))}
    for query in items(alarm.get("metricQueries")):
        metric = query.get("metric") or {}
        metrics.add((str(metric.get("namespace")), str(metric.get("metricName"))))
    return metrics


def _required_alarms(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    present: set[tuple[str, str]] = set()
    for alarm in stack.of(ALARM):
        present |= stack.guard(partial(_alarm_metrics, alarm)) or set()
    for required in config["requiredAlarms"]:
        if not any((required["namespace"], metric) in present for metric in required["metrics"]):
            wanted = " or ".join(required["metrics"])
            report(f"no {required['label']} alarm ({required['namespace']} {wanted})", None)


container_insights = Rule(
    name="ecs-container-insights",
    area="observability",
    kind="operations",
    severity=Severity.LOW,
    summary="ECS clusters have Container Insights on.",
    seed="seed 000 observability objectives, seed 002 compute layer",
    checks="cdk-nag AwsSolutions-ECS4, Checkov CKV_AWS_65",
    remediation="Set settings=[ClusterSettingArgs(name='containerInsights', value='enhanced')] (or 'enabled') on "
    "aws.ecs.Cluster in the service layer.",
    resource_types=(ECS_CLUSTER,),
)


def _container_insights(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for setting in items(resource.get("settings")):
        if setting.get("name") == "containerInsights" and setting.get("value") in ("enabled", "enhanced"):
            return
    report(f"{resource.label}: containerInsights not enabled")


container_logging = Rule(
    name="ecs-container-logging",
    area="observability",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="Every container sends its logs somewhere (a logConfiguration with a log driver).",
    seed="seed 000 observability objectives (centralised logs)",
    checks="",
    remediation="Give each container definition logConfiguration {logDriver: 'awslogs', options: {awslogs-group: "
    "<encrypted log group>, awslogs-region, awslogs-stream-prefix}} in the service layer.",
    resource_types=(TASK_DEFINITION,),
)


def _container_logging(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for container in items(resource.json("containerDefinitions")):
        if not (container.get("logConfiguration") or {}).get("logDriver"):
            report(f"{resource.label}: container {container.get('name')} has no logConfiguration")


log_exports = Rule(
    name="aurora-log-exports",
    area="observability",
    kind="operations",
    severity=Severity.LOW,
    summary="Aurora exports its database logs to CloudWatch Logs.",
    seed="seed 000 observability objectives, seed 002 data layer",
    checks="Checkov CKV_AWS_324, cdk-nag NIST.800.53 RDSLoggingEnabled",
    remediation="Set enabled_cloudwatch_logs_exports=['postgresql'] on aws.rds.Cluster in the database layer "
    "(the logs knob of policy/config/STACK.json lists what must be exported).",
    resource_types=(CLUSTER,),
    config={"logs": {"type": "array", "items": {"type": "string"}, "default": ["postgresql"]}},
)


def _log_exports(resource: Resource, config: dict[str, Any], report: Report) -> None:
    exported = set(items(resource.get("enabledCloudwatchLogsExports")))
    engine = str(resource.get("engine") or "aurora-postgresql")
    wanted = [log for log in config["logs"] if "postgres" in engine or log != "postgresql"]
    if "mysql" in engine:
        wanted = ["error", "slowquery"]
    missing = [log for log in wanted if log not in exported]
    if missing:
        report(f"{resource.label}: does not export {', '.join(missing)}")


RULES: list[tuple[Rule, Check]] = [
    (retention, _retention),
    (alarm_actions, _alarm_actions),
    (required_alarms, _required_alarms),
    (container_insights, _container_insights),
    (container_logging, _container_logging),
    (log_exports, _log_exports),
]
