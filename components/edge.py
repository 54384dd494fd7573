"""The edge layer: CloudFront in front of everything, WAF on it, Route 53 names and health checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from app import contract
from components.certificates import dns_validated_certificate
from components.load_balancer import ORIGIN_SECRET_HEADER, LoadBalancer
from components.naming import Naming, child_options
from components.security import EDGE_REGION
from stack_config.schema import EdgeConfig

if TYPE_CHECKING:
    from components.context import StackContext
    from components.messaging import Messaging
    from components.storage import Storage

# AWS managed CloudFront policies (ids are fixed by AWS).
CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_ORIGIN_REQUEST_POLICY_ID = "216adef6-5c7f-47e4-b989-5492eafa07d3"
SECURITY_HEADERS_RESPONSE_POLICY_ID = "67f7725c-6f97-4210-82d7-5512b31e9d03"
ONE_YEAR_SECONDS = 31_536_000
ONE_DAY_SECONDS = 86_400
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
READ_METHODS = ["GET", "HEAD"]
STATIC_PATH = "/static/*"
# A path pattern's `*` needs the text around it to match, so "/api/products/*" alone misses the list itself.
PRODUCTS_PATHS = ("/api/products", "/api/products/*")
# Product reads are the same for every caller; CloudFront still forwards Origin so that a CORS answer is cached
# per origin, not served to another one.
PRODUCTS_CACHE_KEY_HEADERS = ("Origin",)
UNCACHED_API_PATHS = ("/api/user/*", "/api/checkout/*")
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
# The common rule set blocks bodies over 8 KB (SizeRestrictions_BODY): counted instead, because BODY_SIZE_RULE
# enforces the app's own limit, contract.MAX_REQUEST_BYTES.
COMMON_RULE_SET, COMMON_RULE_SET_BODY_SIZE_RULE = "AWSManagedRulesCommonRuleSet", "SizeRestrictions_BODY"
BODY_SIZE_RULE = "body-size-limit"
# What a CloudFront web ACL can forward to WAF for body inspection (AssociationConfig), smallest first; 16 KB is
# the default and the base price.
CLOUDFRONT_BODY_INSPECTION_LIMITS = {16 * 1024: "KB_16", 32 * 1024: "KB_32", 48 * 1024: "KB_48", 64 * 1024: "KB_64"}
ALB_ORIGIN, ASSETS_ORIGIN = "alb", "assets"
HEALTH_CHECK_FAILURE_THRESHOLD = 3
HEALTH_CHECK_INTERVAL_SECONDS = 30
ACCESS_LOG_FORMAT = "w3c"


@dataclass(frozen=True)
class EdgeArgs:
    naming: Naming
    config: EdgeConfig
    zone_id: pulumi.Input[str]
    alb_origin_domain: str
    origin_secret: pulumi.Input[str]
    assets_bucket_regional_domain_name: pulumi.Input[str]
    # Where CloudWatch Logs delivers CloudFront's access logs: an S3 bucket ARN and prefix.
    access_logs_destination_arn: pulumi.Input[str]
    health_path: str
    log_retention_days: int
    waf_logs_key_arn: pulumi.Input[str]
    # What the log delivery must wait for although it takes no output of it: the logs bucket's policy that admits
    # CloudWatch Logs' delivery service (the delivery checks it when it is created).
    log_delivery_waits_for: Sequence[pulumi.Resource] = ()
    # Pages when the health check fails. Route 53 publishes its metric in us-east-1 only, and an alarm notifies
    # topics of its own region: without a topic there, no alarm.
    health_alarm_topic_arn: pulumi.Input[str] | None = None

    @classmethod
    def for_stack(
        cls, stack: StackContext, load_balancer: LoadBalancer, storage: Storage, messaging: Messaging
    ) -> EdgeArgs:
        """CloudFront in front of the load balancer's origin name and the assets bucket, logging to the logs bucket;
        the health check's alarm to the page topic when that topic is in the edge region."""
        return cls(
            naming=stack.naming,
            config=stack.config.edge,
            zone_id=load_balancer.zone_id,
            alb_origin_domain=load_balancer.origin_domain,
            origin_secret=stack.security.origin_verify_value,
            assets_bucket_regional_domain_name=storage.assets_bucket.bucket_regional_domain_name,
            access_logs_destination_arn=storage.cloudfront_logs_destination_arn,
            health_path=contract.HEALTH_LIVE_PATH,
            log_retention_days=stack.logs.retention_days,
            waf_logs_key_arn=stack.security.edge_logs_key_arn,
            log_delivery_waits_for=[storage.logs_bucket_policy],
            health_alarm_topic_arn=messaging.page_topic.arn if stack.config.region == EDGE_REGION else None,
        )


