"""Recovery: backups kept long enough, every stateful resource in a backup plan, copies in a second region."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, Stack, StackReport, items

CLUSTER = "aws:rds/cluster:Cluster"
DB_INSTANCE = "aws:rds/instance:Instance"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
STATEFUL_TYPES = [CLUSTER, DB_INSTANCE, "aws:dynamodb/table:Table", "aws:efs/fileSystem:FileSystem"]


@Rule(
    name="aurora-backup-retention",
    area="recovery",
    kind="recovery",
    severity=Severity.HIGH,
    summary="Aurora keeps automated backups for at least the configured number of days.",
    seed="seed 000 disaster recovery, seed 002 data layer (point-in-time recovery)",
    checks="Checkov CKV_AWS_133",
    remediation="Set platform:database.backupRetentionDays in Pulumi.STACK.yaml to at least minDays of "
    "policy/config/STACK.json (prod: 7); the database layer passes it as backup_retention_period.",
    resource_types=(CLUSTER, DB_INSTANCE),
    config={"minDays": {"type": "integer", "minimum": 1, "maximum": 35, "default": 7}},
)
def backup_retention(resource: Resource, config: dict[str, Any], report: Report) -> None:
    days = resource.get("backupRetentionPeriod") or 1  # AWS default: 1 day
    if days < config["minDays"]:
        report(f"{resource.label}: backupRetentionPeriod {days} < {config['minDays']} days")


@Rule(
    name="elasticache-snapshot-retention",
    area="recovery",
    kind="recovery",
    severity=Severity.MEDIUM,
    summary="ElastiCache keeps daily snapshots for at least the configured number of days (AWS Backup does not "
    "cover ElastiCache).",
    seed="seed 000 disaster recovery, seed 002 caching layer",
    checks="Checkov CKV_AWS_134",
    remediation="Set snapshot_retention_limit (>= minDays of policy/config/STACK.json) and snapshot_window on "
    "aws.elasticache.ReplicationGroup in the cache layer.",
    resource_types=(REPLICATION_GROUP,),
    config={"minDays": {"type": "integer", "minimum": 1, "default": 1}},
)
def cache_snapshots(resource: Resource, config: dict[str, Any], report: Report) -> None:
    days = resource.get("snapshotRetentionLimit") or 0
    if days < config["minDays"]:
        report(f"{resource.label}: snapshotRetentionLimit {days} < {config['minDays']}")


def _selection_tags(selection: Resource) -> list[tuple[str, str]]:
    pairs = [
        (str(tag.get("key")), str(tag.get("value")))
        for tag in items(selection.get("selectionTags"))
        if str(tag.get("type") or "STRINGEQUALS").upper() == "STRINGEQUALS"
    ]
    for condition in items(selection.get("conditions")):
        for equals in items(condition.get("stringEquals")):
            key = str(equals.get("key") or "")
            if key.startswith("aws:ResourceTag/"):
                pairs.append((key[len("aws:ResourceTag/") :], str(equals.get("value"))))
    return pairs


@Rule(
    name="stateful-resources-backed-up",
    area="recovery",
    kind="recovery",
    severity=Severity.HIGH,
    summary="Every stateful resource (Aurora, RDS, DynamoDB, EFS) is selected by an AWS Backup plan, by ARN or by tag.",
    seed="seed 000 disaster recovery (backups), seed 002 data layer",
    checks="cdk-nag NIST.800.53 RDSInBackupPlan / DynamoDBInBackupPlan, Checkov CKV2_AWS_8",
    remediation="Tag stateful resources with naming.stateful_tags(...) (tag backup-plan=<project>-<stack>) and have "
    "the backup layer's aws.backup.Selection select that tag (selection_tags STRINGEQUALS) under an aws.backup.Plan.",
    stack=True,
    config={"statefulTypes": {"type": "array", "items": {"type": "string"}, "default": STATEFUL_TYPES}},
)
def backed_up(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    selections = [s for s in stack.of(BACKUP_SELECTION) if stack.deps(s, "planId", BACKUP_PLAN)]

    def check(resource: Resource) -> None:
        for selection in selections:
            if resource in stack.deps(selection, "resources"):
                return
            tags = resource.tags()
            if any(tags.get(key) == value for key, value in _selection_tags(selection)):
                return
        report(f"{resource.label}: no backup selection (with a plan) selects it", resource.urn)

    stack.check_each(stack.of(*config["statefulTypes"]), check)


@Rule(
    name="backup-cross-region-copy",
    area="recovery",
    kind="recovery",
    severity=Severity.HIGH,
    summary="Every backup plan rule copies recovery points to a vault in a second region.",
    seed="seed 000 disaster recovery (cross-region), seed 004 tolerate region failures",
    checks="",
    remediation="Set platform:recovery.copyRegion in Pulumi.STACK.yaml; the backup layer then adds copy_actions "
    "(destination_vault_arn=<vault in the copy region>.arn) to each aws.backup.Plan rule.",
    stack=True,
)
def copy_region(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(plan: Resource) -> None:
        for rule in items(plan.get("rules")):
            copies = [c for c in items(rule.get("copyActions")) if c.get("destinationVaultArn")]
            if not copies:
                report(f"{plan.label}: rule {rule.get('ruleName')} copies nothing to another region", plan.urn)

    stack.check_each(stack.of(BACKUP_PLAN), check)


@Rule(
    name="backup-plan-retention",
    area="recovery",
    kind="recovery",
    severity=Severity.MEDIUM,
    summary="Backup plan rules keep recovery points (and their copies) at least the configured number of days.",
    seed="seed 000 disaster recovery",
    checks="cdk-nag NIST.800.53 BackupPlanMinFrequencyAndMinRetention",
    remediation="Set lifecycle delete_after (and the copy action's lifecycle) >= minDays of "
    "policy/config/STACK.json on each aws.backup.Plan rule in the backup layer.",
    stack=True,
    config={"minDays": {"type": "integer", "minimum": 1, "default": 7}},
)
def plan_retention(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(plan: Resource) -> None:
        for rule in items(plan.get("rules")):
            lifecycles = [rule.get("lifecycle")] + [c.get("lifecycle") for c in items(rule.get("copyActions"))]
            for lifecycle in lifecycles:
                days = (lifecycle or {}).get("deleteAfter")
                if days is not None and days < config["minDays"]:
                    report(f"{plan.label}: rule {rule.get('ruleName')} keeps {days} < {config['minDays']}", plan.urn)

    stack.check_each(stack.of(BACKUP_PLAN), check)


@Rule(
    name="s3-bucket-versioning",
    area="recovery",
    kind="recovery",
    severity=Severity.MEDIUM,
    summary="Every bucket has versioning enabled.",
    seed="seed 000 disaster recovery",
    checks="Checkov CKV_AWS_21, cdk-nag NIST.800.53 S3BucketVersioningEnabled",
    remediation="Add aws.s3.BucketVersioning(bucket=<bucket>.id, versioning_configuration status='Enabled') next to "
    "each bucket in the storage layer (with a lifecycle rule expiring noncurrent versions).",
    stack=True,
)
def versioning(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(bucket: Resource) -> None:
        configs = stack.referrers(bucket, "bucket", BUCKET_VERSIONING)
        if not any((v.get("versioningConfiguration") or {}).get("status") == "Enabled" for v in configs):
            report(f"{bucket.label}: versioning not enabled", bucket.urn)

    stack.check_each(stack.of(BUCKET), check)
