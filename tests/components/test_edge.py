"""The edge layer: cache behaviours and their TTLs, TLS, WAF rules, DNS records and health check."""

from __future__ import annotations

import json

import pytest

from platformctl.plan import SECRET_MASK, Plan, PlannedResource, run_program
from tests.components import request_path


def _plan(**overrides: object) -> Plan:
    cfg = request_path.config(**overrides)  # type: ignore[arg-type]
    return run_program(lambda: request_path.edge(cfg), project="platform", stack="test")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _plan()


def distribution(plan: Plan) -> PlannedResource:
    (resource,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    return resource


def cache_policy(plan: Plan, policy_id: str) -> dict[str, object]:
    (policy,) = [p for p in plan.of_type("aws:cloudfront/cachePolicy:CachePolicy") if p.id == policy_id]
    return policy.inputs


def test_four_cache_behaviours_with_the_seeds_ttls(plan: Plan) -> None:
    behaviours = {b["pathPattern"]: b for b in distribution(plan).inputs["orderedCacheBehaviors"]}
    assert list(behaviours) == ["/static/*", "/api/products/*", "/api/user/*", "/api/checkout/*"]
    static = cache_policy(plan, behaviours["/static/*"]["cachePolicyId"])
    assert (static["defaultTtl"], static["maxTtl"]) == (31_536_000, 31_536_000)
    assert behaviours["/static/*"]["compress"] is True and behaviours["/static/*"]["targetOriginId"] == "assets"
    products = cache_policy(plan, behaviours["/api/products/*"]["cachePolicyId"])
    assert (products["defaultTtl"], products["maxTtl"]) == (300, 300)
    key = products["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["queryStringsConfig"]["queryStringBehavior"] == "all"
    for path in ("/api/user/*", "/api/checkout/*"):
        assert behaviours[path]["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
        assert behaviours[path]["originRequestPolicyId"] == "216adef6-5c7f-47e4-b989-5492eafa07d3"  # AllViewer
    default = distribution(plan).inputs["defaultCacheBehavior"]
    assert default["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert all(b["viewerProtocolPolicy"] == "redirect-to-https" for b in [default, *behaviours.values()])


def test_viewers_tls12_http3_price_class_and_logging(plan: Plan) -> None:
    inputs = distribution(plan).inputs
    assert inputs["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert inputs["viewerCertificate"]["sslSupportMethod"] == "sni-only"
    assert inputs["httpVersion"] == "http2and3"
    assert inputs["priceClass"] == "PriceClass_100"
    assert inputs["loggingConfig"]["bucket"] == "logs.s3.amazonaws.com"
    assert inputs["aliases"] == ["shop.example.com"]


def test_alb_origin_is_https_only_with_the_secret_header_and_s3_uses_oac(plan: Plan) -> None:
    origins = {o["originId"]: o for o in distribution(plan).inputs["origins"]}
    alb = origins["alb"]
    assert alb["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    assert alb["customOriginConfig"]["originSslProtocols"] == ["TLSv1.2"]
    assert alb["customHeaders"] == [{"name": "X-Origin-Verify", "value": SECRET_MASK}]
    (oac,) = plan.of_type("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert origins["assets"]["originAccessControlId"] == oac.id
    assert oac.inputs["signingBehavior"] == "always"
    assert "origin-secret-value" not in json.dumps(plan.to_json())


def test_waf_acl_has_the_managed_groups_and_rate_rule_and_logs(plan: Plan) -> None:
    (acl,) = plan.of_type("aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "CLOUDFRONT"
    rules = {rule["name"]: rule for rule in acl.inputs["rules"]}
    for group in (
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ):
        assert rules[group]["statement"]["managedRuleGroupStatement"]["vendorName"] == "AWS"
    rate = rules["rate-limit-per-ip"]
    assert rate["statement"]["rateBasedStatement"] == {
        "limit": 2000,
        "aggregateKeyType": "IP",
        "evaluationWindowSec": 300,
    }
    assert "block" in rate["action"]
    assert len({rule["priority"] for rule in acl.inputs["rules"]}) == len(rules)
    assert distribution(plan).inputs["webAclId"] == acl.outputs["arn"]
    (logging,) = plan.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    (log_group,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "edge-waf-logs"]
    assert logging.inputs["logDestinationConfigs"] == [log_group.outputs["arn"]]
    assert log_group.inputs["name"].startswith("aws-waf-logs-") and log_group.inputs["kmsKeyId"]


def test_certificate_and_waf_live_in_us_east_1_through_a_second_provider(plan: Plan) -> None:
    (edge_provider,) = [p for p in plan.of_type("pulumi:providers:aws") if p.name == "edge-us-east-1"]
    assert edge_provider.inputs["region"] == "us-east-1"
    (certificate,) = plan.of_type("aws:acm/certificate:Certificate")
    assert certificate.inputs["validationMethod"] == "DNS" and certificate.inputs["domainName"] == "shop.example.com"
    records = [r for r in plan.of_type("aws:route53/record:Record") if r.inputs.get("type") == "CNAME"]
    assert records and all(r.inputs["zoneId"] == "Z123" for r in records)


def test_alias_records_and_health_check_on_the_live_path(plan: Plan) -> None:
    aliases = [r for r in plan.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    assert sorted(r.inputs["type"] for r in aliases) == ["A", "AAAA"]
    for record in aliases:
        assert record.inputs["aliases"][0]["name"] == distribution(plan).outputs["domainName"]
        assert "setIdentifier" not in record.inputs
    (check,) = plan.of_type("aws:route53/healthCheck:HealthCheck")
    assert (check.inputs["type"], check.inputs["resourcePath"], check.inputs["port"]) == ("HTTPS", "/health/live", 443)


def test_latency_records_when_a_region_is_named() -> None:
    plan = _plan(edge={"latencyRoutingRegion": "us-east-1"})
    (check,) = plan.of_type("aws:route53/healthCheck:HealthCheck")
    aliases = [r for r in plan.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    for record in aliases:
        assert record.inputs["setIdentifier"] == "us-east-1"
        assert record.inputs["latencyRoutingPolicies"] == [{"region": "us-east-1"}]
        assert record.inputs["healthCheckId"] == check.id