class Edge(pulumi.ComponentResource):
    """CloudFront (TLS 1.2+, HTTP/2 and 3) with four cache behaviours, a WAF ACL and DNS records."""

    distribution: aws.cloudfront.Distribution
    # CloudFront standard logging v2: the distribution's access logs delivered by CloudWatch Logs to S3.
    access_log_delivery: aws.cloudwatch.LogDelivery
    web_acl: aws.wafv2.WebAcl
    origin_access_control: aws.cloudfront.OriginAccessControl
    health_check: aws.route53.HealthCheck
    health_alarm: aws.cloudwatch.MetricAlarm | None

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:edge:Edge", name, None, opts)
        self._name, naming, config = name, args.naming, args.config
        edge_provider = aws.Provider(
            f"{name}-{EDGE_REGION}",
            region=EDGE_REGION,
            default_tags=aws.ProviderDefaultTagsArgs(tags=naming.base_tags),
            opts=child_options(self),
        )
        in_edge_region = child_options(self, provider=edge_provider)
        certificate = dns_validated_certificate(
            f"{name}-certificate",
            parent=self,
            naming=naming,
            domain=config.domain,
            alternative_names=[],
            zone_id=args.zone_id,
            provider=edge_provider,
        )
        self.web_acl = self._web_acl(config, in_edge_region)
        waf_logs = aws.cloudwatch.LogGroup(
            f"{name}-waf-logs",
            name=f"aws-waf-logs-{naming.prefix}",  # WAF only delivers to groups named aws-waf-logs-*
            retention_in_days=args.log_retention_days,
            kms_key_id=args.waf_logs_key_arn,
            tags=naming.tags("waf-logs"),
            opts=in_edge_region,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-waf-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[waf_logs.arn],
            opts=in_edge_region,
        )
        self.origin_access_control = aws.cloudfront.OriginAccessControl(
            f"{name}-assets-oac",
            name=naming.name("assets"),
            description="CloudFront signs every request to the assets bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child_options(self),
        )
        static_policy = aws.cloudfront.CachePolicy(
            f"{name}-static-cache",
            name=naming.name("static"),
            comment="Static assets: one year, compressed",
            min_ttl=ONE_DAY_SECONDS,
            default_ttl=ONE_YEAR_SECONDS,
            max_ttl=ONE_YEAR_SECONDS,
            parameters_in_cache_key_and_forwarded_to_origin=_cache_key(query_strings=None),
            opts=child_options(self),
        )
        # The app answers product reads with `Cache-Control: public, max-age=<the same TTL>`; min 0 keeps its
        # `no-store` errors out of the cache.
        products_policy = aws.cloudfront.CachePolicy(
            f"{name}-products-cache",
            name=naming.name("products"),
            comment="Product reads: the API TTL, its list query parameters and Origin in the key",
            min_ttl=0,
            default_ttl=contract.PRODUCT_CACHE_TTL_SECONDS,
            max_ttl=contract.PRODUCT_CACHE_TTL_SECONDS,
            parameters_in_cache_key_and_forwarded_to_origin=_cache_key(
                query_strings=contract.PRODUCT_LIST_QUERY_PARAMETERS, headers=PRODUCTS_CACHE_KEY_HEADERS
            ),
            opts=child_options(self),
        )
        ordered = [
            _behavior(STATIC_PATH, ASSETS_ORIGIN, READ_METHODS, cache_policy_id=static_policy.id),
            *[_behavior(path, ALB_ORIGIN, ALL_METHODS, cache_policy_id=products_policy.id) for path in PRODUCTS_PATHS],
            *[
                _behavior(
                    path,
                    ALB_ORIGIN,
                    ALL_METHODS,
                    cache_policy_id=CACHING_DISABLED_POLICY_ID,
                    origin_request_policy_id=ALL_VIEWER_ORIGIN_REQUEST_POLICY_ID,
                )
                for path in UNCACHED_API_PATHS
            ],
        ]
        self.distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            enabled=True,
            comment=f"{naming.prefix} site",
            aliases=[config.domain],
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class=config.price_class,
            web_acl_id=self.web_acl.arn,
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=ALB_ORIGIN,
                    domain_name=args.alb_origin_domain,
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                    ),
                    # The ALB forwards only requests that carry this header: nobody can bypass the edge.
                    custom_headers=[
                        aws.cloudfront.DistributionOriginCustomHeaderArgs(
                            name=ORIGIN_SECRET_HEADER, value=args.origin_secret
                        )
                    ],
                ),
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=ASSETS_ORIGIN,
                    domain_name=args.assets_bucket_regional_domain_name,
                    origin_access_control_id=self.origin_access_control.id,
                    s3_origin_config=aws.cloudfront.DistributionOriginS3OriginConfigArgs(origin_access_identity=""),
                ),
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=ALB_ORIGIN,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=ALL_METHODS,
                cached_methods=READ_METHODS,
                compress=True,
                response_headers_policy_id=SECURITY_HEADERS_RESPONSE_POLICY_ID,
                cache_policy_id=CACHING_DISABLED_POLICY_ID,
                origin_request_policy_id=ALL_VIEWER_ORIGIN_REQUEST_POLICY_ID,
            ),
            ordered_cache_behaviors=ordered,
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=certificate.certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version="TLSv1.2_2021",
            ),
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            tags=naming.tags("distribution"),
            # The origin secret rotates (rotation/origin_secret.py): the header value is seeded, then its Lambda's.
            opts=child_options(self, ignore_changes=["origins[0].customHeaders[0].value"]),
        )
        self.access_log_delivery = self._access_log_delivery(args, in_edge_region)
        self.health_check = aws.route53.HealthCheck(
            f"{name}-health",
            type="HTTPS",
            fqdn=config.domain,
            port=443,
            resource_path=args.health_path,
            enable_sni=True,
            failure_threshold=HEALTH_CHECK_FAILURE_THRESHOLD,
            request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
            measure_latency=True,
            tags=naming.tags("health"),
            opts=child_options(self),
        )
        self.health_alarm = (
            aws.cloudwatch.MetricAlarm(
                f"{name}-health-alarm",
                name=naming.name("edge-health"),
                alarm_description=f"Route 53 finds https://{config.domain}{args.health_path} down",
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": self.health_check.id},
                statistic="Minimum",
                period=60,
                # The health check already waits for HEALTH_CHECK_FAILURE_THRESHOLD failed probes.
                evaluation_periods=1,
                comparison_operator="LessThanThreshold",
                threshold=1,
                alarm_actions=[args.health_alarm_topic_arn],
                ok_actions=[args.health_alarm_topic_arn],
                tags=naming.tags("edge-health"),
                opts=in_edge_region,
            )
            if args.health_alarm_topic_arn is not None
            else None
        )
        for record_type in ("A", "AAAA"):
            self._alias_record(record_type, config, args.zone_id)
        self.register_outputs(
            {
                "distribution_id": self.distribution.id,
                "distribution_arn": self.distribution.arn,
                "access_log_delivery_id": self.access_log_delivery.id,
                "distribution_domain_name": self.distribution.domain_name,
                "web_acl_arn": self.web_acl.arn,
                "site_url": f"https://{config.domain}",
            }
        )

    def _access_log_delivery(self, args: EdgeArgs, opts: pulumi.ResourceOptions) -> aws.cloudwatch.LogDelivery:
        """Access logs through CloudWatch Logs' delivery (the source lives in CloudFront's region, us-east-1): it
        writes with the bucket policy's grant, where legacy logging needed an ACL grant on the logs bucket."""
        naming = args.naming
        source = aws.cloudwatch.LogDeliverySource(
            f"{self._name}-access-logs-source",
            name=naming.name("cloudfront-access"),
            resource_arn=self.distribution.arn,
            log_type="ACCESS_LOGS",
            tags=naming.tags("cloudfront-access"),
            opts=opts,
        )
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{self._name}-access-logs-destination",
            name=naming.name("cloudfront-access-s3"),
            # W3C: the fields and layout of legacy logging, so existing log queries keep working.
            output_format=ACCESS_LOG_FORMAT,
            delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
                destination_resource_arn=args.access_logs_destination_arn
            ),
            tags=naming.tags("cloudfront-access-s3"),
            opts=opts,
        )
        return aws.cloudwatch.LogDelivery(
            f"{self._name}-access-logs",
            delivery_source_name=source.name,
            delivery_destination_arn=destination.arn,
            tags=naming.tags("cloudfront-access"),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=list(args.log_delivery_waits_for))
            ),
        )

    def _web_acl(self, config: EdgeConfig, opts: pulumi.ResourceOptions) -> aws.wafv2.WebAcl:
        prefix = self._name
        first_rules = [
            aws.wafv2.WebAclRuleArgs(
                name="rate-limit-per-ip",
                priority=0,
                action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        limit=config.waf_rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=_rule_visibility("rate-limit-per-ip"),
            ),
            _body_size_rule(priority=1, max_bytes=contract.MAX_REQUEST_BYTES),
        ]
        managed = [
            _managed_group_rule(group, priority) for priority, group in enumerate(MANAGED_RULE_GROUPS, len(first_rules))
        ]
        inspection_limit = cloudfront_body_inspection_limit(contract.MAX_REQUEST_BYTES)
        return aws.wafv2.WebAcl(
            f"{prefix}-waf",
            scope="CLOUDFRONT",
            # WAF descriptions allow letters, digits, spaces and + = : # @ / - , . only.
            description="Managed OWASP rule groups, the API body size limit and a per-IP rate limit",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=[*first_rules, *managed],
            association_config=aws.wafv2.WebAclAssociationConfigArgs(
                request_bodies=[
                    aws.wafv2.WebAclAssociationConfigRequestBodyArgs(
                        cloudfront=aws.wafv2.WebAclAssociationConfigRequestBodyCloudfrontArgs(
                            default_size_inspection_limit=inspection_limit
                        )
                    )
                ]
            ),
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=f"{prefix}-waf", sampled_requests_enabled=True
            ),
            opts=opts,
        )

    def _alias_record(self, record_type: str, config: EdgeConfig, zone_id: pulumi.Input[str]) -> None:
        latency = config.latency_routing_region
        aws.route53.Record(
            f"{self._name}-{record_type.lower()}",
            zone_id=zone_id,
            name=config.domain,
            type=record_type,
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=self.distribution.domain_name,
                    zone_id=self.distribution.hosted_zone_id,
                    evaluate_target_health=False,
                )
            ],
            # With a region named, records are latency-routed and health-checked, ready for a second region.
            set_identifier=latency,
            latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=latency)] if latency else None,
            health_check_id=self.health_check.id if latency else None,
            opts=child_options(self),
        )


