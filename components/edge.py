"""The edge layer: CloudFront in front of everything, WAF on it, Route 53 names and health checks."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.certificates import dns_validated_certificate
from components.load_balancer import ORIGIN_SECRET_HEADER
from components.naming import Naming, child_options
from components.security import EDGE_REGION
from stack_config.schema import EdgeConfig

# AWS managed CloudFront policies (ids are fixed by AWS).
CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_ORIGIN_REQUEST_POLICY_ID = "216adef6-5c7f-47e4-b989-5492eafa07d3"
SECURITY_HEADERS_RESPONSE_POLICY_ID = "67f7725c-6f97-4210-82d7-5512b31e9d03"
ONE_YEAR_SECONDS = 31_536_000
ONE_DAY_SECONDS = 86_400
PRODUCTS_TTL_SECONDS = 300  # the seeds: product data cached 5 minutes
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
READ_METHODS = ["GET", "HEAD"]
STATIC_PATH = "/static/*"
PRODUCTS_PATH = "/api/products/*"
UNCACHED_API_PATHS = ("/api/user/*", "/api/checkout/*")
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
ALB_ORIGIN, ASSETS_ORIGIN = "alb", "assets"
HEALTH_CHECK_FAILURE_THRESHOLD = 3
HEALTH_CHECK_INTERVAL_SECONDS = 30


@dataclass(frozen=True)
class EdgeArgs:
    naming: Naming
    config: EdgeConfig
    zone_id: pulumi.Input[str]
    alb_origin_domain: str
    origin_secret: pulumi.Input[str]
    assets_bucket_regional_domain_name: pulumi.Input[str]
    logs_bucket_domain_name: pulumi.Input[str]
    health_path: str
    log_retention_days: int
    waf_logs_key_arn: pulumi.Input[str]


class Edge(pulumi.ComponentResource):
    """CloudFront (TLS 1.2+, HTTP/2 and 3) with four cache behaviours, a WAF ACL and DNS records."""

    distribution: aws.cloudfront.Distribution
    web_acl: aws.wafv2.WebAcl
    origin_access_control: aws.cloudfront.OriginAccessControl
    health_check: aws.route53.HealthCheck

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
            parameters_in_cache_key_and_forwarded_to_origin=_cache_key(query_strings="none"),
            opts=child_options(self),
        )
        products_policy = aws.cloudfront.CachePolicy(
            f"{name}-products-cache",
            name=naming.name("products"),
            comment="Product data: 5 minutes, query strings in the key",
            min_ttl=0,
            default_ttl=PRODUCTS_TTL_SECONDS,
            max_ttl=PRODUCTS_TTL_SECONDS,
            parameters_in_cache_key_and_forwarded_to_origin=_cache_key(query_strings="all"),
            opts=child_options(self),
        )
        ordered = [
            _behavior(STATIC_PATH, ASSETS_ORIGIN, READ_METHODS, cache_policy_id=static_policy.id),
            _behavior(PRODUCTS_PATH, ALB_ORIGIN, ALL_METHODS, cache_policy_id=products_policy.id),
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
            logging_config=aws.cloudfront.DistributionLoggingConfigArgs(
                bucket=args.logs_bucket_domain_name, prefix="cloudfront/", include_cookies=False
            ),
            tags=naming.tags("distribution"),
            opts=child_options(self),
        )
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
        for record_type in ("A", "AAAA"):
            self._alias_record(record_type, config, args.zone_id)
        self.register_outputs(
            {
                "distribution_id": self.distribution.id,
                "distribution_arn": self.distribution.arn,
                "distribution_domain_name": self.distribution.domain_name,
                "web_acl_arn": self.web_acl.arn,
                "site_url": f"https://{config.domain}",
            }
        )

    def _web_acl(self, config: EdgeConfig, opts: pulumi.ResourceOptions) -> aws.wafv2.WebAcl:
        prefix = self._name
        rules = [
            aws.wafv2.WebAclRuleArgs(
                name=group,
                priority=priority,
                # Managed groups keep their own block actions.
                override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                    none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()  # type: ignore[no-untyped-call]
                ),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                        name=group, vendor_name="AWS"
                    )
                ),
                visibility_config=_rule_visibility(group),
            )
            for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1)
        ]
        rules.insert(
            0,
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
        )
        return aws.wafv2.WebAcl(
            f"{prefix}-waf",
            scope="CLOUDFRONT",
            description="Managed OWASP rule groups and a per-IP rate limit",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
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


def _cache_key(query_strings: str) -> aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs:
    return aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs(
        enable_accept_encoding_gzip=True,
        enable_accept_encoding_brotli=True,
        cookies_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfigArgs(
            cookie_behavior="none"
        ),
        headers_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigArgs(
            header_behavior="none"
        ),
        query_strings_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigArgs(
            query_string_behavior=query_strings
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
