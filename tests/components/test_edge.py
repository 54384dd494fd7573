"""The edge layer: cache behaviours and their TTLs, TLS, WAF rules, DNS records and health check."""

from __future__ import annotations

import json
import re

import pytest

from app import contract
from components import edge as edge_layer
from components.security import GENERATED_SECRET_LENGTH
from platformctl.mocks import generated_password
from platformctl.plan import SECRET_MASK, Plan, PlannedResource
from tests.support import by_name, config_for, layer, plan_with


def _plan(**overrides: object) -> Plan:
    """Prod's edge layer with these config overrides, as the program builds it."""
    return layer(plan_with(config_for("prod", **overrides), stack="prod"), "edge")


@pytest.fixture
def plan(prod_plan: Plan) -> Plan:
    return layer(prod_plan, "edge")


def distribution(plan: Plan) -> PlannedResource:
    (resource,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    return resource


def cache_policy(plan: Plan, policy_id: str) -> dict[str, object]:
    policies = [p for p in plan.of_type("aws:cloudfront/cachePolicy:CachePolicy") if p.id == policy_id]
    assert len(policies) == 1, f"cache policy {policy_id} is not one this stack creates (an AWS managed one?)"
    return policies[0].inputs


def behaviour_for(plan: Plan, path: str) -> dict[str, object]:
    """The cache behaviour CloudFront applies to a request path: the first pattern that matches, else the default.

    Path patterns are case-sensitive; `*` matches any run of characters (slashes too), `?` exactly one.
    """
    for behaviour in distribution(plan).inputs["orderedCacheBehaviors"]:
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in behaviour["pathPattern"])
        if re.fullmatch(pattern, path):
            return dict(behaviour)
    return dict(distribution(plan).inputs["defaultCacheBehavior"])