def cloudfront_body_inspection_limit(max_body_bytes: int) -> str:
    """The smallest CloudFront body inspection setting that lets WAF see all of a body the app accepts."""
    for limit_bytes, setting in sorted(CLOUDFRONT_BODY_INSPECTION_LIMITS.items()):
        if max_body_bytes <= limit_bytes:
            return setting
    largest = max(CLOUDFRONT_BODY_INSPECTION_LIMITS)
    raise ValueError(
        f"app/contract.py MAX_REQUEST_BYTES: a CloudFront web ACL inspects at most {largest} bytes of a body,"
        f" so the app must accept no more (got {max_body_bytes})"
    )


def _body_size_rule(priority: int, max_bytes: int) -> aws.wafv2.WebAclRuleArgs:
    """Block bodies the app would refuse with a 413, before any rule inspects them.

    A body past the inspection limit reaches WAF truncated, so its size would look within bounds: oversize
    handling MATCH counts it as too large.
    """
    return aws.wafv2.WebAclRuleArgs(
        name=BODY_SIZE_RULE,
        priority=priority,
        action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
        statement=aws.wafv2.WebAclRuleStatementArgs(
            size_constraint_statement=aws.wafv2.WebAclRuleStatementSizeConstraintStatementArgs(
                comparison_operator="GT",
                size=max_bytes,
                field_to_match=aws.wafv2.WebAclRuleStatementSizeConstraintStatementFieldToMatchArgs(
                    body=aws.wafv2.WebAclRuleStatementSizeConstraintStatementFieldToMatchBodyArgs(
                        oversize_handling="MATCH"
                    )
                ),
                text_transformations=[
                    aws.wafv2.WebAclRuleStatementSizeConstraintStatementTextTransformationArgs(priority=0, type="NONE")
                ],
            )
        ),
        visibility_config=_rule_visibility(BODY_SIZE_RULE),
    )


