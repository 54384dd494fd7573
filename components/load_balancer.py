"""The load balancer layer: an internet-facing ALB that only CloudFront can reach, over HTTPS only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.certificates import dns_validated_certificate
from components.naming import Naming, child_options
from components.storage import ALB_LOG_PREFIX

# CloudFront reaches the origin https-only, so the ALB listens on HTTPS alone: a port-80 rule from
# CloudFront's prefix list would cost another 55 rules of the group's quota of 60 and serve nobody.
HTTPS = 443
# TLS 1.3 with TLS 1.2 fallback, no older protocols.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ORIGIN_SECRET_HEADER = "X-Origin-Verify"  # noqa: S105 (a header name)
# Target group health check and draining, from the seeds.
HEALTHY_THRESHOLD, UNHEALTHY_THRESHOLD = 2, 3
HEALTH_CHECK_INTERVAL_SECONDS, HEALTH_CHECK_TIMEOUT_SECONDS = 15, 5
DEREGISTRATION_DELAY_SECONDS = 30
FORWARD_RULE_PRIORITY = 10
# The AWS-managed prefix list of CloudFront's origin-facing addresses.
CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"


@dataclass(frozen=True)
class LoadBalancerArgs:
    naming: Naming
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    zone_id: pulumi.Input[str]
    origin_domain: str  # the name CloudFront connects to, e.g. origin.shop.example.com
    site_domain: str
    origin_secret: pulumi.Input[str]
    app_port: int
    health_path: str
    routed_paths: Sequence[str]
    access_logs_bucket: pulumi.Input[str]
    deletion_protection: bool
    blue_green: bool
    # The bucket policy that lets ELB write there: enabling access logs writes a test object at once,
    # so the ALB waits for it (before it, a fresh deploy can fail with "Access Denied for bucket").
    access_logs_grant: pulumi.Resource | None = None


class LoadBalancer(pulumi.ComponentResource):
    """ALB in the public subnets: HTTPS only, from CloudFront's prefix list only, origin secret required.

    Requests that lack the origin secret header, or ask for anything but the routed paths, get 403.
    With `blue_green`, a second target group lets ECS shift the forwarding rule between them.
    """

    security_group: aws.ec2.SecurityGroup
    alb: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    alternate_target_group: aws.lb.TargetGroup | None
    https_listener: aws.lb.Listener
    forward_rule: aws.lb.ListenerRule

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:load_balancer:LoadBalancer", name, None, opts)
        naming = args.naming
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="ALB: HTTPS from CloudFront only",
            tags=naming.tags("alb"),
            opts=child_options(self),
        )
        cloudfront = aws.ec2.get_managed_prefix_list_output(
            name=CLOUDFRONT_ORIGIN_FACING, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        # The managed list counts as its max entries (55) against the group's 60 inbound rules: one
        # reference is all the group can hold (the `security-group-rule-quota` policy rule weighs it).
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cloudfront-{HTTPS}",
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            prefix_list_id=cloudfront.id,
            # EC2 refuses an apostrophe in a rule description.
            description=f"{HTTPS} from the CloudFront origin-facing prefix list",
            opts=child_options(self),
        )
        certificate = dns_validated_certificate(
            f"{name}-certificate",
            parent=self,
            naming=naming,
            domain=args.origin_domain,
            alternative_names=[args.site_domain],
            zone_id=args.zone_id,
        )
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.deletion_protection,
            enable_http2=True,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=args.access_logs_bucket, prefix=ALB_LOG_PREFIX, enabled=True
            ),
            tags=naming.tags("alb"),
            opts=child_options(self, depends_on=[args.access_logs_grant] if args.access_logs_grant else []),
        )
        # The name CloudFront connects to; the certificate covers it and the site's own name.
        aws.route53.Record(
            f"{name}-origin-record",
            zone_id=args.zone_id,
            name=args.origin_domain,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=self.alb.dns_name, zone_id=self.alb.zone_id, evaluate_target_health=True
                )
            ],
            opts=child_options(self),
        )
        self.target_group = self._target_group(f"{name}-api", "api", args)
        self.alternate_target_group = (
            self._target_group(f"{name}-api-green", "api-green", args) if args.blue_green else None
        )
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.alb.arn,
            port=HTTPS,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=certificate.certificate_arn,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="fixed-response",
                    fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                        content_type="text/plain", message_body="Forbidden", status_code="403"
                    ),
                )
            ],
            tags=naming.tags("alb", "https"),
            opts=child_options(self),
        )
        weighted = [aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=self.target_group.arn, weight=100)]
        if self.alternate_target_group is not None:
            weighted.append(
                aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=self.alternate_target_group.arn, weight=0)
            )
        self.forward_rule = aws.lb.ListenerRule(
            f"{name}-forward-api",
            listener_arn=self.https_listener.arn,
            priority=FORWARD_RULE_PRIORITY,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                        http_header_name=ORIGIN_SECRET_HEADER, values=[args.origin_secret]
                    )
                ),
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=list(args.routed_paths))
                ),
            ],
            actions=[
                aws.lb.ListenerRuleActionArgs(
                    type="forward", forward=aws.lb.ListenerRuleActionForwardArgs(target_groups=weighted)
                )
            ],
            tags=naming.tags("alb", "forward-api"),
            # ECS moves the weights during a blue/green deployment; the program must not move them back.
            opts=child_options(self, ignore_changes=["actions"] if args.blue_green else []),
        )
        self.register_outputs(
            {
                "alb_arn": self.alb.arn,
                "alb_dns_name": self.alb.dns_name,
                "alb_arn_suffix": self.alb.arn_suffix,
                "target_group_arn": self.target_group.arn,
                "target_group_arn_suffix": self.target_group.arn_suffix,
                "security_group_id": self.security_group.id,
            }
        )

    def _target_group(self, name: str, label: str, args: LoadBalancerArgs) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            name,
            port=args.app_port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=args.health_path,
                protocol="HTTP",
                port="traffic-port",
                matcher="200",
                healthy_threshold=HEALTHY_THRESHOLD,
                unhealthy_threshold=UNHEALTHY_THRESHOLD,
                interval=HEALTH_CHECK_INTERVAL_SECONDS,
                timeout=HEALTH_CHECK_TIMEOUT_SECONDS,
            ),
            tags=args.naming.tags(label, "tg"),
            opts=child_options(self),
        )
