"""The origin secret's rotation against stubbed ELB and CloudFront: no moment where the ALB refuses CloudFront."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rotation import origin_secret
from rotation.origin_secret import OriginSecret
from rotation.steps import RotationError

RULE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/alb/1/2/3"
DISTRIBUTION = "E1ABCDEF"
PATHS = ["/api/*", "/health/*"]
HEADER = "X-Origin-Verify"
CURRENT, PENDING = "C" * 64, "P" * 64
STAGED = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)


def config(value: str) -> dict[str, Any]:
    return {
        "CallerReference": "ref",
        "Comment": "",
        "Enabled": True,
        "Origins": {
            "Quantity": 2,
            "Items": [
                {
                    "Id": "alb",
                    "DomainName": "origin.shop.example.com",
                    "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": HEADER, "HeaderValue": value}]},
                    "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
                },
                {
                    "Id": "assets",
                    "DomainName": "assets.s3.us-east-1.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                },
            ],
        },
        "DefaultCacheBehavior": {"TargetOriginId": "alb", "ViewerProtocolPolicy": "redirect-to-https"},
    }


def config_response(value: str, etag: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "get_distribution_config", {"DistributionConfig": config(value), "ETag": etag}, {"Id": DISTRIBUTION}


def conditions(*values: str) -> list[dict[str, Any]]:
    return [
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": HEADER, "Values": list(values)}},
        {"Field": "path-pattern", "PathPatternConfig": {"Values": PATHS}},
    ]


@pytest.fixture
def stubs() -> Iterator[tuple[OriginSecret, Stubber, Stubber]]:
    keys = {"region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    elbv2, cloudfront = boto3.client("elbv2", **keys), boto3.client("cloudfront", **keys)
    service = OriginSecret(
        elbv2,
        cloudfront,
        rule_arn=RULE,
        routed_paths=PATHS,
        distribution_id=DISTRIBUTION,
        origin_id="alb",
        header=HEADER,
    )
    with Stubber(elbv2) as elb_stub, Stubber(cloudfront) as cf_stub:
        yield service, elb_stub, cf_stub
        elb_stub.assert_no_pending_responses()
        cf_stub.assert_no_pending_responses()


def distribution(status: str) -> dict[str, Any]:
    return {
        "Distribution": {
            "Id": DISTRIBUTION,
            "ARN": f"arn:aws:cloudfront::123456789012:distribution/{DISTRIBUTION}",
            "Status": status,
            "LastModifiedTime": STAGED,
            "InProgressInvalidationBatches": 0,
            "DomainName": "d1.cloudfront.net",
            "ActiveTrustedSigners": {"Enabled": False, "Quantity": 0},
            "DistributionConfig": config(PENDING),
        }
    }


def test_set_admits_both_values_before_cloudfront_sends_the_new_one(stubs: Any) -> None:
    service, elb, cf = stubs
    # The order is the guarantee: the rule accepts both, then CloudFront switches, then the wait for every edge.
    elb.add_response("modify_rule", {}, {"RuleArn": RULE, "Conditions": conditions(CURRENT, PENDING)})
    cf.add_response(*config_response(CURRENT, "E1"))
    cf.add_response(
        "update_distribution", {}, {"Id": DISTRIBUTION, "IfMatch": "E1", "DistributionConfig": config(PENDING)}
    )
    cf.add_response("get_distribution", distribution("InProgress"), {"Id": DISTRIBUTION})
    cf.add_response("get_distribution", distribution("Deployed"), {"Id": DISTRIBUTION})
    service.set(CURRENT, PENDING, STAGED)


def test_a_retried_set_leaves_a_distribution_that_sends_the_new_value_alone(stubs: Any) -> None:
    service, elb, cf = stubs
    elb.add_response("modify_rule", {}, {"RuleArn": RULE, "Conditions": conditions(CURRENT, PENDING)})
    cf.add_response(*config_response(PENDING, "E2"))
    cf.add_response("get_distribution", distribution("Deployed"), {"Id": DISTRIBUTION})
    service.set(CURRENT, PENDING, STAGED)


def test_finish_drops_the_old_value_from_the_rule(stubs: Any) -> None:
    service, elb, _ = stubs
    elb.add_response("modify_rule", {}, {"RuleArn": RULE, "Conditions": conditions(PENDING)})
    service.finish(CURRENT, PENDING)


def test_test_fails_until_every_edge_sends_the_new_value(stubs: Any) -> None:
    service, _, cf = stubs
    cf.add_response(*config_response(PENDING, "E2"))
    cf.add_response("get_distribution", distribution("InProgress"), {"Id": DISTRIBUTION})
    with pytest.raises(RotationError, match="not yet Deployed"):
        service.test(PENDING)


def test_test_fails_when_the_origin_sends_another_value(stubs: Any) -> None:
    service, _, cf = stubs
    cf.add_response(*config_response(CURRENT, "E2"))
    with pytest.raises(RotationError, match="does not send it"):
        service.test(PENDING)


def test_only_the_origin_header_changes_in_the_distribution(stubs: Any) -> None:
    service, _, _ = stubs
    before = config(CURRENT)
    after = copy.deepcopy(before)
    service._origin_headers(after)[HEADER] = PENDING
    before["Origins"]["Items"][0]["CustomHeaders"]["Items"][0]["HeaderValue"] = PENDING
    assert after == before


def test_the_handler_names_a_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTED_PATHS", '["/api/*"]')
    for name in ("LISTENER_RULE_ARN", "DISTRIBUTION_ID", "ORIGIN_ID", "HEADER_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(RotationError, match="LISTENER_RULE_ARN is not set"):
        origin_secret.handler({}, None)
