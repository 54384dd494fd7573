"""Encryption at rest: customer-managed KMS keys on every data store, log group, secret and vault."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, Stack, StackReport, items, property_set

CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
DB_INSTANCE = "aws:rds/instance:Instance"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
KMS_KEY = "aws:kms/key:Key"
BACKUP_VAULT = "aws:backup/vault:Vault"


@Rule(
    name="aurora-storage-encrypted-cmk",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="Aurora and RDS storage is encrypted with a customer-managed KMS key.",
    seed="seed 002 data layer (Aurora PostgreSQL), seed 000 security objectives",
    checks="cdk-nag AwsSolutions-RDS2, Checkov CKV_AWS_96 / CKV_AWS_327",
    remediation="Set storage_encrypted=True and kms_key_id=security.keys['data'].arn on aws.rds.Cluster in the "
    "database layer (components/); the data key comes from components/security.py.",
    resource_types=(CLUSTER, DB_INSTANCE),
)
def aurora_encrypted(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("storageEncrypted") is not True:
        report(f"{resource.label}: storageEncrypted is not true")
    elif not resource.get("kmsKeyId"):
        report(f"{resource.label}: storageEncrypted uses the AWS-managed key; set kmsKeyId to a customer key")


@Rule(
    name="elasticache-encrypted-with-auth",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="ElastiCache replication groups encrypt at rest with a customer key and in transit, and require AUTH "
    "(an auth token or RBAC user groups).",
    seed="seed 002 caching layer (at_rest_encryption_enabled, transit_encryption_enabled)",
    checks="Checkov CKV_AWS_29 / CKV_AWS_30 / CKV_AWS_31 / CKV_AWS_191, cdk-nag AwsSolutions-AEC5",
    remediation="On aws.elasticache.ReplicationGroup in the cache layer set at_rest_encryption_enabled=True, "
    "kms_key_id=security.keys['data'].arn, transit_encryption_enabled=True and auth_token (from Secrets "
    "Manager) or user_group_ids.",
    resource_types=(REPLICATION_GROUP,),
)
def elasticache_encrypted(resource: Resource, config: dict[str, Any], report: Report) -> None:
    missing = []
    if resource.get("atRestEncryptionEnabled") is not True:
        missing.append("atRestEncryptionEnabled")
    if not resource.get("kmsKeyId"):
        missing.append("kmsKeyId")
    if resource.get("transitEncryptionEnabled") is not True:
        missing.append("transitEncryptionEnabled")
    if not resource.get("authToken") and not items(resource.get("userGroupIds")):
        missing.append("authToken or userGroupIds")
    if missing:
        report(f"{resource.label}: missing {', '.join(missing)}")


@Rule(
    name="s3-bucket-encrypted",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="Every S3 bucket has a server-side encryption configuration (aws:kms, or AES256 where a service "
    "such as ALB access logging accepts nothing else).",
    seed="seed 000 security objectives (encryption at rest everywhere)",
    checks="Checkov CKV_AWS_19 / CKV_AWS_145",
    remediation="Add an aws.s3.BucketServerSideEncryptionConfiguration with bucket=<bucket>.id and "
    "sse_algorithm 'aws:kms' and kms_master_key_id=security.keys['data'].arn next to each bucket in the storage "
    "layer; set requireKms in policy/config/STACK.json to forbid AES256.",
    stack=True,
    config={"requireKms": {"type": "boolean", "default": False}},
)
def bucket_encrypted(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(bucket: Resource) -> None:
        configs = stack.referrers(bucket, "bucket", BUCKET_SSE)
        inline = bucket.get("serverSideEncryptionConfiguration")
        if not configs and not inline:
            report(f"{bucket.label}: no BucketServerSideEncryptionConfiguration refers to this bucket", bucket.urn)
            return
        for sse in configs:
            for rule in items(sse.get("rules")):
                algorithm = (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
                if algorithm is None:
                    report(f"{bucket.label}: encryption rule without a default algorithm", bucket.urn)
                elif config["requireKms"] and not str(algorithm).startswith("aws:kms"):
                    report(f"{bucket.label}: sseAlgorithm {algorithm}, KMS required", bucket.urn)

    stack.check_each(stack.of(BUCKET), check)


def _kms_master_key(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if not resource.get("kmsMasterKeyId"):
        report(f"{resource.label}: no kmsMasterKeyId (customer-managed key)")


queue_encrypted = Rule(
    name="sqs-queue-encrypted",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="SQS queues are encrypted with a customer-managed KMS key.",
    seed="seed 002 async processing (SQS), seed 000 security objectives",
    checks="cdk-nag AwsSolutions-SQS2, Checkov CKV_AWS_27",
    remediation="Set kms_master_key_id=security.keys['messaging'].arn on every aws.sqs.Queue (queues and DLQs) "
    "in the messaging layer.",
    resource_types=(QUEUE,),
    check=_kms_master_key,
)

topic_encrypted = Rule(
    name="sns-topic-encrypted",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="SNS topics are encrypted with a customer-managed KMS key.",
    seed="seed 002 async processing and alerting (SNS)",
    checks="cdk-nag AwsSolutions-SNS2, Checkov CKV_AWS_26",
    remediation="Set kms_master_key_id=security.keys['messaging'].arn on every aws.sns.Topic (events and alerts).",
    resource_types=(TOPIC,),
    check=_kms_master_key,
)

log_group_encrypted = Rule(
    name="log-group-encrypted",
    area="encryption",
    kind="security",
    severity=Severity.MEDIUM,
    summary="CloudWatch log groups are encrypted with the stack's logs KMS key.",
    seed="seed 000 observability and security objectives",
    checks="Checkov CKV_AWS_158",
    remediation="Pass kms_key_id=security.keys['logs'].arn to every aws.cloudwatch.LogGroup (as components/network.py "
    "does for the flow logs).",
    resource_types=(LOG_GROUP,),
    check=property_set("kmsKeyId"),
)

secret_cmk = Rule(
    name="secret-encrypted-cmk",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="Secrets Manager secrets are encrypted with a customer-managed KMS key.",
    seed="seed 000 security objectives (secrets in Secrets Manager)",
    checks="Checkov CKV_AWS_149",
    remediation="Set kms_key_id=security.keys['data'].arn on every aws.secretsmanager.Secret.",
    resource_types=(SECRET,),
    check=property_set("kmsKeyId"),
)


@Rule(
    name="kms-key-rotation",
    area="encryption",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Symmetric customer-managed KMS keys rotate automatically.",
    seed="seed 000 security objectives",
    checks="Checkov CKV_AWS_7, cdk-nag NIST.800.53 KMSBackingKeyRotationEnabled",
    remediation="Set enable_key_rotation=True on aws.kms.Key (components/security.py does for every data domain).",
    resource_types=(KMS_KEY,),
)
def key_rotation(resource: Resource, config: dict[str, Any], report: Report) -> None:
    spec = resource.get("customerMasterKeySpec") or resource.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and resource.get("enableKeyRotation") is not True:
        report(f"{resource.label}: enableKeyRotation is not true")


vault_encrypted = Rule(
    name="backup-vault-encrypted-cmk",
    area="encryption",
    kind="security",
    severity=Severity.MEDIUM,
    summary="AWS Backup vaults encrypt recovery points with a customer-managed KMS key.",
    seed="seed 000 disaster recovery (backups), security objectives",
    checks="Checkov CKV_AWS_166",
    remediation="Set kms_key_arn=security.keys['data'].arn on aws.backup.Vault in the backup layer (and on the "
    "copy-region vault).",
    resource_types=(BACKUP_VAULT,),
    check=property_set("kmsKeyArn"),
)


@Rule(
    name="performance-insights-encrypted",
    area="encryption",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Performance Insights data, where enabled, is encrypted with a customer-managed KMS key.",
    seed="seed 002 data layer (Aurora monitoring)",
    checks="Checkov CKV_AWS_354",
    remediation="Wherever performance_insights_enabled=True (aws.rds.Cluster or ClusterInstance), also set "
    "performance_insights_kms_key_id=security.keys['data'].arn.",
    resource_types=(CLUSTER, CLUSTER_INSTANCE, DB_INSTANCE),
)
def performance_insights(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("performanceInsightsEnabled") is True and not resource.get("performanceInsightsKmsKeyId"):
        report(f"{resource.label}: Performance Insights on without performanceInsightsKmsKeyId")