def test_cache_behaviours_static_products_and_uncached_api(plan: Plan) -> None:
    behaviours = {b["pathPattern"]: b for b in distribution(plan).inputs["orderedCacheBehaviors"]}
    assert list(behaviours) == ["/static/*", "/api/products", "/api/products/*", "/api/user/*", "/api/checkout/*"]
    static = cache_policy(plan, behaviours["/static/*"]["cachePolicyId"])
    assert (static["defaultTtl"], static["maxTtl"]) == (31_536_000, 31_536_000)
    assert behaviours["/static/*"]["compress"] is True and behaviours["/static/*"]["targetOriginId"] == "assets"
    for path in ("/api/user/*", "/api/checkout/*"):
        assert behaviours[path]["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
        assert behaviours[path]["originRequestPolicyId"] == "216adef6-5c7f-47e4-b989-5492eafa07d3"  # AllViewer
    default = distribution(plan).inputs["defaultCacheBehavior"]
    assert default["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert all(b["viewerProtocolPolicy"] == "redirect-to-https" for b in [default, *behaviours.values()])


@pytest.mark.parametrize("path", ["/api/products", "/api/products/42"])
def test_product_list_and_items_are_cached_for_the_contract_ttl(plan: Plan, path: str) -> None:
    behaviour = behaviour_for(plan, path)
    assert behaviour["targetOriginId"] == "alb"
    products = cache_policy(plan, str(behaviour["cachePolicyId"]))
    ttl = contract.PRODUCT_CACHE_TTL_SECONDS
    assert (products["minTtl"], products["defaultTtl"], products["maxTtl"]) == (0, ttl, ttl)


def test_products_cache_key_is_the_list_parameters_and_origin(plan: Plan) -> None:
    products = cache_policy(plan, str(behaviour_for(plan, "/api/products")["cachePolicyId"]))
    key = products["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["queryStringsConfig"] == {
        "queryStringBehavior": "whitelist",
        "queryStrings": {"items": list(contract.PRODUCT_LIST_QUERY_PARAMETERS)},
    }
    assert len(contract.PRODUCT_LIST_QUERY_PARAMETERS) <= 10  # CloudFront: query strings per cache policy
    assert key["headersConfig"] == {"headerBehavior": "whitelist", "headers": {"items": ["Origin"]}}
    assert key["cookiesConfig"]["cookieBehavior"] == "none"


@pytest.mark.parametrize("path", ["/api/admin/products", "/api/productsexport", "/API/products"])
def test_other_paths_are_not_cached_as_product_reads(plan: Plan, path: str) -> None:
    assert behaviour_for(plan, path)["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled


def test_viewers_tls12_http3_price_class(plan: Plan) -> None:
    inputs = distribution(plan).inputs
    assert inputs["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert inputs["viewerCertificate"]["sslSupportMethod"] == "sni-only"
    assert inputs["httpVersion"] == "http2and3"
    assert inputs["priceClass"] == "PriceClass_100"
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
    # The value the offline plan generated for the secret appears nowhere, however deep.
    generated = generated_password("security-origin-verify-value", GENERATED_SECRET_LENGTH)
    assert generated not in json.dumps(plan.to_json())


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
    assert rate["priority"] < rules["body-size-limit"]["priority"] < rules["AWSManagedRulesCommonRuleSet"]["priority"]
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
    zone = by_name(plan, "edge-a").inputs["zoneId"]  # the site's hosted zone, looked up by name
    assert records and all(r.inputs["zoneId"] == zone for r in records)


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


def test_waf_blocks_bodies_over_the_app_limit_and_inspects_all_it_lets_through(plan: Plan) -> None:
    (acl,) = plan.of_type("aws:wafv2/webAcl:WebAcl")
    rules = {rule["name"]: rule for rule in acl.inputs["rules"]}
    size_rule = rules["body-size-limit"]
    assert "block" in size_rule["action"]
    assert size_rule["statement"]["sizeConstraintStatement"] == {
        "comparisonOperator": "GT",
        "size": contract.MAX_REQUEST_BYTES,
        # A body past the inspection limit reaches WAF truncated: only MATCH keeps it from passing as small.
        "fieldToMatch": {"body": {"oversizeHandling": "MATCH"}},
        "textTransformations": [{"priority": 0, "type": "NONE"}],
    }
    inspected = acl.inputs["associationConfig"]["requestBodies"][0]["cloudfront"]["defaultSizeInspectionLimit"]
    assert int(inspected.removeprefix("KB_")) * 1024 >= contract.MAX_REQUEST_BYTES
    # The common rule set's own 8 KB body limit would refuse bodies the app accepts: it only counts.
    common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managedRuleGroupStatement"]
    assert common["ruleActionOverrides"] == [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}]


@pytest.mark.parametrize(
    ("max_body", "setting"),
    [(8 * 1024, "KB_16"), (16 * 1024, "KB_16"), (16 * 1024 + 1, "KB_32"), (64 * 1024, "KB_64")],
)
def test_body_inspection_is_the_smallest_setting_covering_the_app_limit(max_body: int, setting: str) -> None:
    assert edge_layer.cloudfront_body_inspection_limit(max_body) == setting


def test_an_app_limit_past_what_waf_can_inspect_is_refused_naming_the_constant() -> None:
    with pytest.raises(ValueError, match=r"MAX_REQUEST_BYTES: .* at most 65536 bytes .*\(got 65537\)"):
        edge_layer.cloudfront_body_inspection_limit(64 * 1024 + 1)


def test_access_logs_go_through_a_cloudwatch_delivery_to_the_logs_bucket_not_legacy_logging(prod_plan: Plan) -> None:
    cloudfront = distribution(prod_plan)
    # Legacy logging writes with an ACL grant on the bucket; the delivery writes with the bucket policy's.
    assert "loggingConfig" not in cloudfront.inputs
    (source,) = prod_plan.of_type("aws:cloudwatch/logDeliverySource:LogDeliverySource")
    (destination,) = prod_plan.of_type("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination")
    (delivery,) = prod_plan.of_type("aws:cloudwatch/logDelivery:LogDelivery")
    assert source.inputs["resourceArn"] == cloudfront.outputs["arn"]
    assert source.inputs["logType"] == "ACCESS_LOGS"
    logs_bucket_arn = by_name(prod_plan, "storage-logs").outputs["arn"]
    assert destination.inputs["deliveryDestinationConfiguration"] == {
        "destinationResourceArn": f"{logs_bucket_arn}/cloudfront"
    }
    assert delivery.inputs["deliverySourceName"] == source.outputs["name"]
    assert delivery.inputs["deliveryDestinationArn"] == destination.outputs["arn"]
    # The delivery is refused unless the bucket policy admits delivery.logs.amazonaws.com when it is created.
    assert by_name(prod_plan, "storage-logs-policy").urn in delivery.dependencies


def test_the_validation_record_both_certificates_share_outlives_either_of_them(prod_plan: Plan) -> None:
    """ACM gives the site's name one validation record per account, and the edge's and the ALB's certificates
    both cover that name: both manage the same record. Deleting either resource must not delete the record
    the other certificate renews with."""
    records = [r for r in prod_plan.of_type("aws:route53/record:Record") if "-certificate-validation-" in r.name]
    owners: dict[str, list[str]] = {}
    for record in records:
        owners.setdefault(record.inputs["name"], []).append(record.name)
    shared = [names for names in owners.values() if len(names) > 1]
    assert [sorted(names) for names in shared] == [
        ["edge-certificate-validation-0", "load-balancer-certificate-validation-1"]
    ]
    assert all(record.retain_on_delete for record in records), [r.name for r in records if not r.retain_on_delete]