def _managed_group_rule(group: str, priority: int) -> aws.wafv2.WebAclRuleArgs:
    waf = aws.wafv2
    counted = [COMMON_RULE_SET_BODY_SIZE_RULE] if group == COMMON_RULE_SET else []
    overrides = [
        waf.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
            name=rule,
            action_to_use=waf.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
                count=waf.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()
            ),
        )
        for rule in counted
    ]
    return waf.WebAclRuleArgs(
        name=group,
        priority=priority,
        # Managed groups keep their own block actions, but for the rules counted above.
        override_action=waf.WebAclRuleOverrideActionArgs(
            none=waf.WebAclRuleOverrideActionNoneArgs()  # type: ignore[no-untyped-call]
        ),
        statement=waf.WebAclRuleStatementArgs(
            managed_rule_group_statement=waf.WebAclRuleStatementManagedRuleGroupStatementArgs(
                name=group, vendor_name="AWS", rule_action_overrides=overrides or None
            )
        ),
        visibility_config=_rule_visibility(group),
    )


def _cache_key(
    query_strings: Sequence[str] | None, headers: Sequence[str] = ()
) -> aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs:
    """Only what the cache key names reaches the origin: no query string when None, else only those named."""
    cf = aws.cloudfront
    header_items = cf.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigHeadersArgs(items=list(headers))
    query_items = cf.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigQueryStringsArgs(
        items=list(query_strings or ())
    )
    return cf.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs(
        enable_accept_encoding_gzip=True,
        enable_accept_encoding_brotli=True,
        cookies_config=cf.CachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfigArgs(cookie_behavior="none"),
        headers_config=cf.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigArgs(
            header_behavior="whitelist" if headers else "none", headers=header_items if headers else None
        ),
        query_strings_config=cf.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigArgs(
            query_string_behavior="whitelist" if query_strings else "none",
            query_strings=query_items if query_strings else None,
        ),
    )


def _behavior(
    path: str,
    origin: str,
    methods: list[str],
    *,
    cache_policy_id: pulumi.Input[str],
    origin_request_policy_id: pulumi.Input[str] | None = None,
) -> aws.cloudfront.DistributionOrderedCacheBehaviorArgs:
    return aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
        path_pattern=path,
        target_origin_id=origin,
        viewer_protocol_policy="redirect-to-https",
        allowed_methods=methods,
        cached_methods=READ_METHODS,
        compress=True,
        cache_policy_id=cache_policy_id,
        origin_request_policy_id=origin_request_policy_id,
        response_headers_policy_id=SECURITY_HEADERS_RESPONSE_POLICY_ID,
    )


def _rule_visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
    return aws.wafv2.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )
