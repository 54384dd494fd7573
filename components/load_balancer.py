"""The load balancer layer: an internet-facing ALB that only CloudFront can reach, over HTTPS only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pulumi
import pulumi_aws as aws

from app import contract
from components.alarms import ALB, AlarmSet, Alerting, RequestPathMetrics, query
from components.certificates import dns_validated_certificate
from components.naming import Naming, child_options
from components.storage import ALB_LOG_PREFIX, Storage

if TYPE_CHECKING:
    from components.context import StackContext
    from components.network import Network

# CloudFront reaches the origin https-only, so the ALB listens on HTTPS alone: a port-80 rule from
# CloudFront's prefix list would cost another 55 rules of the group's quota of 60 and serve nobody.
HTTPS = 443
# TLS 1.3 with TLS 1.2 fallback, no older protocols.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ORIGIN_SECRET_HEADER = "X-Origin-Verify"  # noqa: S105 (a header name)
# The forwarding rule's header values, as an `ignore_changes` path: its first condition is the header's.
ORIGIN_SECRET_VALUES = "conditions[0].httpHeader.values"  # noqa: S105 (a property path)
# Target group health check and draining, from the seeds.
HEALTHY_THRESHOLD, UNHEALTHY_THRESHOLD = 2, 3
HEALTH_CHECK_INTERVAL_SECONDS, HEALTH_CHECK_TIMEOUT_SECONDS = 15, 5
DEREGISTRATION_DELAY_SECONDS = 30
FORWARD_RULE_PRIORITY = 10
# The AWS-managed prefix list of CloudFront's origin-facing addresses.
CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
# p99 latency alarms when 3 of 5 minutes are slow: a single slow minute is noise.
LATENCY_DATAPOINTS = 3
# The alarms whose breach during a deployment makes ECS roll the API back: the site is failing.
ROLLBACK_ALARMS = ("alb-5xx", "target-5xx")


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
    # The request-path alarms (ALB 5xx, target 5xx, p99 latency), when given where to send them.
    alerting: Alerting | None = None

    @classmethod
    def for_stack(
        cls,
        stack: StackContext,
        network: Network,
        storage: Storage,
        zone_id: pulumi.Input[str],
        *,
        routed_paths: Sequence[str],
        alerting: Alerting | None,
    ) -> LoadBalancerArgs:
        """In the public subnets, answering `origin.<domain>` for the API's port, logging to the logs bucket."""
        config = stack.config
        return cls(
            naming=stack.naming,
            vpc_id=network.vpc.id,
            public_subnet_ids=network.subnet_ids("public"),
            zone_id=zone_id,
            origin_domain=f"origin.{config.edge.domain}",
            site_domain=config.edge.domain,
            origin_secret=stack.security.origin_verify_value,
            app_port=contract.API_PORT,
            health_path=contract.HEALTH_LIVE_PATH,
            routed_paths=routed_paths,
            access_logs_bucket=storage.logs_bucket.bucket,
            access_logs_grant=storage.logs_bucket_policy,
            deletion_protection=config.environment == "prod",
            # Canary and linear shift traffic between the same two target groups as blue/green.
            blue_green=config.services.api.deployment.shifts_traffic,
            alerting=alerting,
        )


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
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    # The name CloudFront connects to, in the hosted zone `zone_id`.
    origin_domain: str
    zone_id: pulumi.Input[str]
    # The paths the forwarding rule admits (the origin secret's rotation writes them back with the header).
    routed_paths: tuple[str, ...]

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:load_balancer:LoadBalancer", name, None, opts)
        naming = args.naming
        self.origin_domain, self.zone_id = args.origin_domain, args.zone_id
        self.routed_paths = tuple(args.routed_paths)
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
            # ECS moves the weights during a blue/green deployment, and the origin secret's rotation moves the
            # header values (both values during the switch, then the new one): the program must not move either back.
            opts=child_options(self, ignore_changes=[ORIGIN_SECRET_VALUES, *(["actions"] if args.blue_green else [])]),
        )
        self.alarms = (
            request_path_alarms(AlarmSet(self, name, naming, args.alerting), self.metrics) if args.alerting else {}
        )
        self.register_outputs(
            {
                "alarm_arns": {label: alarm.arn for label, alarm in self.alarms.items()},
                "alb_arn": self.alb.arn,
                "alb_dns_name": self.alb.dns_name,
                "alb_arn_suffix": self.alb.arn_suffix,
                "target_group_arn": self.target_group.arn,
                "target_group_arn_suffix": self.target_group.arn_suffix,
                "security_group_id": self.security_group.id,
            }
        )

    @property
    def target_groups(self) -> list[aws.lb.TargetGroup]:
        """Every group that serves production at some point: after a blue/green swap it is the alternate."""
        return [self.target_group, *([self.alternate_target_group] if self.alternate_target_group else [])]

    @property
    def metrics(self) -> RequestPathMetrics:
        return RequestPathMetrics(self.alb.arn_suffix, [group.arn_suffix for group in self.target_groups])

    @property
    def rollback_alarm_names(self) -> list[pulumi.Output[str]]:
        """A deployment that makes the site fail is rolled back: the alarms ECS watches while it deploys."""
        return [self.alarms[label].name for label in ROLLBACK_ALARMS if label in self.alarms]

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


