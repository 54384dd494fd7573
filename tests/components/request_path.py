"""Builders for the request-path components with stand-in inputs, for tests of one layer at a time."""

from __future__ import annotations

from typing import Any

import pulumi

from components.edge import Edge, EdgeArgs
from components.iam import Account, Statement
from components.load_balancer import LoadBalancer, LoadBalancerArgs
from components.naming import Naming
from components.service import (
    AppSecurityGroups,
    AppSecurityGroupsArgs,
    Cluster,
    ClusterArgs,
    ContainerSpec,
    Dependency,
    FargateService,
    LoadBalancing,
    ServiceArgs,
)
from stack_config.loader import parse_platform_config
from stack_config.schema import PlatformConfig
from tests.support import REPO, config_for

NAMING = Naming("platform", "test", "prod", {"owner": "team"})
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:platform-test-orders"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:platform-test-redis-AbCdEf"
DB_SG, CACHE_SG = "sg-0db0000000000000", "sg-0cache0000000000"


def config(environment: str = "prod", **overrides: Any) -> PlatformConfig:
    return parse_platform_config(config_for(environment, **overrides))


def account() -> Account:
    return Account(pulumi.Output.from_input("123456789012"), pulumi.Output.from_input("aws"), "us-east-1")


def load_balancer(cfg: PlatformConfig, blue_green: bool = True) -> LoadBalancer:
    return LoadBalancer(
        "lb",
        LoadBalancerArgs(
            naming=NAMING,
            vpc_id="vpc-0123",
            public_subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
            zone_id="Z123",
            origin_domain=f"origin.{cfg.edge.domain}",
            site_domain=cfg.edge.domain,
            origin_secret=pulumi.Output.secret("origin-secret-value"),
            app_port=8080,
            health_path="/health/live",
            routed_paths=["/api/*", "/health/*"],
            access_logs_bucket="platform-test-logs",
            deletion_protection=cfg.environment == "prod",
            blue_green=blue_green,
        ),
    )


def edge(cfg: PlatformConfig) -> Edge:
    return Edge(
        "edge",
        EdgeArgs(
            naming=NAMING,
            config=cfg.edge,
            zone_id="Z123",
            alb_origin_domain=f"origin.{cfg.edge.domain}",
            origin_secret=pulumi.Output.secret("origin-secret-value"),
            assets_bucket_regional_domain_name="assets.s3.us-east-1.amazonaws.com",
            logs_bucket_domain_name="logs.s3.amazonaws.com",
            health_path="/health/live",
            log_retention_days=90,
            waf_logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
        ),
    )


def services(cfg: PlatformConfig) -> dict[str, FargateService]:
    groups = AppSecurityGroups("app-sg", AppSecurityGroupsArgs(NAMING, "vpc-0123", ("api", "worker")))
    cluster = Cluster("compute", ClusterArgs(NAMING, "arn:aws:kms:us-east-1:123456789012:key/logs", 30))
    lb = load_balancer(cfg, blue_green=cfg.services.api.deployment.strategy == "blue_green")
    common = {
        "naming": NAMING,
        "account": account(),
        "az_count": cfg.az_count,
        "cluster": cluster,
        "subnet_ids": ["subnet-p1", "subnet-p2", "subnet-p3"],
        "image_context": REPO,
        "dependencies": [Dependency("database", DB_SG, 5432), Dependency("cache", CACHE_SG, 6379)],
        "secret_arns": [SECRET_ARN],
        "decrypt_key_arns": ["arn:aws:kms:us-east-1:123456789012:key/data"],
    }
    api = FargateService(
        "api",
        ServiceArgs(
            service="api",
            config=cfg.services.api,
            security_group=groups.groups["api"],
            container=ContainerSpec(
                command=["gunicorn", "app.http:create_app()"],
                image_target="api",
                health_check_command=["CMD", "python", "-m", "app.healthcheck"],
                stop_timeout_seconds=45,
                user="10001:10001",
                port=8080,
                environment={"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/orders"},
                secrets={"REDIS_AUTH_TOKEN": SECRET_ARN},
            ),
            log_group_name="/platform/test/api",
            task_statements=[Statement("SendOrders", ("sqs:SendMessage",), [QUEUE_ARN])],
            load_balancing=LoadBalancing(
                alb=lb.alb,
                target_group=lb.target_group,
                listener_rule=lb.forward_rule,
                alb_security_group_id=lb.security_group.id,
                alternate_target_group=lb.alternate_target_group,
            ),
            rollback_alarm_names=["platform-test-alb-5xx"],
            **common,  # type: ignore[arg-type]
        ),
    )
    worker = FargateService(
        "worker",
        ServiceArgs(
            service="worker",
            config=cfg.services.worker,
            security_group=groups.groups["worker"],
            container=ContainerSpec(
                command=["app", "worker"],
                image_target="worker",
                health_check_command=["CMD", "app", "health"],
                stop_timeout_seconds=120,
                user="10001:10001",
            ),
            log_group_name="/platform/test/worker",
            task_statements=[
                Statement(
                    "ConsumeOrders",
                    ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"),
                    [QUEUE_ARN],
                )
            ],
            backlog_queue_name="platform-test-orders",
            **common,  # type: ignore[arg-type]
        ),
    )
    return {"api": api, "worker": worker}
