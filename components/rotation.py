"""Secrets that rotate: a Secrets Manager rotation schedule and a Lambda per generated secret.

The Lambdas' code is the `rotation/` package of this repository (one module per secret on a shared
four-step handler). They call control-plane APIs only (Secrets Manager, ElastiCache, Elastic Load
Balancing, CloudFront), which are public regional or global endpoints: outside the VPC they need no
ENIs, no NAT path and no security group, and nothing they call lives in the VPC.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.edge import ALB_ORIGIN
from components.iam import Account, Statement, policy_document
from components.load_balancer import ORIGIN_SECRET_HEADER
from components.naming import LogPolicy, Naming, child_options

if TYPE_CHECKING:
    from components.cache import Cache
    from components.context import StackContext
    from components.edge import Edge
    from components.load_balancer import LoadBalancer

ROTATION_PACKAGE = Path(__file__).resolve().parent.parent / "rotation"
RUNTIME = "python3.12"
# Secrets Manager gives each step its own invocation; the cache and CloudFront steps wait for the change to
# apply (minutes), so the function may run to Lambda's limit.
TIMEOUT_SECONDS = 900
MEMORY_MB = 256
# One rotation of a secret at a time: Secrets Manager never runs two for one secret, and a cap keeps a
# runaway caller from using the account's concurrency.
RESERVED_CONCURRENCY = 1
# How often each secret rotates, unless the stack says otherwise.
DEFAULT_ROTATION_DAYS = 30
SECRETS_MANAGER = "secretsmanager.amazonaws.com"


@dataclass(frozen=True)
class RotatedSecret:
    """One rotated secret: its Lambda module and what that Lambda may do beyond its own secret."""

    module: str
    environment: dict[str, pulumi.Input[str]]
    statements: Sequence[Statement] = ()


@dataclass(frozen=True)
class RotationArgs:
    naming: Naming
    account: Account
    logs: LogPolicy
    # The key the secrets are encrypted with: the Lambdas read and write their values through Secrets Manager.
    data_key_arn: pulumi.Input[str]
    # Secret key in `Security.secrets` -> the secret and how it rotates.
    secrets: dict[str, tuple[aws.secretsmanager.Secret, RotatedSecret]]
    # Default: 30.
    rotation_days: int = DEFAULT_ROTATION_DAYS

    def __post_init__(self) -> None:
        if not 1 <= self.rotation_days <= 1000:
            raise ValueError(
                f"rotation: rotation_days takes 1-1000, Secrets Manager's range (got {self.rotation_days})"
            )

    @classmethod
    def for_stack(cls, stack: StackContext, cache: Cache, load_balancer: LoadBalancer, edge: Edge) -> RotationArgs:
        """The cache AUTH token, the CloudFront origin secret and the admin token, each with its Lambda."""
        secrets, rule, distribution = stack.security.secrets, load_balancer.forward_rule, edge.distribution
        group = cache.replication_group
        return cls(
            naming=stack.naming,
            account=stack.account,
            logs=stack.logs,
            data_key_arn=stack.keys["data"].arn,
            secrets={
                "cache-auth-token": (
                    secrets["cache-auth-token"],
                    RotatedSecret(
                        "cache_token",
                        {"REPLICATION_GROUP_ID": group.id},
                        (
                            Statement(
                                "RotateAuthToken",
                                ("elasticache:ModifyReplicationGroup", "elasticache:DescribeReplicationGroups"),
                                [group.arn],
                            ),
                        ),
                    ),
                ),
                "origin-verify": (
                    secrets["origin-verify"],
                    RotatedSecret(
                        "origin_secret",
                        {
                            "LISTENER_RULE_ARN": rule.arn,
                            "ROUTED_PATHS": json.dumps(list(load_balancer.routed_paths)),
                            "DISTRIBUTION_ID": distribution.id,
                            "ORIGIN_ID": ALB_ORIGIN,
                            "HEADER_NAME": ORIGIN_SECRET_HEADER,
                        },
                        (
                            Statement("AcceptOriginValues", ("elasticloadbalancing:ModifyRule",), [rule.arn]),
                            # GetDistribution: the waiter that holds the old value until every edge has the new.
                            Statement(
                                "SendOriginValue",
                                (
                                    "cloudfront:GetDistributionConfig",
                                    "cloudfront:UpdateDistribution",
                                    "cloudfront:GetDistribution",
                                ),
                                [distribution.arn],
                            ),
                        ),
                    ),
                ),
                "admin-token": (secrets["admin-token"], RotatedSecret("admin_token", {})),
            },
        )


class SecretRotations(pulumi.ComponentResource):
    """Per secret: a Lambda (its own role, log group, X-Ray tracing, reserved concurrency), the permission
    for Secrets Manager to invoke it for that secret only, and the rotation schedule."""

    functions: dict[str, aws.lambda_.Function]
    rotations: dict[str, aws.secretsmanager.SecretRotation]
    roles: dict[str, aws.iam.Role]

    def __init__(self, name: str, args: RotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:rotation:SecretRotations", name, None, opts)
        self._name, self._args = name, args
        self.functions, self.rotations, self.roles = {}, {}, {}
        code = rotation_code()
        for secret_name, (secret, spec) in args.secrets.items():
            self._rotate(secret_name, secret, spec, code)
        self.register_outputs(
            {
                "function_arns": {label: fn.arn for label, fn in self.functions.items()},
                "rotation_days": args.rotation_days,
            }
        )

    def _rotate(
        self, label: str, secret: aws.secretsmanager.Secret, spec: RotatedSecret, code: pulumi.AssetArchive
    ) -> None:
        args, naming, name = self._args, self._args.naming, f"{self._name}-{label}"
        function_name = naming.name("rotate", label, max_length=64)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=naming.log_group("rotation", label),
            retention_in_days=args.logs.retention_days,
            kms_key_id=args.logs.key_arn,
            tags=naming.tags("rotate", label),
            opts=child_options(self),
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=lambda_trust_policy(args.account),
            tags=naming.tags("rotate", label),
            opts=child_options(self),
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                Statement(
                    "RotateOwnSecret",
                    (
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                        "secretsmanager:ListSecretVersionIds",
                    ),
                    [secret.arn],
                ),
                Statement(
                    "SecretKeyThroughSecretsManager",
                    ("kms:Decrypt", "kms:GenerateDataKey"),
                    [args.data_key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{args.account.region}.amazonaws.com"}
                    },
                ),
                Statement(
                    "WriteOwnLogs",
                    ("logs:CreateLogStream", "logs:PutLogEvents"),
                    [pulumi.Output.concat(log_group.arn, ":*")],
                ),
                Statement("Trace", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), ["*"]),
                *spec.statements,
            ),
            opts=child_options(self),
        )
        function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description=f"{naming.prefix}: rotates the {label} secret",
            runtime=RUNTIME,
            handler=f"rotation.{spec.module}.handler",
            code=code,
            role=role.arn,
            timeout=TIMEOUT_SECONDS,
            memory_size=MEMORY_MB,
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            architectures=["arm64"],
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(spec.environment))
            if spec.environment
            else None,
            tags=naming.tags("rotate", label),
            opts=child_options(self, depends_on=[log_group]),
        )
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal=SECRETS_MANAGER,
            source_account=args.account.account_id,
            source_arn=secret.arn,
            opts=child_options(self),
        )
        self.rotations[label] = aws.secretsmanager.SecretRotation(
            f"{name}-rotation",
            secret_id=secret.id,
            rotation_lambda_arn=function.arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=args.rotation_days
            ),
            # The first rotation waits for the schedule: a deploy does not also rotate what it just seeded.
            rotate_immediately=False,
            opts=child_options(self, depends_on=[permission]),
        )
        self.functions[label], self.roles[label] = function, role


def lambda_trust_policy(account: Account) -> pulumi.Output[str]:
    """Lambda assumes the role for functions of this account only (the confused-deputy condition)."""
    return policy_document(
        Statement(
            "LambdaAssumesForThisAccount",
            ("sts:AssumeRole",),
            principals={"Service": "lambda.amazonaws.com"},
            conditions={"StringEquals": {"aws:SourceAccount": account.account_id}},
        )
    )


def rotation_code() -> pulumi.AssetArchive:
    """The `rotation` package's sources, file by file: no caches, so the archive changes only with the code."""
    files = sorted(ROTATION_PACKAGE.glob("*.py"))
    if not files:
        raise ValueError(f"rotation: no Lambda sources in {ROTATION_PACKAGE}")
    return pulumi.AssetArchive({f"rotation/{path.name}": pulumi.FileAsset(str(path)) for path in files})
