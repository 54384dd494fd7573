"""Observability: logs kept and encrypted, alarms that page someone, the alarms the seeds require."""

from __future__ import annotations

from functools import partial
from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, Stack, StackReport, is_map, items, statements

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
ECS_CLUSTER = "aws:ecs/cluster:Cluster"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_PARAMETERS = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
S3_LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"
# log_statement values that record DDL (CREATE, ALTER, DROP, GRANT, REVOKE, role changes): ddl and everything above.
DDL_LOG_STATEMENTS = ("ddl", "mod", "all")
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


@Rule(
    name="log-retention-set",
    area="observability",
    kind="operations",
    severity=Severity.LOW,
    summary="Every log group has a retention period of at least the configured days (never 'forever', never "
    "too short to investigate): minDays is 365 in prod, for flow logs, WAF, ECS Exec audit, database, cache, API "
    "and worker logs alike (issue 17), 7 in staging.",
    seed="seed 000 observability objectives",
    checks="Checkov CKV_AWS_338 (retention), cdk-nag NIST.800.53 CloudWatchLogGroupRetentionPeriod",
    remediation="Pass retention_in_days=config.observability.log_retention_days (platform:observability."
    "logRetentionDays in Pulumi.STACK.yaml) to every aws.cloudwatch.LogGroup.",
    resource_types=(LOG_GROUP,),
    config={"minDays": {"type": "integer", "minimum": 1, "default": 7}},
)
def retention(resource: Resource, config: dict[str, Any], report: Report) -> None:
    days = resource.get("retentionInDays")
    if not days:
        report(f"{resource.label}: no retentionInDays (kept forever)")
    elif days < config["minDays"]:
        report(f"{resource.label}: retentionInDays {days} < {config['minDays']}")


