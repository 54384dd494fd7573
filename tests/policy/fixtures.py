"""Test-only programs: the architecture in miniature, once hardened and once deliberately insecure.

`architecture(secure=True)` satisfies every rule of the pack; `architecture(secure=False)` flips every
setting a rule checks, or leaves out what a stack rule requires, so it trips every rule at least once.
Both are written against pulumi-aws's real argument classes, so the inputs the rules read are the
camelCase names the provider receives.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

ZONES = ("us-east-1a", "us-east-1b")
TAGS = {
    "project": "platform",
    "environment": "test",
    "stack": "test",
    "managed-by": "pulumi",
    "owner": "platform-team",
    "cost-center": "cc-1",
}
ORIGIN_HEADER = "X-Origin-Verify"
EXEC_AGENT_PATHS = ("/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm")
CLOUDFRONT_PREFIX_LIST = "pl-3b927c52"
ACCOUNT = "123456789012"


def deny_insecure_transport(resource: pulumi.Input[str], action: str) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": action,
                    "Resource": resource,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def allow_everyone(resource: pulumi.Input[str], action: str) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource}],
        }
    )


def architecture(secure: bool) -> None:
    provider = aws.Provider(
        "aws",
        region="us-east-1",
        default_tags=aws.ProviderDefaultTagsArgs(tags=TAGS) if secure else None,
    )
    o = pulumi.ResourceOptions(provider=provider)

    # --- network ---------------------------------------------------------------------------------
    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", opts=o)
    aws.ec2.DefaultSecurityGroup(
        "default-sg",
        vpc_id=vpc.id,
        ingress=[]
        if secure
        else [
            aws.ec2.DefaultSecurityGroupIngressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"])
        ],
        egress=[],
        opts=o,
    )
    igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, opts=o)
    tiers: dict[str, list[aws.ec2.Subnet]] = {"public": [], "private": [], "isolated": []}
    index = 0
    for tier, members in tiers.items():
        zones = ZONES if secure or tier != "isolated" else ZONES[:1]
        for zone in zones:
            index += 1
            members.append(
                aws.ec2.Subnet(
                    f"{tier}-{zone}",
                    vpc_id=vpc.id,
                    cidr_block=f"10.0.{index}.0/24",
                    availability_zone=zone,
                    map_public_ip_on_launch=tier == "public" or (not secure and tier == "private"),
                    tags={"tier": tier},
                    opts=o,
                )
            )
    public_rt = aws.ec2.RouteTable(
        "public-rt",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
        opts=o,
    )
    nats = []
    for zone, subnet in zip(ZONES, tiers["public"], strict=True):
        aws.ec2.RouteTableAssociation(f"public-{zone}-rta", subnet_id=subnet.id, route_table_id=public_rt.id, opts=o)
        if secure or not nats:
            eip = aws.ec2.Eip(f"nat-{zone}-eip", domain="vpc", opts=o)
            nats.append(aws.ec2.NatGateway(f"nat-{zone}", allocation_id=eip.allocation_id, subnet_id=subnet.id, opts=o))
    for number, (zone, subnet) in enumerate(zip(ZONES, tiers["private"], strict=True)):
        nat = nats[number] if secure else nats[0]
        table = aws.ec2.RouteTable(
            f"private-{zone}-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            opts=o,
        )
        aws.ec2.RouteTableAssociation(f"private-{zone}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=o)
    isolated_rt = aws.ec2.RouteTable("isolated-rt", vpc_id=vpc.id, routes=[], opts=o)
    for subnet in tiers["isolated"]:
        aws.ec2.RouteTableAssociation(f"{subnet._name}-rta", subnet_id=subnet.id, route_table_id=isolated_rt.id, opts=o)

    # --- keys, logs, secrets -----------------------------------------------------------------------
    key = aws.kms.Key("data-key", enable_key_rotation=secure, policy=_key_policy(secure), opts=o)
    logs = aws.cloudwatch.LogGroup(
        "app-logs", retention_in_days=90 if secure else None, kms_key_id=key.arn if secure else None, opts=o
    )
    if secure:
        flow_trust = _trust("vpc-flow-logs.amazonaws.com", secure)
        flow_role = aws.iam.Role("flow-logs-role", assume_role_policy=flow_trust, opts=o)
        aws.ec2.FlowLog(
            "flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=logs.arn,
            iam_role_arn=flow_role.arn,
            opts=o,
        )
    secret = aws.secretsmanager.Secret("api-key", kms_key_id=key.arn if secure else None, opts=o)
    if secure:
        aws.secretsmanager.SecretRotation(
            "api-key-rotation",
            secret_id=secret.id,
            rotation_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:rotate",
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(automatically_after_days=30),
            opts=o,
        )
    aws.lambda_.Function(
        "rotate",
        runtime="python3.12" if secure else "python3.8",
        handler="rotation.admin_token.handler",
        role="arn:aws:iam::123456789012:role/rotate",
        code=pulumi.AssetArchive({}),
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active" if secure else "PassThrough"),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=logs.name)
        if secure
        else None,
        reserved_concurrent_executions=1 if secure else None,
        opts=o,
    )

    # --- storage -------------------------------------------------------------------------------------
    bucket = aws.s3.Bucket("assets", opts=o)
    aws.s3.BucketPublicAccessBlock(
        "assets-pab",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=secure,
        ignore_public_acls=True,
        restrict_public_buckets=secure,
        opts=o,
    )
    if secure:
        aws.s3.BucketServerSideEncryptionConfiguration(
            "assets-sse",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=o,
        )
    aws.s3.BucketVersioning(
        "assets-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled" if secure else "Suspended"
        ),
        opts=o,
    )
    bucket_objects = pulumi.Output.concat(bucket.arn, "/*")
    aws.s3.BucketPolicy(
        "assets-policy",
        bucket=bucket.id,
        policy=deny_insecure_transport(bucket_objects, "s3:*")
        if secure
        else allow_everyone(bucket_objects, "s3:GetObject"),
        opts=o,
    )
    aws.s3.BucketOwnershipControls(
        "assets-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(
            object_ownership="BucketOwnerEnforced" if secure else "BucketOwnerPreferred"
        ),
        opts=o,
    )
    if secure:
        access_log_bucket(bucket, o)

    # --- edge ------------------------------------------------------------------------------------------
    visibility = aws.wafv2.WebAclVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name="acl", sampled_requests_enabled=True
    )
    groups = (
        ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet"]
        if secure
        else ["AWSManagedRulesCommonRuleSet"]
    )
    waf_rules = [
        aws.wafv2.WebAclRuleArgs(
            name=group,
            priority=number,
            override_action=aws.wafv2.WebAclRuleOverrideActionArgs(none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                    name=group, vendor_name="AWS"
                )
            ),
            visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=group, sampled_requests_enabled=True
            ),
        )
        for number, group in enumerate(groups)
    ]
    if secure:
        waf_rules.append(
            aws.wafv2.WebAclRuleArgs(
                name="rate-limit",
                priority=10,
                action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        limit=2000, aggregate_key_type="IP"
                    )
                ),
                visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(
                    cloudwatch_metrics_enabled=True, metric_name="rate", sampled_requests_enabled=True
                ),
            )
        )
    acl = aws.wafv2.WebAcl(
        "edge-acl",
        scope="CLOUDFRONT",
        default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
        rules=waf_rules,
        visibility_config=visibility,
        opts=o,
    )
    if secure:
        waf_logs = aws.cloudwatch.LogGroup("aws-waf-logs-edge", retention_in_days=90, kms_key_id=key.arn, opts=o)
        aws.wafv2.WebAclLoggingConfiguration(
            "edge-acl-logging", resource_arn=acl.arn, log_destination_configs=[waf_logs.arn], opts=o
        )

    alb_sg = aws.ec2.SecurityGroup("alb-sg", vpc_id=vpc.id, description="ALB" if secure else "The ALB's group", opts=o)
    aws.vpc.SecurityGroupIngressRule(
        "alb-https",
        security_group_id=alb_sg.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        prefix_list_id=CLOUDFRONT_PREFIX_LIST if secure else None,
        cidr_ipv4=None if secure else "0.0.0.0/0",
        opts=o,
    )
    # Each reference to CloudFront's list weighs 55 of the group's 60 inbound rules: two overflow it.
    for port in () if secure else (80, 8080):
        aws.vpc.SecurityGroupIngressRule(
            f"alb-{port}-from-cloudfront",
            security_group_id=alb_sg.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            prefix_list_id=CLOUDFRONT_PREFIX_LIST,
            opts=o,
        )
    alb = aws.lb.LoadBalancer(
        "alb",
        load_balancer_type="application",
        subnets=[subnet.id for subnet in (tiers["public"] if secure else tiers["public"][:1])],
        security_groups=[alb_sg.id],
        drop_invalid_header_fields=secure,
        enable_deletion_protection=secure,
        access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=bucket.bucket, enabled=True) if secure else None,
        opts=o,
    )
    target_group = aws.lb.TargetGroup("api-tg", port=8080, protocol="HTTP", target_type="ip", vpc_id=vpc.id, opts=o)
    forward = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
    aws.lb.Listener(
        "http",
        load_balancer_arn=alb.arn,
        port=80,
        protocol="HTTP",
        default_actions=[
            aws.lb.ListenerDefaultActionArgs(
                type="redirect",
                redirect=aws.lb.ListenerDefaultActionRedirectArgs(protocol="HTTPS", port="443", status_code="HTTP_301"),
            )
            if secure
            else forward
        ],
        opts=o,
    )
    https = aws.lb.Listener(
        "https",
        load_balancer_arn=alb.arn,
        port=443,
        protocol="HTTPS",
        certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
        ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06" if secure else "ELBSecurityPolicy-2016-08",
        default_actions=[
            aws.lb.ListenerDefaultActionArgs(
                type="fixed-response",
                fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                    content_type="text/plain", status_code="403"
                ),
            )
            if secure
            else forward
        ],
        opts=o,
    )
    condition = (
        aws.lb.ListenerRuleConditionArgs(
            http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(http_header_name=ORIGIN_HEADER, values=["s3cr3t"])
        )
        if secure
        else aws.lb.ListenerRuleConditionArgs(path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=["/*"]))
    )
    aws.lb.ListenerRule(
        "origin-verified",
        listener_arn=https.arn,
        priority=10,
        conditions=[condition],
        actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group.arn)],
        opts=o,
    )

    oac = aws.cloudfront.OriginAccessControl(
        "assets-oac",
        origin_access_control_origin_type="s3",
        signing_behavior="always",
        signing_protocol="sigv4",
        opts=o,
    )
    distribution = aws.cloudfront.Distribution(
        "cdn",
        enabled=True,
        origins=[
            aws.cloudfront.DistributionOriginArgs(
                origin_id="alb",
                domain_name=alb.dns_name,
                custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                    http_port=80,
                    https_port=443,
                    origin_protocol_policy="https-only" if secure else "http-only",
                    origin_ssl_protocols=["TLSv1.2"] if secure else ["TLSv1", "TLSv1.2"],
                ),
                custom_headers=[aws.cloudfront.DistributionOriginCustomHeaderArgs(name=ORIGIN_HEADER, value="s3cr3t")],
            ),
            aws.cloudfront.DistributionOriginArgs(
                origin_id="assets",
                domain_name=bucket.bucket_regional_domain_name,
                origin_access_control_id=oac.id if secure else None,
                s3_origin_config=None
                if secure
                else aws.cloudfront.DistributionOriginS3OriginConfigArgs(
                    origin_access_identity="origin-access-identity/cloudfront/E123"
                ),
            ),
        ],
        default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
            target_origin_id="alb",
            viewer_protocol_policy="redirect-to-https" if secure else "allow-all",
            allowed_methods=["GET", "HEAD"],
            cached_methods=["GET", "HEAD"],
            cache_policy_id="658327ea-f89d-4fab-a63d-7e88639e58f6",
        ),
        restrictions=aws.cloudfront.DistributionRestrictionsArgs(
            geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
        ),
        viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
            acm_certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
            ssl_support_method="sni-only",
            minimum_protocol_version="TLSv1.2_2021",
        )
        if secure
        else aws.cloudfront.DistributionViewerCertificateArgs(
            cloudfront_default_certificate=True, minimum_protocol_version="TLSv1"
        ),
        # Legacy logging (through an ACL grant) in the insecure program; the secure one delivers through CloudWatch.
        logging_config=None
        if secure
        else aws.cloudfront.DistributionLoggingConfigArgs(bucket=bucket.bucket_domain_name),
        web_acl_id=acl.arn if secure else None,
        opts=o,
    )
    if secure:
        cloudfront_log_delivery(distribution, bucket, o)

    # --- compute -------------------------------------------------------------------------------------
    exec_key = aws.kms.Key("exec-key", enable_key_rotation=True, policy=_key_policy(True), opts=o) if secure else None
    cluster = aws.ecs.Cluster(
        "ecs",
        settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enhanced" if secure else "disabled")],
        configuration=aws.ecs.ClusterConfigurationArgs(
            execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                kms_key_id=exec_key.arn, logging="DEFAULT"
            )
        )
        if exec_key
        else None,
        opts=o,
    )
    task_role = aws.iam.Role("task-role", assume_role_policy=_trust("ecs-tasks.amazonaws.com", secure), opts=o)
    aws.iam.RolePolicy(
        "task-policy",
        role=task_role.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": bucket_objects},
                    {"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"},
                ]
                if secure
                else [{"Effect": "Allow", "Action": ["s3:*", "sqs:SendMessage"], "Resource": "*"}],
            }
        ),
        opts=o,
    )
    if not secure:
        aws.iam.RolePolicyAttachment(
            "task-admin", role=task_role.name, policy_arn="arn:aws:iam::aws:policy/AdministratorAccess", opts=o
        )
    container = (
        {
            "name": "api",
            "image": "api:1",
            "user": "1000:1000",
            "readonlyRootFilesystem": True,
            "environment": [{"name": "LOG_LEVEL", "value": "info"}],
            "secrets": [{"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "app"}},
            # ECS Exec is on: its agent writes to these volumes, the root stays read-only.
            "mountPoints": [
                {"sourceVolume": f"exec-{n}", "containerPath": path, "readOnly": False}
                for n, path in enumerate(EXEC_AGENT_PATHS)
            ],
        }
        if secure
        else {
            "name": "api",
            "image": "api:1",
            "privileged": True,
            "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}],
        }
    )
    # With ECS Exec on, a read-only container without the agent's volumes: the exec agent cannot start.
    exec_blocked = {"name": "shell", "image": "api:1", "user": "1000:1000", "readonlyRootFilesystem": True}
    task = aws.ecs.TaskDefinition(
        "api-task",
        family="api",
        cpu="512",
        memory="1024",
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        task_role_arn=task_role.arn,
        volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=f"exec-{n}") for n in range(len(EXEC_AGENT_PATHS))],
        container_definitions=json.dumps([container] if secure else [container, exec_blocked]),
        opts=o,
    )
    service = aws.ecs.Service(
        "api",
        cluster=cluster.arn,
        task_definition=task.arn,
        desired_count=4,
        launch_type="FARGATE",
        enable_execute_command=True,
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=[subnet.id for subnet in tiers["private"]], assign_public_ip=not secure
        ),
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True)
        if secure
        else None,
        opts=o,
    )
    target = aws.appautoscaling.Target(
        "api-scaling",
        service_namespace="ecs",
        scalable_dimension="ecs:service:DesiredCount",
        resource_id=pulumi.Output.concat("service/", cluster.name, "/", service.name),
        min_capacity=4 if secure else 1,
        max_capacity=10,
        opts=o,
    )
    if secure:
        aws.appautoscaling.Policy(
            "api-cpu",
            policy_type="TargetTrackingScaling",
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            service_namespace=target.service_namespace,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=60,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"
                ),
            ),
            opts=o,
        )

    # --- data ------------------------------------------------------------------------------------------
    db_subnets = aws.rds.SubnetGroup(
        "db-subnets", subnet_ids=[s.id for s in (tiers["isolated"] if secure else tiers["private"])], opts=o
    )
    parameters = aws.rds.ClusterParameterGroup(
        "db-parameters",
        family="aurora-postgresql16",
        parameters=[
            aws.rds.ClusterParameterGroupParameterArgs(name="rds.force_ssl", value="1" if secure else "0"),
            aws.rds.ClusterParameterGroupParameterArgs(name="log_statement", value="ddl" if secure else "none"),
        ],
        opts=o,
    )
    db = aws.rds.Cluster(
        "db",
        engine="aurora-postgresql",
        engine_version="16.4",
        db_subnet_group_name=db_subnets.name,
        db_cluster_parameter_group_name=parameters.name,
        storage_encrypted=secure,
        kms_key_id=key.arn if secure else None,
        iam_database_authentication_enabled=secure,
        deletion_protection=secure,
        backup_retention_period=7 if secure else 1,
        enabled_cloudwatch_logs_exports=["postgresql"] if secure else [],
        manage_master_user_password=True if secure else None,
        master_username="app",
        master_password=None if secure else "insecure-password",
        performance_insights_enabled=True,
        performance_insights_kms_key_id=key.arn if secure else None,
        tags={"backup-plan": "platform-test"},
        opts=o,
    )
    # Secure: clients and the proxy sign in with IAM end to end; insecure: clients sign in with the secret's password.
    aws.rds.Proxy(
        "db-proxy",
        engine_family="POSTGRESQL",
        role_arn=aws.iam.Role("db-proxy-role", assume_role_policy=_trust("rds.amazonaws.com", secure), opts=o).arn,
        vpc_subnet_ids=[s.id for s in tiers["isolated"]],
        require_tls=True,
        default_auth_scheme="IAM_AUTH" if secure else None,
        auths=None
        if secure
        else [
            aws.rds.ProxyAuthArgs(
                auth_scheme="SECRETS",
                secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-db-AbCdEf",
                iam_auth="DISABLED",
            )
        ],
        opts=o,
    )
    for number in range(2 if secure else 1):
        aws.rds.ClusterInstance(
            f"db-{number}",
            cluster_identifier=db.id,
            instance_class="db.r7g.large",
            engine="aurora-postgresql",
            publicly_accessible=not secure,
            opts=o,
        )
    cache_subnets = aws.elasticache.SubnetGroup("cache-subnets", subnet_ids=[s.id for s in tiers["isolated"]], opts=o)
    aws.elasticache.ReplicationGroup(
        "cache",
        description="cache",
        # ElastiCache ids are lowercase, 40 characters at most.
        replication_group_id="platform-test-cache" if secure else "Platform_Test_Cache",
        engine="valkey",
        node_type="cache.t4g.small",
        subnet_group_name=cache_subnets.name,
        num_cache_clusters=2 if secure else 1,
        automatic_failover_enabled=secure,
        multi_az_enabled=secure,
        at_rest_encryption_enabled=secure,
        kms_key_id=key.arn if secure else None,
        transit_encryption_enabled=secure,
        auth_token="a-long-auth-token-of-16-chars" if secure else None,
        snapshot_retention_limit=7 if secure else 0,
        opts=o,
    )

    # --- messaging -------------------------------------------------------------------------------------
    dlq = aws.sqs.Queue(
        "jobs-dlq",
        kms_master_key_id=key.arn,
        message_retention_seconds=1_209_600 if secure else None,
        opts=o,
    )
    jobs = aws.sqs.Queue(
        "jobs",
        kms_master_key_id=key.arn if secure else None,
        redrive_policy=pulumi.Output.json_dumps(
            {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 5 if secure else 50}
        ),
        opts=o,
    )
    for queue in (dlq, jobs):
        aws.sqs.QueuePolicy(
            f"{queue._name}-policy",
            queue_url=queue.url,
            policy=deny_insecure_transport(queue.arn, "sqs:*")
            if secure
            else allow_everyone(queue.arn, "sqs:SendMessage"),
            opts=o,
        )
    alerts = aws.sns.Topic("alerts", kms_master_key_id=key.arn if secure else None, opts=o)
    aws.sns.TopicPolicy(
        "alerts-policy",
        arn=alerts.arn,
        policy=deny_insecure_transport(alerts.arn, "sns:Publish")
        if secure
        else allow_everyone(alerts.arn, "sns:Publish"),
        opts=o,
    )

    # --- recovery --------------------------------------------------------------------------------------
    vault = aws.backup.Vault("vault", kms_key_arn=key.arn if secure else None, opts=o)
    plan = aws.backup.Plan(
        "backup-plan",
        rules=[
            aws.backup.PlanRuleArgs(
                rule_name="daily",
                target_vault_name=vault.name,
                schedule="cron(0 5 * * ? *)",
                lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=35 if secure else 1),
                copy_actions=[
                    aws.backup.PlanRuleCopyActionArgs(
                        destination_vault_arn="arn:aws:backup:us-west-2:123456789012:backup-vault:copy",
                        lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=35),
                    )
                ]
                if secure
                else [],
            )
        ],
        opts=o,
    )
    if secure:
        backup_role = aws.iam.Role("backup-role", assume_role_policy=_trust("backup.amazonaws.com", secure), opts=o)
        aws.backup.Selection(
            "stateful",
            plan_id=plan.id,
            iam_role_arn=backup_role.arn,
            selection_tags=[
                aws.backup.SelectionSelectionTagArgs(type="STRINGEQUALS", key="backup-plan", value="platform-test")
            ],
            opts=o,
        )

    # --- observability and governance --------------------------------------------------------------------
    required = [
        ("alb-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        ("db-cpu", "AWS/RDS", "CPUUtilization"),
        ("dlq-visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("queue-age", "AWS/SQS", "ApproximateAgeOfOldestMessage"),
    ]
    for name, namespace, metric in required if secure else required[:1]:
        aws.cloudwatch.MetricAlarm(
            name,
            namespace=namespace,
            metric_name=metric,
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            period=60,
            statistic="Sum",
            threshold=1,
            alarm_actions=[alerts.arn] if secure else [],
            opts=o,
        )
    if not secure:
        # fis-templates-opted-in: a fault experiment in a stack whose config has not opted in.
        aws.fis.ExperimentTemplate(
            "stop-tasks",
            description="stop tasks",
            role_arn="arn:aws:iam::123456789012:role/fis",
            actions=[aws.fis.ExperimentTemplateActionArgs(name="stop", action_id="aws:ecs:stop-task")],
            stop_conditions=[aws.fis.ExperimentTemplateStopConditionArgs(source="none")],
            opts=o,
        )
    if secure:
        aws.budgets.Budget(
            "budget",
            budget_type="COST",
            limit_amount="100",
            limit_unit="USD",
            time_unit="MONTHLY",
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    threshold=80,
                    threshold_type="PERCENTAGE",
                    notification_type="FORECASTED",
                    subscriber_email_addresses=["ops@example.com"],
                )
            ],
            opts=o,
        )


def _trust(service: str, secure: bool) -> str:
    statement: dict[str, object] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if secure:
        statement["Condition"] = {
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:{service.partition('.')[0]}:us-east-1:{ACCOUNT}:*"},
        }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _key_policy(secure: bool) -> str:
    """Secure: the account administers (no kms:Create*), uses the key only through a service, CloudFront only as
    one distribution. Insecure: `kms:*` to the whole account, CloudFront as any distribution of it."""
    root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    cloudfront = {"Service": "cloudfront.amazonaws.com"}
    if not secure:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "Root", "Effect": "Allow", "Principal": root, "Action": "kms:*", "Resource": "*"},
                    {
                        "Sid": "AnyDistribution",
                        "Effect": "Allow",
                        "Principal": cloudfront,
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                    },
                ],
            }
        )
    via = {"kms:ViaService": "rds.us-east-1.amazonaws.com", "kms:CallerAccount": ACCOUNT}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Admin", "Effect": "Allow", "Principal": root, "Action": ["kms:Put*"], "Resource": "*"},
                {
                    "Sid": "Use",
                    "Effect": "Allow",
                    "Principal": root,
                    "Action": ["kms:Decrypt", "kms:CreateGrant"],
                    "Resource": "*",
                    "Condition": {"StringEquals": via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
                {
                    "Sid": "OneDistribution",
                    "Effect": "Allow",
                    "Principal": cloudfront,
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1"}},
                },
            ],
        }
    )


def access_log_bucket(source: aws.s3.Bucket, o: pulumi.ResourceOptions) -> None:
    """A hardened log bucket taking `source`'s server access logs, admitted by its policy alone."""
    logs = aws.s3.Bucket("logs", opts=o)
    aws.s3.BucketPublicAccessBlock(
        "logs-pab",
        bucket=logs.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=o,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        "logs-sse",
        bucket=logs.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                )
            )
        ],
        opts=o,
    )
    aws.s3.BucketVersioning(
        "logs-versioning",
        bucket=logs.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=o,
    )
    aws.s3.BucketPolicy(
        "logs-policy",
        bucket=logs.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": pulumi.Output.concat(logs.arn, "/*"),
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    s3_access_log_grant(logs, source),
                ],
            }
        ),
        opts=o,
    )
    aws.s3.BucketLogging(
        "assets-access-logging", bucket=source.id, target_bucket=logs.id, target_prefix="s3-access/assets/", opts=o
    )


def s3_access_log_grant(
    logs: aws.s3.Bucket, source: aws.s3.Bucket, scoped_by: tuple[str, ...] = ("SourceAccount", "SourceArn")
) -> dict[str, object]:
    """The log bucket's statement admitting S3 server access logging of `source`, scoped by the conditions named."""
    conditions = {
        "StringEquals": {"aws:SourceAccount": "123456789012"} if "SourceAccount" in scoped_by else {},
        "ArnLike": {"aws:SourceArn": source.arn} if "SourceArn" in scoped_by else {},
    }
    return {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": pulumi.Output.concat(logs.arn, "/s3-access/*"),
        "Condition": {operator: keys for operator, keys in conditions.items() if keys},
    }


def cloudfront_log_delivery(
    distribution: aws.cloudfront.Distribution, bucket: aws.s3.Bucket, o: pulumi.ResourceOptions
) -> None:
    """CloudFront standard logging v2: a delivery source of the distribution's access logs, delivered to S3."""
    source = aws.cloudwatch.LogDeliverySource(
        "cdn-access-logs", name="cdn-access", resource_arn=distribution.arn, log_type="ACCESS_LOGS", opts=o
    )
    destination = aws.cloudwatch.LogDeliveryDestination(
        "cdn-access-logs-s3",
        name="cdn-access-s3",
        delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
            destination_resource_arn=bucket.arn
        ),
        opts=o,
    )
    aws.cloudwatch.LogDelivery(
        "cdn-access-delivery", delivery_source_name=source.name, delivery_destination_arn=destination.arn, opts=o
    )
