"""The ALB: CloudFront-only HTTPS ingress, TLS policy, access logs, origin-secret rule, target group numbers."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime import MockCallArgs

from components.load_balancer import CLOUDFRONT_ORIGIN_FACING
from platformctl.mocks import OfflineMocks
from platformctl.plan import SECRET_MASK, Plan
from tests.support import by_name, layer

PREFIX_LIST_LOOKUP = "aws:ec2/getManagedPrefixList:getManagedPrefixList"


@pytest.fixture
def plan(prod_plan: Plan) -> Plan:
    """Prod's load balancer (blue/green, the seeds' default for prod), as the program builds it."""
    return layer(prod_plan, "load-balancer")


def lookup_prefix_list(**args: Any) -> dict[str, Any]:
    return OfflineMocks().call(MockCallArgs(PREFIX_LIST_LOOKUP, args, ""))


def test_ingress_is_one_rule_from_cloudfront_on_443(plan: Plan) -> None:
    """CloudFront's list weighs 55 of the group's 60 inbound rules: a second reference (port 80) is refused."""
    (rule,) = plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (443, 443, "tcp")
    assert rule.inputs["prefixListId"] == lookup_prefix_list(name=CLOUDFRONT_ORIGIN_FACING)["id"]
    assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs


def test_the_mock_answers_prefix_list_lookups_with_their_real_weight() -> None:
    cloudfront = lookup_prefix_list(name=CLOUDFRONT_ORIGIN_FACING)
    assert (cloudfront["maxEntries"], cloudfront["addressFamily"], cloudfront["ownerId"]) == (55, "IPv4", "AWS")
    assert lookup_prefix_list(id=cloudfront["id"])["name"] == CLOUDFRONT_ORIGIN_FACING
    assert lookup_prefix_list(name="com.amazonaws.us-east-1.s3")["maxEntries"] == 1
    # Like AWS, a name no list has is an error rather than an answer.
    with pytest.raises(ValueError, match="no matching EC2 Managed Prefix List"):
        lookup_prefix_list(name="com.amazonaws.global.cloudfront.origin-facin")


def test_alb_waits_for_the_bucket_policy_that_lets_elb_write_its_logs(prod_plan: Plan) -> None:
    """Enabling access logs makes ELB write a test object: without the grant in place, AWS refuses the ALB."""
    alb = by_name(prod_plan, "load-balancer-alb")
    assert alb.inputs["accessLogs"]["bucket"] == by_name(prod_plan, "storage-logs").outputs["bucket"]
    assert by_name(prod_plan, "storage-logs-policy").urn in alb.dependencies


def test_alb_drops_invalid_headers_logs_and_is_protected_in_prod(plan: Plan, staging_plan: Plan) -> None:
    (alb,) = plan.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["accessLogs"] == {"bucket": plan.outputs["logs_bucket"], "prefix": "alb", "enabled": True}
    assert alb.inputs["enableDeletionProtection"] is True
    assert alb.inputs["internal"] is False
    (staging_alb,) = layer(staging_plan, "load-balancer").of_type("aws:lb/loadBalancer:LoadBalancer")
    assert staging_alb.inputs["enableDeletionProtection"] is False


def test_the_only_listener_is_https_with_a_tls12_policy(plan: Plan) -> None:
    """CloudFront connects https-only: a port-80 listener would have no client."""
    (https,) = plan.of_type("aws:lb/listener:Listener")
    assert (https.inputs["port"], https.inputs["protocol"]) == (443, "HTTPS")
    assert https.inputs["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https.inputs["defaultActions"][0]["fixedResponse"]["statusCode"] == "403"


def test_only_requests_with_the_origin_secret_reach_the_api(plan: Plan) -> None:
    (rule,) = plan.of_type("aws:lb/listenerRule:ListenerRule")
    conditions = rule.inputs["conditions"]
    header = next(c["httpHeader"] for c in conditions if "httpHeader" in c)
    assert header == {"httpHeaderName": "X-Origin-Verify", "values": [SECRET_MASK]}
    paths = next(c["pathPattern"] for c in conditions if "pathPattern" in c)
    assert paths["values"] == ["/api/*", "/health/*"]
    groups = rule.inputs["actions"][0]["forward"]["targetGroups"]
    assert [g["weight"] for g in groups] == [100, 0]  # blue live, green waiting


def test_target_group_health_check_numbers(plan: Plan) -> None:
    for group in plan.of_type("aws:lb/targetGroup:TargetGroup"):
        assert (group.inputs["port"], group.inputs["targetType"], group.inputs["deregistrationDelay"]) == (
            8080,
            "ip",
            30,
        )
        check = group.inputs["healthCheck"]
        assert (check["path"], check["healthyThreshold"], check["unhealthyThreshold"]) == ("/health/live", 2, 3)
        assert (check["interval"], check["timeout"]) == (15, 5)


def test_rolling_stacks_get_one_target_group(staging_plan: Plan) -> None:
    plan = layer(staging_plan, "load-balancer")
    assert len(plan.of_type("aws:lb/targetGroup:TargetGroup")) == 1
    (rule,) = plan.of_type("aws:lb/listenerRule:ListenerRule")
    assert len(rule.inputs["actions"][0]["forward"]["targetGroups"]) == 1
