"""The storage layer: the assets bucket CloudFront serves, and the bucket ALB and CloudFront log into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import Account, Principal, Statement, policy_document
from components.naming import Naming, child_options
from components.security import EDGE_REGION

if TYPE_CHECKING:
    from components.context import StackContext

EVERYONE: Principal = {"AWS": "*"}
# Every S3 call is denied over plain HTTP; the deny names the operations instead of `s3:*`.
OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObjectAcl",
    "s3:PutObjectAcl",
    "s3:RestoreObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
BUCKET_ACTIONS = (
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:GetBucketAcl",
    "s3:PutBucketAcl",
    "s3:GetBucketLocation",
)
# Where each log service writes inside the logs bucket (the ALB and CloudFront take these prefixes).
ALB_LOG_PREFIX = "alb"
CLOUDFRONT_LOG_PREFIX = "cloudfront"
# S3 server access logs of the assets bucket: every read, write and delete, under a prefix of their own.
ASSETS_ACCESS_LOG_PREFIX = "s3-access/assets/"
S3_LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"
# CloudWatch Logs' vended delivery (CloudFront standard logging v2) writes as this service, from the delivery
# source's region: CloudFront's is always us-east-1.
VENDED_LOG_DELIVERY_SERVICE = "delivery.logs.amazonaws.com"
# Regions where ELB writes access logs as a regional account of its own, the regions the AWS docs list
# with an ELB account id and `aws.elb.get_service_account` answers for (those opened before August
# 2022, Jakarta included). Every other region takes the log-delivery service principal instead.
ELB_ACCOUNT_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ca-central-1",
        "cn-north-1",
        "cn-northwest-1",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "me-south-1",
        "sa-east-1",
        "us-gov-east-1",
        "us-gov-west-1",
    }
)
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
# Objects go to Intelligent-Tiering at once: it moves cold objects itself, with no retrieval fees.
INTELLIGENT_TIERING_AFTER_DAYS = 0
ABORT_INCOMPLETE_UPLOADS_DAYS = 7
# S3 bucket names are 3-63 characters; `-<12-digit account id>` takes 13 of them.
BUCKET_NAME_MAX, ACCOUNT_SUFFIX_LENGTH = 63, 13


@dataclass(frozen=True)
class StorageArgs:
    naming: Naming
    account: Account
    data_key_arn: pulumi.Input[str]
    access_log_retention_days: int
    noncurrent_version_retention_days: int
    force_destroy: bool = False

    @classmethod
    def for_stack(cls, stack: StackContext) -> StorageArgs:
        config = stack.config
        return cls(
            stack.naming,
            stack.account,
            stack.keys["data"].arn,
            config.observability.access_log_retention_days,
            config.recovery.noncurrent_version_retention_days,
        )


class Storage(pulumi.ComponentResource):
    """Two private, versioned, TLS-only buckets with ACLs disabled: `assets_bucket` (SSE-KMS) and `logs_bucket`
    (SSE-S3).

    The logs bucket uses SSE-S3 because neither ALB access logs nor S3 server access logs support a KMS
    default encryption. Every log writer is admitted by the bucket policy alone (ELB, S3 server access
    logging, CloudWatch Logs' delivery of CloudFront's logs), each under its own prefix and scoped to this
    account's sources, so the bucket needs no ACL (BucketOwnerEnforced).
    """

    assets_bucket: aws.s3.Bucket
    logs_bucket: aws.s3.Bucket
    # The logs bucket's policy, every log writer's grant included: the ALB and the log deliveries wait for it.
    logs_bucket_policy: aws.s3.BucketPolicy
    assets_access_logging: aws.s3.BucketLogging

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Storage", name, None, opts)
        self._name, self._naming, self._account = name, args.naming, args.account

        # Assets are state (uploads, built files): AWS Backup's plan selects the bucket by its tag.
        self.assets_bucket = self._bucket("assets", args, self._naming.stateful_tags("assets"))
        assets_guards = self._guards(
            "assets",
            self.assets_bucket,
            encryption=aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.data_key_arn
                ),
                # One data key per bucket instead of one KMS call per object.
                bucket_key_enabled=True,
            ),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-assets-lifecycle",
            bucket=self.assets_bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="intelligent-tiering",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=INTELLIGENT_TIERING_AFTER_DAYS, storage_class="INTELLIGENT_TIERING"
                        )
                    ],
                ),
                self._noncurrent_rule(args),
            ],
            opts=child_options(self, depends_on=assets_guards),
        )
        # The assets bucket's policy names the one distribution that reads it: `admit_distribution` writes it.
        self._assets_guards = assets_guards

        self.logs_bucket = self._bucket("logs", args, self._naming.tags("logs"))
        logs_guards = self._guards(
            "logs",
            self.logs_bucket,
            encryption=aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                ),
            ),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-logs-lifecycle",
            bucket=self.logs_bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.access_log_retention_days
                    ),
                ),
                self._noncurrent_rule(args),
            ],
            opts=child_options(self, depends_on=logs_guards),
        )
        account_id = self._account.account_id
        self.logs_bucket_policy = self._policy(
            "logs",
            self.logs_bucket,
            logs_guards,
            Statement(
                "LoadBalancerDeliversAccessLogs",
                ("s3:PutObject",),
                [pulumi.Output.format("{0}/{1}/AWSLogs/{2}/*", self.logs_bucket.arn, ALB_LOG_PREFIX, account_id)],
                self._elb_log_writer(),
            ),
            *self._access_log_grants(),
            *self._cloudfront_log_grants(),
        )
        # Logged once the grant is in place: S3 checks it when logging is configured.
        self.assets_access_logging = aws.s3.BucketLogging(
            f"{name}-assets-access-logging",
            bucket=self.assets_bucket.id,
            target_bucket=self.logs_bucket.id,
            target_prefix=ASSETS_ACCESS_LOG_PREFIX,
            # Date-partitioned keys, so Athena reads a day without listing the whole prefix.
            target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                    partition_date_source="EventTime"
                )
            ),
            opts=child_options(self, depends_on=[self.logs_bucket_policy]),
        )

        self.register_outputs(
            {
                "assets_bucket_name": self.assets_bucket.bucket,
                "assets_bucket_arn": self.assets_bucket.arn,
                "assets_bucket_regional_domain_name": self.assets_bucket.bucket_regional_domain_name,
                "logs_bucket_name": self.logs_bucket.bucket,
                "logs_bucket_arn": self.logs_bucket.arn,
                "logs_bucket_domain_name": self.logs_bucket.bucket_domain_name,
            }
        )

    @property
    def cloudfront_logs_destination_arn(self) -> pulumi.Output[str]:
        """Where CloudFront's access logs are delivered: the logs bucket's ARN and CloudFront's prefix."""
        return pulumi.Output.format("{0}/{1}", self.logs_bucket.arn, CLOUDFRONT_LOG_PREFIX)

    def _access_log_grants(self) -> list[Statement]:
        """S3 server access logging writes the assets bucket's log under its prefix, for this account's bucket only."""
        return [
            Statement(
                "S3ServerAccessLogsDelivered",
                ("s3:PutObject",),
                [pulumi.Output.format("{0}/{1}*", self.logs_bucket.arn, ASSETS_ACCESS_LOG_PREFIX)],
                {"Service": S3_LOG_DELIVERY_SERVICE},
                {
                    "StringEquals": {"aws:SourceAccount": self._account.account_id},
                    "ArnLike": {"aws:SourceArn": self.assets_bucket.arn},
                },
            )
        ]

    def _cloudfront_log_grants(self) -> list[Statement]:
        """CloudWatch Logs delivers CloudFront's logs (the statements its docs give for S3 destinations), only from
        this account's delivery sources in CloudFront's region."""
        source = {"aws:SourceAccount": self._account.account_id}
        source_arn = {
            "aws:SourceArn": pulumi.Output.format(
                "arn:{0}:logs:{1}:{2}:*", self._account.partition, EDGE_REGION, self._account.account_id
            )
        }
        delivery: Principal = {"Service": VENDED_LOG_DELIVERY_SERVICE}
        return [
            Statement(
                "CloudFrontLogsDelivered",
                ("s3:PutObject",),
                [pulumi.Output.format("{0}/{1}/*", self.logs_bucket.arn, CLOUDFRONT_LOG_PREFIX)],
                delivery,
                {"StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"}, "ArnLike": source_arn},
            ),
            # The delivery checks the bucket's owner before it writes (without ListBucket it logs AccessDenied).
            Statement(
                "CloudFrontLogsDeliveryChecksBucket",
                ("s3:GetBucketAcl", "s3:ListBucket"),
                [self.logs_bucket.arn],
                delivery,
                {"StringEquals": source, "ArnLike": source_arn},
            ),
        ]

    def _elb_log_writer(self) -> Principal:
        """Who writes ALB access logs in this region: ELB's regional account, or its service principal."""
        if self._account.region not in ELB_ACCOUNT_REGIONS:
            return {"Service": ELB_LOG_DELIVERY_SERVICE}
        elb_account = aws.elb.get_service_account_output(
            region=self._account.region, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return {"AWS": elb_account.arn}

    def _bucket(self, label: str, args: StorageArgs, tags: dict[str, str]) -> aws.s3.Bucket:
        return aws.s3.Bucket(
            f"{self._name}-{label}",
            # Bucket names are global: the account id keeps two accounts' stacks from colliding.
            bucket=pulumi.Output.concat(
                self._naming.name(label, max_length=BUCKET_NAME_MAX - ACCOUNT_SUFFIX_LENGTH),
                "-",
                self._account.account_id,
            ),
            force_destroy=args.force_destroy,
            tags=tags,
            opts=child_options(self),
        )

    def _guards(
        self,
        label: str,
        bucket: aws.s3.Bucket,
        encryption: aws.s3.BucketServerSideEncryptionConfigurationRuleArgs,
    ) -> list[pulumi.Resource]:
        """Public access block, ownership, versioning and default encryption: in place before any policy."""
        return [
            aws.s3.BucketPublicAccessBlock(
                f"{self._name}-{label}-public-access-block",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child_options(self),
            ),
            aws.s3.BucketOwnershipControls(
                f"{self._name}-{label}-ownership",
                bucket=bucket.id,
                # ACLs disabled: every writer is admitted by the bucket policy, every object is the bucket owner's.
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
                opts=child_options(self),
            ),
            aws.s3.BucketVersioning(
                f"{self._name}-{label}-versioning",
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                opts=child_options(self),
            ),
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{self._name}-{label}-encryption",
                bucket=bucket.id,
                rules=[encryption],
                opts=child_options(self),
            ),
        ]

    @staticmethod
    def _noncurrent_rule(args: StorageArgs) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
        return aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=args.noncurrent_version_retention_days
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_INCOMPLETE_UPLOADS_DAYS
            ),
        )

    def admit_distribution(self, distribution_arn: pulumi.Input[str]) -> aws.s3.BucketPolicy:
        """The assets bucket's policy: TLS only, and reads through origin access control by the CloudFront
        distribution `distribution_arn` alone (the edge layer builds it from this bucket, hence a call after)."""
        return self._policy(
            "assets",
            self.assets_bucket,
            self._assets_guards,
            Statement(
                "CloudFrontReadsThroughOriginAccessControl",
                ("s3:GetObject",),
                [pulumi.Output.concat(self.assets_bucket.arn, "/*")],
                {"Service": "cloudfront.amazonaws.com"},
                {"StringEquals": {"AWS:SourceArn": distribution_arn}},
            ),
        )

    def _policy(
        self, label: str, bucket: aws.s3.Bucket, guards: list[pulumi.Resource], *allows: Statement
    ) -> aws.s3.BucketPolicy:
        deny_insecure = Statement(
            "DenyInsecureTransport",
            (*OBJECT_ACTIONS, *BUCKET_ACTIONS),
            [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
            EVERYONE,
            {"Bool": {"aws:SecureTransport": "false"}},
            effect="Deny",
        )
        return aws.s3.BucketPolicy(
            f"{self._name}-{label}-policy",
            bucket=bucket.id,
            policy=policy_document(deny_insecure, *allows),
            # S3 rejects concurrent changes to one bucket's configuration; the policy goes last.
            opts=child_options(self, depends_on=guards),
        )