def request_path_alarms(alarms: AlarmSet, metrics: RequestPathMetrics) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """ALB 5xx, the API's 5xx and its p99 latency, over every target group the API serves from."""
    thresholds = alarms.thresholds
    # ELB-generated errors are the load balancer's own: one series whichever group serves.
    alarms.metric(
        "alb-5xx",
        f"The load balancer answered more than {thresholds.alb_5xx_per_minute} 5xx a minute",
        namespace=ALB,
        metric="HTTPCode_ELB_5XX_Count",
        dimensions={"LoadBalancer": metrics.alb_arn_suffix},
        statistic="Sum",
        threshold=thresholds.alb_5xx_per_minute,
        evaluation_periods=thresholds.alb_5xx_periods,
    )
    alarms.math(
        "target-5xx",
        f"The API returned more than {thresholds.target_5xx_per_minute} 5xx a minute (all its target groups)",
        over_target_groups(metrics, "HTTPCode_Target_5XX_Count", stat="Sum", combine="SUM"),
        threshold=thresholds.target_5xx_per_minute,
        evaluation_periods=thresholds.alb_5xx_periods,
    )
    alarms.math(
        "target-p99-latency",
        f"p99 target response time above {thresholds.p99_latency_seconds} s in one of the API's target groups",
        over_target_groups(metrics, "TargetResponseTime", stat="p99", combine="MAX"),
        threshold=thresholds.p99_latency_seconds,
        datapoints_to_alarm=LATENCY_DATAPOINTS,
    )
    return alarms.alarms


def over_target_groups(
    metrics: RequestPathMetrics, metric: str, *, stat: str, combine: Literal["SUM", "MAX"]
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """A target-group metric over every group the API serves from, as one series.

    Blue/green swaps production between the two groups at every deployment: an alarm on one group would
    watch an idle group half the time, and deployment rollback would miss the new revision's errors.
    Each group's series is filled with 0 where it has none (the idle group; a minute without a 5xx), so
    the SUM (counts) or MAX (p99: the union's p99 is above the threshold only if one group's is) is
    defined whenever either group serves.
    """
    scopes = metrics.target_group_dimensions()
    fetched = [query(f"group{index}", ALB, metric, dims, stat=stat) for index, dims in enumerate(scopes)]
    filled = [
        aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=f"filled{index}", expression=f"FILL(group{index}, 0)", return_data=False
        )
        for index in range(len(scopes))
    ]
    ids = ", ".join(f"filled{index}" for index in range(len(scopes)))
    combined = aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id="combined", expression=f"{combine}([{ids}])", label=metric, return_data=True
    )
    return [*fetched, *filled, combined]
