"""The storage layer, as the program registers it under the offline mocks."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime import MockCallArgs

from components.iam import Account
from components.naming import BACKUP_TAG, Naming
from components.storage import ELB_ACCOUNT_REGIONS, Storage, StorageArgs
from platformctl.mocks import ELB_ACCOUNTS, OfflineMocks
from platformctl.plan import Plan, PlannedResource, run_program
from tests.support import by_name

BUCKETS = ("assets", "logs")
DISTRIBUTION_ARN = "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE"


def statements(policy: PlannedResource) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def rules(plan: Plan, label: str) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in by_name(plan, f"storage-{label}-lifecycle").inputs["rules"]}


def storage_in(region: str) -> Plan:
    """The component alone in `region`, told which distribution reads the assets, with other retention values."""

    def program() -> None:
        naming = Naming("shop", "qa", "staging")
        account = Account(pulumi.Output.from_input("123456789012"), pulumi.Output.from_input("aws"), region)
        storage = Storage(
            "storage",
            StorageArgs(
                naming=naming,
                account=account,
                data_key_arn=f"arn:aws:kms:{region}:123456789012:key/data",
                access_log_retention_days=30,
                noncurrent_version_retention_days=7,
            ),
        )
        storage.admit_distribution(DISTRIBUTION_ARN)

    return run_program(program, project="platform", stack="test")


@pytest.fixture(scope="module")
def direct_plan() -> Plan:
    return storage_in("eu-west-1")


def access_log_writer(plan: Plan) -> dict[str, Any]:
    return statements(by_name(plan, "storage-logs-policy"))["LoadBalancerDeliversAccessLogs"]


def test_buckets_are_named_per_stack_and_account(prod_plan: Plan) -> None:
    for label in BUCKETS:
        bucket = by_name(prod_plan, f"storage-{label}")
        assert bucket.inputs["bucket"] == f"platform-prod-{label}-123456789012"
        assert bucket.inputs["forceDestroy"] is False


def test_public_access_is_blocked_on_all_four_settings(prod_plan: Plan) -> None:
    for label in BUCKETS:
        block = by_name(prod_plan, f"storage-{label}-public-access-block")
        assert block.inputs["bucket"] == by_name(prod_plan, f"storage-{label}").id
        settings = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert [block.inputs[key] for key in settings] == [True, True, True, True]


def test_both_buckets_disable_acls(prod_plan: Plan) -> None:
    # Every log writer is admitted by the logs bucket's policy: no ACL grant remains anywhere.
    for label in BUCKETS:
        ownership = by_name(prod_plan, f"storage-{label}-ownership").inputs["rule"]
        assert ownership == {"objectOwnership": "BucketOwnerEnforced"}, label
    assert not prod_plan.of_type("aws:s3/bucketAcl:BucketAcl")


def test_assets_requests_are_logged_to_the_logs_bucket_under_their_own_prefix(prod_plan: Plan) -> None:
    (logging,) = prod_plan.of_type("aws:s3/bucketLogging:BucketLogging")
    assert logging.inputs["bucket"] == by_name(prod_plan, "storage-assets").outputs["bucket"]
    assert logging.inputs["targetBucket"] == by_name(prod_plan, "storage-logs").outputs["bucket"]
    assert logging.inputs["targetPrefix"] == "s3-access/assets/"
    # S3 checks the target's grant when logging is configured: the grant comes first.
    assert by_name(prod_plan, "storage-logs-policy").urn in logging.dependencies


def test_s3_log_delivery_may_write_only_the_assets_logs_of_this_account(prod_plan: Plan) -> None:
    logs_arn = by_name(prod_plan, "storage-logs").outputs["arn"]
    grant = statements(by_name(prod_plan, "storage-logs-policy"))["S3ServerAccessLogsDelivered"]
    assert grant["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert grant["Action"] == ["s3:PutObject"]
    assert grant["Resource"] == [f"{logs_arn}/s3-access/assets/*"]
    assert grant["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": by_name(prod_plan, "storage-assets").outputs["arn"]},
    }


def test_cloudwatch_delivers_cloudfront_logs_under_their_prefix_from_us_east_1_only(direct_plan: Plan) -> None:
    # The stack in eu-west-1: CloudFront's delivery source is still in us-east-1.
    logs_arn = by_name(direct_plan, "storage-logs").outputs["arn"]
    grants = statements(by_name(direct_plan, "storage-logs-policy"))
    write, check = grants["CloudFrontLogsDelivered"], grants["CloudFrontLogsDeliveryChecksBucket"]
    for grant in (write, check):
        assert grant["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
        assert grant["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:logs:us-east-1:123456789012:*"}
        assert grant["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert write["Action"] == ["s3:PutObject"] and write["Resource"] == [f"{logs_arn}/cloudfront/*"]
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    assert check["Resource"] == [logs_arn]


def test_both_buckets_are_versioned(prod_plan: Plan) -> None:
    for label in BUCKETS:
        versioning = by_name(prod_plan, f"storage-{label}-versioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"


def test_assets_use_sse_kms_with_a_bucket_key_and_logs_use_sse_s3(prod_plan: Plan) -> None:
    (assets,) = by_name(prod_plan, "storage-assets-encryption").inputs["rules"]
    assert assets["bucketKeyEnabled"] is True
    assert assets["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": by_name(prod_plan, "security-data-key").outputs["arn"],
    }
    # ALB access logs are delivered only to SSE-S3 buckets.
    (logs,) = by_name(prod_plan, "storage-logs-encryption").inputs["rules"]
    assert logs["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_policies_deny_requests_without_tls(prod_plan: Plan) -> None:
    for label in BUCKETS:
        arn = by_name(prod_plan, f"storage-{label}").outputs["arn"]
        policy = by_name(prod_plan, f"storage-{label}-policy")
        deny = statements(policy)["DenyInsecureTransport"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == [arn, f"{arn}/*"]
        assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= set(deny["Action"])
        # S3 rejects concurrent configuration changes: the policy waits for the access block.
        assert by_name(prod_plan, f"storage-{label}-public-access-block").urn in policy.dependencies


def test_load_balancer_may_write_access_logs_under_its_prefix_only(prod_plan: Plan) -> None:
    arn = by_name(prod_plan, "storage-logs").outputs["arn"]
    allow = access_log_writer(prod_plan)
    assert allow["Action"] == ["s3:PutObject"]
    assert allow["Resource"] == [f"{arn}/alb/AWSLogs/123456789012/*"]


def test_in_a_region_older_than_august_2022_elbs_regional_account_writes_the_logs(
    prod_plan: Plan, direct_plan: Plan
) -> None:
    """The ALB guide lists ELB's own account for us-east-1 and eu-west-1: the grant names it."""
    assert access_log_writer(prod_plan)["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
    assert access_log_writer(direct_plan)["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"}


@pytest.mark.parametrize("region", ["il-central-1", "ap-southeast-4", "me-central-1"])
def test_in_a_newer_region_the_log_delivery_service_writes_the_logs(region: str) -> None:
    allow = access_log_writer(storage_in(region))
    assert allow["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert allow["Resource"][0].endswith("/alb/AWSLogs/123456789012/*")


def test_the_regions_given_elbs_account_are_those_the_lookup_answers_for() -> None:
    """Where the program looks the account up, AWS answers; everywhere else the lookup fails, as AWS's does."""
    assert set(ELB_ACCOUNTS) == ELB_ACCOUNT_REGIONS
    lookup = "aws:elb/getServiceAccount:getServiceAccount"
    assert OfflineMocks().call(MockCallArgs(lookup, {"region": "us-east-1"}, ""))["id"] == "127311923021"
    with pytest.raises(ValueError, match="unsupported AWS Region: il-central-1"):
        OfflineMocks().call(MockCallArgs(lookup, {"region": "il-central-1"}, ""))


def test_cloudfront_reads_assets_only_as_the_stacks_distribution(prod_plan: Plan, direct_plan: Plan) -> None:
    arn = by_name(prod_plan, "storage-assets").outputs["arn"]
    read = statements(by_name(prod_plan, "storage-assets-policy"))["CloudFrontReadsThroughOriginAccessControl"]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == ["s3:GetObject"] and read["Resource"] == [f"{arn}/*"]
    distribution = by_name(prod_plan, "edge-distribution").outputs["arn"]
    assert read["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution}}
    pinned = statements(by_name(direct_plan, "storage-assets-policy"))["CloudFrontReadsThroughOriginAccessControl"]
    assert pinned["Condition"] == {"StringEquals": {"AWS:SourceArn": DISTRIBUTION_ARN}}


def test_lifecycle_tiers_assets_and_expires_logs_and_old_versions(prod_plan: Plan, direct_plan: Plan) -> None:
    assets = rules(prod_plan, "assets")
    assert assets["intelligent-tiering"]["transitions"] == [{"days": 0, "storageClass": "INTELLIGENT_TIERING"}]
    assert "expiration" not in assets["intelligent-tiering"]
    logs = rules(prod_plan, "logs")
    assert logs["expire-access-logs"]["expiration"] == {"days": 90}
    for bucket_rules in (assets, logs):
        noncurrent = bucket_rules["expire-noncurrent-versions"]
        assert noncurrent["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
        assert noncurrent["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
        assert all(rule["status"] == "Enabled" for rule in bucket_rules.values())
    assert rules(direct_plan, "logs")["expire-access-logs"]["expiration"] == {"days": 30}
    assert rules(direct_plan, "assets")["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 7
    }


def test_only_the_assets_bucket_is_selected_for_backup(prod_plan: Plan) -> None:
    assert by_name(prod_plan, "storage-assets").inputs["tags"][BACKUP_TAG] == "platform-prod"
    assert BACKUP_TAG not in by_name(prod_plan, "storage-logs").inputs["tags"]


def test_storage_exposes_what_the_edge_and_load_balancer_need(prod_plan: Plan) -> None:
    (component,) = prod_plan.of_type("platform:storage:Storage")
    assert component.outputs["assets_bucket_regional_domain_name"] == (
        "platform-prod-assets-123456789012.s3.us-east-1.amazonaws.com"
    )
    assert component.outputs["logs_bucket_domain_name"] == "platform-prod-logs-123456789012.s3.amazonaws.com"


def test_a_bucket_name_s3_would_refuse_as_too_long_is_an_error_naming_the_limit() -> None:
    def program() -> None:
        naming = Naming("a-long-project-name", "a-long-stack-name-for-tests", "staging")
        account = Account(pulumi.Output.from_input("123456789012"), pulumi.Output.from_input("aws"), "us-east-1")
        Storage("storage", StorageArgs(naming, account, "arn:aws:kms:us-east-1:123456789012:key/data", 30, 7))

    # 63 characters at most, 13 of them `-<account id>`: 50 are left for the name.
    with pytest.raises(
        ValueError, match="'a-long-project-name-a-long-stack-name-for-tests-assets' is 54 characters; AWS allows 50"
    ):
        run_program(program, project="platform", stack="test")