@Rule(
    name="alarms-have-actions",
    area="observability",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="Every metric and composite alarm notifies someone: actions enabled, at least one alarm action, or "
    "(a metric alarm) named in the rule of a composite alarm that does.",
    seed="seed 002 observability (alarm_actions to the alerts topic)",
    checks="Checkov CKV_AWS_319",
    remediation="Set alarm_actions=[<alerts aws.sns.Topic>.arn] (and ok_actions) on every aws.cloudwatch.MetricAlarm "
    "in the observability layer, or name it in an aws.cloudwatch.CompositeAlarm's alarm_rule that has them; "
    "alertEmails in Pulumi.STACK.yaml subscribe to that topic.",
    stack=True,
)
def alarm_actions(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def notifies(alarm: Resource) -> bool:
        return alarm.get("actionsEnabled") is not False and bool(items(alarm.get("alarmActions")))

    notifying_rules: list[str] = []
    for composite in stack.of(COMPOSITE_ALARM):
        # Unknown (preview): `guard` records it and answers None, neither a pass nor a violation.
        verdict = stack.guard(partial(notifies, composite))
        if verdict:
            notifying_rules.append(str(stack.guard(partial(composite.get, "alarmRule")) or ""))
        elif verdict is False:
            report(f"{composite.label}: no enabled alarm action", composite.urn)
    for alarm in stack.of(ALARM):
        if stack.guard(partial(notifies, alarm)) is not False:
            continue
        name = stack.guard(partial(alarm.get, "name"))
        if not (name and any(f'ALARM("{name}")' in rule for rule in notifying_rules)):
            report(f"{alarm.label}: no enabled alarm action, and no notifying composite alarm names it", alarm.urn)


def _alarm_metrics(alarm: Resource) -> set[tuple[str, str]]:
    metrics = {(str(alarm.get("namespace")), str(alarm.get("metricName")))}
    for query in items(alarm.get("metricQueries")):
        metric = query.get("metric") or {}
        metrics.add((str(metric.get("namespace")), str(metric.get("metricName"))))
    return metrics


@Rule(
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
def required_alarms(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    present: set[tuple[str, str]] = set()
    for alarm in stack.of(ALARM):
        present |= stack.guard(partial(_alarm_metrics, alarm)) or set()
    for required in config["requiredAlarms"]:
        if not any((required["namespace"], metric) in present for metric in required["metrics"]):
            wanted = " or ".join(required["metrics"])
            report(f"no {required['label']} alarm ({required['namespace']} {wanted})", None)


@Rule(
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
def container_insights(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for setting in items(resource.get("settings")):
        if setting.get("name") == "containerInsights" and setting.get("value") in ("enabled", "enhanced"):
            return
    report(f"{resource.label}: containerInsights not enabled")


@Rule(
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
def container_logging(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for container in items(resource.json("containerDefinitions")):
        if not (container.get("logConfiguration") or {}).get("logDriver"):
            report(f"{resource.label}: container {container.get('name')} has no logConfiguration")


@Rule(
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
def log_exports(resource: Resource, config: dict[str, Any], report: Report) -> None:
    exported = set(items(resource.get("enabledCloudwatchLogsExports")))
    engine = str(resource.get("engine") or "aurora-postgresql")
    wanted = [log for log in config["logs"] if "postgres" in engine or log != "postgresql"]
    if "mysql" in engine:
        wanted = ["error", "slowquery"]
    missing = [log for log in wanted if log not in exported]
    if missing:
        report(f"{resource.label}: does not export {', '.join(missing)}")


def _parameters(group: Resource) -> dict[str, str]:
    return {
        str(parameter.get("name")).lower(): str(parameter.get("value") or "").lower()
        for parameter in items(group.get("parameters"))
    }


def _logs_ddl(parameters: dict[str, str]) -> bool:
    """log_statement ddl (or more), or pgaudit loaded and logging its ddl and role classes."""
    if parameters.get("log_statement") in DDL_LOG_STATEMENTS:
        return True
    classes = {c.strip().lstrip("+") for c in parameters.get("pgaudit.log", "").split(",")}
    loaded = "pgaudit" in {lib.strip() for lib in parameters.get("shared_preload_libraries", "").split(",")}
    return loaded and ("all" in classes or {"ddl", "role"} <= classes)


@Rule(
    name="aurora-audit-logging",
    area="observability",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Aurora PostgreSQL logs schema and role changes (log_statement ddl, or pgaudit loaded with its ddl and "
    "role classes) in its cluster parameter group, into the postgresql log it exports (issue 17).",
    seed="seed 000 security objectives (audit trail)",
    checks="AWS Security Hub RDS.36 (log exports), CIS PostgreSQL 3.1.x (logging); Checkov has no equivalent",
    remediation="Add ('log_statement', 'ddl') to the aws.rds.ClusterParameterGroup of the database layer (or load "
    "pgaudit with pgaudit.log 'ddl,role' and CREATE EXTENSION pgaudit), and export 'postgresql' logs.",
    stack=True,
)
def aurora_audit_logging(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(cluster: Resource) -> None:
        if "postgres" not in str(cluster.get("engine") or ""):
            return
        groups = stack.deps(cluster, "dbClusterParameterGroupName", CLUSTER_PARAMETERS)
        if not groups:
            report(f"{cluster.label}: the default parameter group logs no DDL (log_statement none)", cluster.urn)
        for group in groups:
            if not _logs_ddl(_parameters(group)):
                report(f"{group.label}: neither log_statement ddl nor pgaudit ddl,role", cluster.urn)

    stack.check_each(stack.of(CLUSTER), check)


def _grants_access_logging(policy: Resource) -> bool:
    """A statement lets S3 server access logging write, scoped by aws:SourceAccount and aws:SourceArn."""
    for statement in statements(policy.json("policy")):
        principal: Any = statement.get("Principal") or {}
        services = items(principal.get("Service")) if is_map(principal) else []
        if statement.get("Effect") != "Allow" or S3_LOG_DELIVERY_SERVICE not in services:
            continue
        if "s3:PutObject" not in items(statement.get("Action")):
            continue
        keys = {key.lower() for values in (statement.get("Condition") or {}).values() for key in values}
        if {"aws:sourceaccount", "aws:sourcearn"} <= keys:
            return True
    return False


@Rule(
    name="s3-access-logging",
    area="observability",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Every bucket but the log bucket records its requests (reads, writes, deletes) with S3 server access "
    "logging to another bucket under a prefix, whose policy admits logging.s3.amazonaws.com scoped by "
    "aws:SourceAccount and aws:SourceArn (issue 17).",
    seed="seed 000 security objectives (audit trail)",
    checks="Checkov CKV_AWS_18, cdk-nag AwsSolutions-S1, AWS Security Hub S3.9",
    remediation="Add aws.s3.BucketLogging(bucket=<bucket>.id, target_bucket=<logs bucket>.id, target_prefix="
    "'s3-access/<bucket>/') in the storage layer, and a statement in the logs bucket's policy: Allow "
    "logging.s3.amazonaws.com s3:PutObject on the prefix, StringEquals aws:SourceAccount, ArnLike aws:SourceArn.",
    stack=True,
)
def s3_access_logging(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    loggings = stack.of(BUCKET_LOGGING)
    targets = {target.urn for logging in loggings for target in stack.deps(logging, "targetBucket", BUCKET)}

    def check(bucket: Resource) -> None:
        mine = stack.referrers(bucket, "bucket", BUCKET_LOGGING)
        if not mine and bucket.urn not in targets:
            report(f"{bucket.label}: no server access logging", bucket.urn)
        for logging in mine:
            for target in stack.deps(logging, "targetBucket", BUCKET):
                if target.urn == bucket.urn:
                    report(f"{bucket.label}: logs into itself (each log delivery would log again)", bucket.urn)
                    continue
                if not str(logging.get("targetPrefix") or ""):
                    report(f"{bucket.label}: server access logs have no prefix of their own", bucket.urn)
                policies = stack.referrers(target, "bucket", BUCKET_POLICY)
                if not any(_grants_access_logging(policy) for policy in policies):
                    report(
                        f"{target.label}: its policy does not admit {S3_LOG_DELIVERY_SERVICE} scoped by "
                        "aws:SourceAccount and aws:SourceArn",
                        bucket.urn,
                    )

    stack.check_each(stack.of(BUCKET), check)


@Rule(
    name="ecs-exec-encrypted",
    area="observability",
    kind="security",
    severity=Severity.MEDIUM,
    summary="ECS Exec sessions are encrypted with a customer-managed KMS key of their own (the cluster's "
    "executeCommandConfiguration.kmsKeyId): every session is a KMS call in CloudTrail (issue 17).",
    seed="seed 000 security objectives (audit trail, least privilege)",
    checks="Checkov CKV_AWS_224",
    remediation="Create an aws.kms.Key for ECS Exec in the ECS cluster component and set configuration="
    "ClusterConfigurationArgs(execute_command_configuration=...(kms_key_id=<key>.arn, logging='OVERRIDE', ...)); "
    "grant kms:Decrypt to the task roles with ECS Exec on and kms:GenerateDataKey to the operator role.",
    stack=True,
)
def ecs_exec_encrypted(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(cluster: Resource) -> None:
        exec_config = cluster.get("configuration", "executeCommandConfiguration") or {}
        if not exec_config.get("kmsKeyId"):
            report(f"{cluster.label}: ECS Exec sessions use no KMS key of their own", cluster.urn)
            return
        for key in stack.deps(cluster, "configuration", KMS_KEY):
            shared = [
                other.label
                for other in stack.by_urn.values()
                if other.urn != cluster.urn and _encrypts_with(stack, other, key)
            ]
            if shared:
                report(f"{cluster.label}: the exec key also encrypts {', '.join(sorted(shared))}", cluster.urn)

    stack.check_each(stack.of(ECS_CLUSTER), check)


# The properties resources name the key that encrypts them by.
KEY_PROPERTIES = ("kmsKeyId", "kmsMasterKeyId", "kmsKeyArn", "kmsMasterKeyArn")


def _encrypts_with(stack: Stack, resource: Resource, key: Resource) -> bool:
    return any(key in stack.deps(resource, prop, KMS_KEY) for prop in KEY_PROPERTIES)
