"""The ALB: CloudFront-only ingress, TLS policy, redirect, origin-secret rule, target group numbers."""

from __future__ import annotations

import pytest
from pulumi.runtime import MockCallArgs

from components.load_balancer import CLOUDFRONT_ORIGIN_FACING
from platformctl.mocks import OfflineMocks
from platformctl.plan import SECRET_MASK, Plan, run_program
from tests.components import request_path


def _plan(environment: str = "prod", blue_green: bool = True) -> Plan:
    cfg = request_path.config(environment)
    return run_program(lambda: request_path.load_balancer(cfg, blue_green), project="platform", stack="test")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _plan()


def test_ingress_only_from_cloudfront_on_443_and_80(plan: Plan) -> None:
    rules = plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(r.inputs["fromPort"] for r in rules) == [80, 443]
    # The mock answers each prefix-list name with its own id: this one is CloudFront's origin-facing list.
    cloudfront = OfflineMocks().call(
        MockCallArgs("aws:ec2/getManagedPrefixList:getManagedPrefixList", {"name": CLOUDFRONT_ORIGIN_FACING}, "")
    )
    for rule in rules:
        assert rule.inputs["prefixListId"] == cloudfront["id"]
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs


def test_alb_drops_invalid_headers_logs_and_is_protected_in_prod(plan: Plan) -> None:
    (alb,) = plan.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["accessLogs"] == {"bucket": "platform-test-logs", "prefix": "alb", "enabled": True}
    assert alb.inputs["enableDeletionProtection"] is True
    assert alb.inputs["internal"] is False
    (staging_alb,) = _plan("staging", blue_green=False).of_type("aws:lb/loadBalancer:LoadBalancer")
    assert staging_alb.inputs["enableDeletionProtection"] is False


def test_https_listener_tls_policy_and_http_redirect(plan: Plan) -> None:
    listeners = {listener.inputs["port"]: listener for listener in plan.of_type("aws:lb/listener:Listener")}
    https, http = listeners[443], listeners[80]
    assert https.inputs["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https.inputs["defaultActions"][0]["fixedResponse"]["statusCode"] == "403"
    (redirect,) = http.inputs["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}


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


def test_rolling_stacks_get_one_target_group() -> None:
    plan = _plan("staging", blue_green=False)
    assert len(plan.of_type("aws:lb/targetGroup:TargetGroup")) == 1
    (rule,) = plan.of_type("aws:lb/listenerRule:ListenerRule")
    assert len(rule.inputs["actions"][0]["forward"]["targetGroups"]) == 1
