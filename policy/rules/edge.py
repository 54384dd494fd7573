"""The edge: WAF on CloudFront with managed and rate-based rules, logging, and an ALB only CloudFront uses."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, Stack, StackReport, is_map, items, property_set

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
LOG_DELIVERY_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
LOG_DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"
MANAGED_GROUPS = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet"]

distribution_waf = Rule(
    name="cloudfront-waf-attached",
    area="edge",
    kind="security",
    severity=Severity.HIGH,
    summary="Every CloudFront distribution has a WAF web ACL.",
    seed="seed 002 traffic entry layer (CloudFront + WAF)",
    checks="cdk-nag AwsSolutions-CFR2, Checkov CKV_AWS_68",
    remediation="Set web_acl_id=<aws.wafv2.WebAcl scope CLOUDFRONT, us-east-1>.arn on aws.cloudfront.Distribution in "
    "the edge layer.",
    resource_types=(DISTRIBUTION,),
    check=property_set("webAclId"),
)


def _waf_rules(resource: Resource) -> list[Any]:
    rules = items(resource.get("rules"))
    if not rules and resource.get("ruleJson"):
        rules = items(resource.json("ruleJson"))
    return rules


def _statements(statement: Any) -> list[Any]:
    """A rule statement and every statement nested in and/or/not and scope-downs."""
    if not is_map(statement):
        return []
    found = [statement]
    for key in ("andStatement", "orStatement", "AndStatement", "OrStatement"):
        for nested in items(
            (statement.get(key) or {}).get("statements") or (statement.get(key) or {}).get("Statements")
        ):
            found.extend(_statements(nested))
    return found


@Rule(
    name="waf-managed-rule-groups",
    area="edge",
    kind="security",
    severity=Severity.HIGH,
    summary="Web ACLs run the AWS managed common, known-bad-inputs and SQL-injection rule groups.",
    seed="seed 002 traffic entry layer (WAF managed rules)",
    checks="Checkov CKV_AWS_192 (known bad inputs / Log4j)",
    remediation="Add rules with statement managed_rule_group_statement vendor_name='AWS' and name "
    "AWSManagedRulesCommonRuleSet, AWSManagedRulesKnownBadInputsRuleSet and AWSManagedRulesSQLiRuleSet "
    "(override_action none) to aws.wafv2.WebAcl in the edge layer. The list is the requiredGroups knob.",
    resource_types=(WEB_ACL,),
    config={"requiredGroups": {"type": "array", "items": {"type": "string"}, "default": MANAGED_GROUPS}},
)
def managed_groups(resource: Resource, config: dict[str, Any], report: Report) -> None:
    present = set()
    for rule in _waf_rules(resource):
        for statement in _statements(rule.get("statement") or rule.get("Statement")):
            group = statement.get("managedRuleGroupStatement") or statement.get("ManagedRuleGroupStatement")
            if is_map(group):
                present.add(group.get("name") or group.get("Name"))
    missing = [group for group in config["requiredGroups"] if group not in present]
    if missing:
        report(f"{resource.label}: missing managed rule groups {', '.join(missing)}")


@Rule(
    name="waf-rate-based-rule",
    area="edge",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Web ACLs have a rate-based rule that blocks floods from one client.",
    seed="seed 002 traffic entry layer (WAF rate limiting)",
    checks="",
    remediation="Add a rule with statement rate_based_statement(limit=platform:edge.wafRateLimit, "
    "aggregate_key_type='IP') and action block to aws.wafv2.WebAcl in the edge layer.",
    resource_types=(WEB_ACL,),
)
def rate_rule(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for rule in _waf_rules(resource):
        statement = rule.get("statement") or rule.get("Statement") or {}
        if statement.get("rateBasedStatement") or statement.get("RateBasedStatement"):
            return
    report(f"{resource.label}: no rate-based rule")


@Rule(
    name="waf-logging-enabled",
    area="edge",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Every web ACL has a logging configuration.",
    seed="seed 000 observability objectives, seed 002 WAF",
    checks="Checkov CKV2_AWS_31",
    remediation="Add aws.wafv2.WebAclLoggingConfiguration(resource_arn=<web acl>.arn, log_destination_configs=[<log "
    "group named aws-waf-logs-...>.arn]) in the edge layer.",
    stack=True,
)
def waf_logging(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(acl: Resource) -> None:
        if not stack.referrers(acl, "resourceArn", WAF_LOGGING):
            report(f"{acl.label}: no WebAclLoggingConfiguration", acl.urn)

    stack.check_each(stack.of(WEB_ACL), check)


def _application(resource: Resource) -> bool:
    return (resource.get("loadBalancerType") or "application") == "application"


@Rule(
    name="alb-drops-invalid-headers",
    area="edge",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Application load balancers drop invalid HTTP header fields (request smuggling).",
    seed="seed 002 traffic entry layer (ALB)",
    checks="Checkov CKV_AWS_131",
    remediation="Set drop_invalid_header_fields=True on aws.lb.LoadBalancer in the load-balancer layer.",
    resource_types=(LOAD_BALANCER,),
)
def invalid_headers(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if _application(resource) and resource.get("dropInvalidHeaderFields") is not True:
        report(f"{resource.label}: dropInvalidHeaderFields is not true")


@Rule(
    name="alb-access-logs",
    area="edge",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Load balancers write access logs to S3.",
    seed="seed 000 observability objectives",
    checks="cdk-nag AwsSolutions-ELB2, Checkov CKV_AWS_91",
    remediation="Set access_logs=LoadBalancerAccessLogsArgs(bucket=<log bucket>.bucket, enabled=True) on "
    "aws.lb.LoadBalancer in the load-balancer layer.",
    resource_types=(LOAD_BALANCER,),
)
def alb_logs(resource: Resource, config: dict[str, Any], report: Report) -> None:
    logs = resource.get("accessLogs") or {}
    if logs.get("enabled") is not True or not logs.get("bucket"):
        report(f"{resource.label}: access logs off")


@Rule(
    name="cloudfront-access-logs",
    area="edge",
    kind="security",
    severity=Severity.MEDIUM,
    summary="CloudFront distributions log requests through standard logging v2 (a CloudWatch log delivery source "
    "of ACCESS_LOGS with a delivery), not legacy logging, which needs an ACL grant on the log bucket (issue 17).",
    seed="seed 000 observability objectives",
    checks="cdk-nag AwsSolutions-CFR3, Checkov CKV_AWS_86",
    remediation="Drop logging_config from aws.cloudfront.Distribution; in the edge layer add, in us-east-1, "
    "aws.cloudwatch.LogDeliverySource(resource_arn=<distribution>.arn, log_type='ACCESS_LOGS'), a "
    "LogDeliveryDestination to the logs bucket and a LogDelivery joining them.",
    stack=True,
)
def cloudfront_logs(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(distribution: Resource) -> None:
        if (distribution.get("loggingConfig") or {}).get("bucket"):
            report(f"{distribution.label}: legacy logging (loggingConfig) writes with an ACL grant", distribution.urn)
        sources = [
            source
            for source in stack.referrers(distribution, "resourceArn", LOG_DELIVERY_SOURCE)
            if source.get("logType") == "ACCESS_LOGS"
        ]
        if not sources:
            report(f"{distribution.label}: no ACCESS_LOGS log delivery source", distribution.urn)
        for source in sources:
            if not stack.referrers(source, "deliverySourceName", LOG_DELIVERY):
                report(f"{source.label}: no log delivery from this source", source.urn)

    stack.check_each(stack.of(DISTRIBUTION), check)


def _forwards(actions: Any) -> bool:
    return any(
        action.get("type") in ("forward", "authenticate-oidc", "authenticate-cognito") for action in items(actions)
    )


@Rule(
    name="alb-requires-origin-secret",
    area="edge",
    kind="security",
    severity=Severity.HIGH,
    summary="An internet-facing ALB forwards only requests carrying CloudFront's origin secret header: its HTTPS "
    "listeners default to a fixed 403 and forward through rules with an http-header condition.",
    seed="seed 002 traffic entry layer (the ALB only reachable through CloudFront)",
    checks="",
    remediation="In the load-balancer layer give the HTTPS aws.lb.Listener default_actions=[fixed_response 403] and "
    "add aws.lb.ListenerRule(listener_arn=<listener>.arn, conditions=[http_header(http_header_name=<header>, "
    "values=[<origin secret>])], actions=[forward]); CloudFront sends the header as an origin custom header. "
    "headerName in policy/config/STACK.json pins the header's name.",
    stack=True,
    config={"headerName": {"type": "string", "default": ""}},
)
def origin_secret(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    header = str(config.get("headerName") or "").lower()

    def check(balancer: Resource) -> None:
        if balancer.get("internal") is True or not _application(balancer):
            return
        for listener in stack.referrers(balancer, "loadBalancerArn", LISTENER):
            if listener.get("protocol") != "HTTPS":
                continue
            if _forwards(listener.get("defaultActions")):
                report(
                    f"{listener.label}: the default action forwards requests without the origin secret", listener.urn
                )
            guarded = False
            for rule in stack.referrers(listener, "listenerArn", LISTENER_RULE):
                names = [
                    str((condition.get("httpHeader") or {}).get("httpHeaderName") or "").lower()
                    for condition in items(rule.get("conditions"))
                    if condition.get("httpHeader")
                ]
                has_secret = any(names) and (not header or header in names)
                if _forwards(rule.get("actions")) and not has_secret:
                    report(f"{rule.label}: forwards without an origin-secret header condition", rule.urn)
                guarded = guarded or has_secret
            if not guarded:
                report(f"{listener.label}: no listener rule checks the origin secret header", listener.urn)

    stack.check_each(stack.of(LOAD_BALANCER), check)
