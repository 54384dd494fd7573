"""Encryption in transit: HTTPS at the edge and the ALB, TLS to origins and databases, TLS-only APIs."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import (
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    denies_insecure_transport,
    items,
)

LISTENER = "aws:lb/listener:Listener"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_PARAMETERS = "aws:rds/clusterParameterGroup:ClusterParameterGroup"

# ELB security policies negotiating TLS 1.2 or newer only.
TLS12_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
]
VIEWER_PROTOCOLS = ["TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"]
HTTPS_VIEWER_POLICIES = ("redirect-to-https", "https-only")


@Rule(
    name="alb-http-redirects-to-https",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="An ALB listener on plain HTTP, where one exists, does nothing but redirect (301) to HTTPS. The "
    "platform's ALB has none: CloudFront reaches it https-only.",
    seed="seed 002 traffic entry layer (TLS terminated at CloudFront and the ALB)",
    checks="Checkov CKV_AWS_2 / CKV2_AWS_20",
    remediation="Remove the HTTP aws.lb.Listener where only CloudFront (origin protocol https-only) connects, as "
    "the load-balancer layer does; a listener that must stay gets one default action type='redirect' with "
    "redirect protocol='HTTPS', port='443', status_code='HTTP_301', and no listener rules.",
    resource_types=(LISTENER,),
)
def http_redirects(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("protocol") != "HTTP":
        return
    actions = items(resource.get("defaultActions"))
    redirects = [a for a in actions if a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol")]
    if len(actions) != 1 or len(redirects) != 1 or redirects[0]["redirect"]["protocol"] != "HTTPS":
        report(f"{resource.label}: an HTTP listener must only redirect to HTTPS")


@Rule(
    name="alb-tls-policy",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="ALB HTTPS listeners use a security policy allowing TLS 1.2 or newer only.",
    seed="seed 002 traffic entry layer (TLSv1.2 minimum)",
    checks="Checkov CKV_AWS_103, cdk-nag NIST.800.53 ELBTlsHttpsListenersOnly",
    remediation="Set ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06' on the HTTPS aws.lb.Listener in the "
    "load-balancer layer (the AWS default, ELBSecurityPolicy-2016-08, still accepts TLS 1.0). Allowed policies "
    "are the allowedPolicies knob of policy/config/STACK.json.",
    resource_types=(LISTENER,),
    config={"allowedPolicies": {"type": "array", "items": {"type": "string"}, "default": TLS12_POLICIES}},
)
def alb_tls(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("protocol") not in ("HTTPS", "TLS"):
        return
    policy = resource.get("sslPolicy")
    if policy not in config["allowedPolicies"]:
        report(f"{resource.label}: sslPolicy {policy or '(AWS default ELBSecurityPolicy-2016-08)'} is not TLS 1.2+")


@Rule(
    name="cloudfront-viewer-https",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="Every CloudFront cache behavior sends viewers to HTTPS (redirect-to-https or https-only).",
    seed="seed 002 traffic entry layer (CloudFront)",
    checks="Checkov CKV_AWS_34",
    remediation="Set viewer_protocol_policy='redirect-to-https' on default_cache_behavior and every "
    "ordered_cache_behaviors entry of aws.cloudfront.Distribution in the edge layer.",
    resource_types=(DISTRIBUTION,),
)
def viewer_https(resource: Resource, config: dict[str, Any], report: Report) -> None:
    behaviors = [resource.get("defaultCacheBehavior") or {}, *items(resource.get("orderedCacheBehaviors"))]
    for behavior in behaviors:
        policy = behavior.get("viewerProtocolPolicy")
        if policy not in HTTPS_VIEWER_POLICIES:
            where = behavior.get("pathPattern") or "default"
            report(f"{resource.label}: behavior {where} has viewerProtocolPolicy {policy}")


@Rule(
    name="cloudfront-viewer-tls",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="CloudFront serves viewers with its own ACM certificate and a minimum protocol of TLSv1.2_2021 or newer.",
    seed="seed 002 traffic entry layer (CloudFront, ACM)",
    checks="Checkov CKV_AWS_174, cdk-nag AwsSolutions-CFR4",
    remediation="In the edge layer set viewer_certificate=DistributionViewerCertificateArgs(acm_certificate_arn=..., "
    "ssl_support_method='sni-only', minimum_protocol_version='TLSv1.2_2021') instead of the default certificate.",
    resource_types=(DISTRIBUTION,),
    config={"allowedProtocols": {"type": "array", "items": {"type": "string"}, "default": VIEWER_PROTOCOLS}},
)
def viewer_tls(resource: Resource, config: dict[str, Any], report: Report) -> None:
    certificate = resource.get("viewerCertificate") or {}
    if certificate.get("cloudfrontDefaultCertificate") is True:
        report(f"{resource.label}: uses the *.cloudfront.net default certificate (TLSv1 allowed)")
    version = certificate.get("minimumProtocolVersion")
    if version not in config["allowedProtocols"]:
        report(f"{resource.label}: minimumProtocolVersion {version} is older than TLSv1.2_2021")


@Rule(
    name="cloudfront-origin-https",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="CloudFront reaches custom origins (the ALB) over https-only with TLSv1.2 only.",
    seed="seed 002 traffic entry layer (origin_protocol_policy https-only, origin_ssl_protocols TLSv1.2)",
    checks="cdk-nag AwsSolutions-CFR5",
    remediation="Set custom_origin_config origin_protocol_policy='https-only' and origin_ssl_protocols=['TLSv1.2'] "
    "on the ALB origin of aws.cloudfront.Distribution in the edge layer.",
    resource_types=(DISTRIBUTION,),
)
def origin_https(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for origin in items(resource.get("origins")):
        custom = origin.get("customOriginConfig")
        if not custom:
            continue
        origin_id = origin.get("originId")
        if custom.get("originProtocolPolicy") != "https-only":
            report(f"{resource.label}: origin {origin_id} originProtocolPolicy {custom.get('originProtocolPolicy')}")
        protocols = set(items(custom.get("originSslProtocols")))
        if not protocols or protocols - {"TLSv1.2"}:
            report(f"{resource.label}: origin {origin_id} allows {sorted(protocols)}; only TLSv1.2")


@Rule(
    name="s3-bucket-denies-insecure-transport",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="Every bucket has a bucket policy denying requests without TLS (aws:SecureTransport false).",
    seed="seed 000 security objectives (TLS everywhere)",
    checks="cdk-nag AwsSolutions-S10, Checkov CKV_AWS_379 family",
    remediation="Add an aws.s3.BucketPolicy with bucket=<bucket>.id and a statement Effect Deny, Principal '*', "
    "Action 's3:*', Resource the bucket and its objects, Condition Bool aws:SecureTransport 'false' in the "
    "storage layer.",
    stack=True,
)
def bucket_tls(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(bucket: Resource) -> None:
        policies = stack.referrers(bucket, "bucket", BUCKET_POLICY)
        if not any(denies_insecure_transport(policy.json("policy")) for policy in policies):
            report(f"{bucket.label}: no bucket policy denies aws:SecureTransport false", bucket.urn)

    stack.check_each(stack.of(BUCKET), check)


@Rule(
    name="sqs-queue-denies-insecure-transport",
    area="transit",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Every SQS queue's policy denies requests without TLS.",
    seed="seed 002 async processing (SQS)",
    checks="cdk-nag AwsSolutions-SQS4",
    remediation="Give each aws.sqs.Queue a policy (inline `policy` or aws.sqs.QueuePolicy with queue_url=<queue>.url) "
    "with a Deny statement for Principal '*' under Condition Bool aws:SecureTransport 'false'.",
    stack=True,
)
def queue_tls(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(queue: Resource) -> None:
        documents = [queue.json("policy")] + [
            p.json("policy") for p in stack.referrers(queue, "queueUrl", QUEUE_POLICY)
        ]
        if not any(denies_insecure_transport(document) for document in documents):
            report(f"{queue.label}: no queue policy denies aws:SecureTransport false", queue.urn)

    stack.check_each(stack.of(QUEUE), check)


@Rule(
    name="sns-topic-denies-insecure-transport",
    area="transit",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Every SNS topic's policy denies publishing without TLS.",
    seed="seed 002 async processing and alerting (SNS)",
    checks="cdk-nag AwsSolutions-SNS3",
    remediation="Give each aws.sns.Topic a policy (inline `policy` or aws.sns.TopicPolicy with arn=<topic>.arn) with "
    "a Deny statement for Principal '*' under Condition Bool aws:SecureTransport 'false'.",
    stack=True,
)
def topic_tls(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(topic: Resource) -> None:
        documents = [topic.json("policy")] + [p.json("policy") for p in stack.referrers(topic, "arn", TOPIC_POLICY)]
        if not any(denies_insecure_transport(document) for document in documents):
            report(f"{topic.label}: no topic policy denies aws:SecureTransport false", topic.urn)

    stack.check_each(stack.of(TOPIC), check)


FORCE_TLS = {"rds.force_ssl": "1", "require_secure_transport": "ON"}


@Rule(
    name="aurora-forces-tls",
    area="transit",
    kind="security",
    severity=Severity.HIGH,
    summary="Aurora clusters use a cluster parameter group that forces TLS (rds.force_ssl=1 for PostgreSQL, "
    "require_secure_transport=ON for MySQL).",
    seed="seed 002 data layer, seed 000 security objectives (TLS everywhere)",
    checks="Checkov CKV2_AWS_69",
    remediation="Create an aws.rds.ClusterParameterGroup with parameter rds.force_ssl=1 in the database layer and "
    "pass db_cluster_parameter_group_name=<group>.name to aws.rds.Cluster.",
    stack=True,
)
def aurora_tls(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(cluster: Resource) -> None:
        groups = stack.deps(cluster, "dbClusterParameterGroupName", CLUSTER_PARAMETERS)
        for group in groups:
            for parameter in items(group.get("parameters")):
                if str(FORCE_TLS.get(str(parameter.get("name")), "")).lower() == str(parameter.get("value")).lower():
                    return
        where = "its parameter group" if groups else "no parameter group of this stack"
        report(f"{cluster.label}: {where} forces TLS", cluster.urn)

    stack.check_each(stack.of(CLUSTER), check)
