"""The storage layer: the assets bucket CloudFront serves, and the bucket ALB and CloudFront log into."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import Account, Principal, Statement, policy_document
from components.naming import Naming, child_options

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
    # The distribution that reads the assets through origin access control; until the edge layer
    # passes it, any CloudFront distribution of this account may read (the assets are public content).
    cdn_distribution_arn: pulumi.Input[str] | None = None
    force_destroy: bool = False


class Storage(pulumi.ComponentResource):
    """Two private, versioned, TLS-only buckets: `assets_bucket` (SSE-KMS) and `logs_bucket` (SSE-S3).

    The logs bucket uses SSE-S3 because ALB access logs support no other encryption, and
    BucketOwnerPreferred ownership because CloudFront standard (legacy) logging writes with an ACL
    grant to its log-delivery account: with ACLs disabled (BucketOwnerEnforced) CloudFront cannot
    deliver. Objects uploaded with `bucket-owner-full-control` still belong to the bucket owner.
    The assets bucket keeps ACLs disabled (BucketOwnerEnforced).
    """

    assets_bucket: aws.s3.Bucket
    logs_bucket: aws.s3.Bucket
    # CloudFront standard logging needs ACLs enabled on the logs bucket before it is configured.
    logs_bucket_ownership: aws.s3.BucketOwnershipControls
    # The logs bucket's policy, ELB's write grant included: the ALB waits for it.
    logs_bucket_policy: aws.s3.BucketPolicy

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Storage", name, None, opts)
        self._name, self._naming, self._account = name, args.naming, args.account

        # Assets are state (uploads, built files): AWS Backup's plan selects the bucket by its tag.
        self.assets_bucket = self._bucket("assets", args, self._naming.stateful_tags("assets"))
        _, assets_guards = self._guards(
            "assets",
            self.assets_bucket,
            ownership="BucketOwnerEnforced",
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
        cdn_source = (
            {"StringEquals": {"AWS:SourceArn": args.cdn_distribution_arn}}
            if args.cdn_distribution_arn is not None
            else {
                "StringEquals": {"AWS:SourceAccount": self._account.account_id},
                "ArnLike": {"AWS:SourceArn": self._account.arn("cloudfront", "distribution/*", region=False)},
            }
        )
        self._policy(
            "assets",
            self.assets_bucket,
            assets_guards,
            Statement(
                "CloudFrontReadsThroughOriginAccessControl",
                ("s3:GetObject",),
                [pulumi.Output.concat(self.assets_bucket.arn, "/*")],
                {"Service": "cloudfront.amazonaws.com"},
                cdn_source,
            ),
        )

        self.logs_bucket = self._bucket("logs", args, self._naming.tags("logs"))
        self.logs_bucket_ownership, logs_guards = self._guards(
            "logs",
            self.logs_bucket,
            ownership="BucketOwnerPreferred",
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
        ownership: str,
        encryption: aws.s3.BucketServerSideEncryptionConfigurationRuleArgs,
    ) -> tuple[aws.s3.BucketOwnershipControls, list[pulumi.Resource]]:
        """Public access block, ownership, versioning and default encryption: in place before any policy.

        Returns the ownership controls on their own too (log delivery that writes ACLs waits for them).
        """
        ownership_controls = aws.s3.BucketOwnershipControls(
            f"{self._name}-{label}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership=ownership),
            opts=child_options(self),
        )
        return ownership_controls, [
            aws.s3.BucketPublicAccessBlock(
                f"{self._name}-{label}-public-access-block",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child_options(self),
            ),
            ownership_controls,
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
