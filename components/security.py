"""Security primitives: customer-managed KMS keys per data domain, and the app's secrets in Secrets Manager."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.iam import Account, Statement, policy_document
from components.naming import Naming, child_options

KEY_USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
# The account root keeps administration (the key-policy lockout check demands it), by named actions.
KEY_ADMIN_ACTIONS = (
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
)  # fmt: skip
KEY_DELETION_WINDOW_DAYS = 30
# CloudFront's certificates, WAF ACLs and WAF logs live in us-east-1, whatever the stack's region.
EDGE_REGION = "us-east-1"
# Generated secrets: letters and digits only, so they are valid as an ElastiCache AUTH token (16 to 128
# printable characters; of the non-alphanumerics only !&#$^<>- ) and as an HTTP header value.
GENERATED_SECRET_LENGTH = 64
# A deleted secret stays recoverable this long (AWS allows 7 to 30 days).
SECRET_RECOVERY_WINDOW_DAYS = 30
# Secrets generated here: key in `Security.secrets` -> what the secret is for.
GENERATED_SECRETS = {
    "cache-auth-token": "AUTH token of the cache replication group",
    "origin-verify": "Header value CloudFront sends to the ALB to prove a request came through it",
    "admin-token": "Bearer token of the API's admin endpoints",
}
NOTIFICATION_API_KEY = "notification-api-key"


@dataclass(frozen=True)
class KeyDomain:
    """A data domain with its own key: the services that encrypt with it."""

    name: str
    description: str
    # Services that call KMS as themselves (their service principal is in the key policy).
    service_principals: tuple[str, ...] = ()
    # Services that use the key on a caller's behalf (grants, through kms:ViaService).
    via_services: tuple[str, ...] = ()


KEY_DOMAINS: tuple[KeyDomain, ...] = (
    KeyDomain(
        "data",
        "Aurora, ElastiCache, Secrets Manager, S3 and AWS Backup",
        # CloudFront decrypts the assets bucket's objects itself when it reads them through OAC.
        service_principals=("cloudfront",),
        via_services=("rds", "elasticache", "secretsmanager", "s3", "backup"),
    ),
    KeyDomain("logs", "CloudWatch Logs", service_principals=("logs",)),
    KeyDomain(
        "messaging",
        "SQS and SNS, and the services that publish alarms and budgets to SNS",
        service_principals=("sns", "sqs", "cloudwatch", "budgets", "events"),
        via_services=("sqs", "sns"),
    ),
)


@dataclass(frozen=True)
class SecurityArgs:
    naming: Naming
    account: Account
    # The notification provider's API key from the config (`app.notificationApiKey`), if set.
    notification_api_key: pulumi.Input[str] | None = None


class Security(pulumi.ComponentResource):
    """KMS keys per data domain (`keys["data"]`, `keys["logs"]`, `keys["messaging"]`), rotation on, and
    Secrets Manager secrets encrypted with the data key (`secrets["cache-auth-token"]`,
    `secrets["origin-verify"]`, and `secrets["notification-api-key"]` when the config sets the key).

    `secret_values` holds the generated values as Pulumi secrets, for the resources that must be given
    the value itself (the cache's AUTH token, CloudFront's origin header); everything else reads the
    secret by ARN at run time.
    """

    keys: dict[str, aws.kms.Key]
    # The key for the edge's logs (WAF) in us-east-1: the logs key itself when the stack runs there.
    edge_logs_key_arn: pulumi.Output[str]
    secrets: dict[str, aws.secretsmanager.Secret]
    secret_values: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:security:Security", name, None, opts)
        self._name, self._naming = name, args.naming
        self.keys = {domain.name: self._key(name, domain, args.account) for domain in KEY_DOMAINS}
        self.edge_logs_key_arn = (
            self.keys["logs"].arn if args.account.region == EDGE_REGION else self._edge_logs_key(name, args).arn
        )
        self.secrets, self.secret_values = {}, {}
        for secret_name, description in GENERATED_SECRETS.items():
            password = random.RandomPassword(
                f"{name}-{secret_name}-value",
                length=GENERATED_SECRET_LENGTH,
                special=False,
                opts=child_options(self),
            )
            self.secret_values[secret_name] = pulumi.Output.secret(password.result)
            self.secrets[secret_name] = self._secret(secret_name, description, self.secret_values[secret_name])
        if args.notification_api_key is not None:
            self.secrets[NOTIFICATION_API_KEY] = self._secret(
                NOTIFICATION_API_KEY,
                "API key of the worker's notification provider",
                pulumi.Output.secret(args.notification_api_key),
            )
        self.register_outputs(
            {
                **{f"{domain}_key_arn": key.arn for domain, key in self.keys.items()},
                **{f"{secret.replace('-', '_')}_secret_arn": s.arn for secret, s in self.secrets.items()},
            }
        )

    @property
    def cache_auth_token(self) -> pulumi.Output[str]:
        return self.secret_values["cache-auth-token"]

    @property
    def origin_verify_value(self) -> pulumi.Output[str]:
        return self.secret_values["origin-verify"]

    def _secret(self, secret_name: str, description: str, value: pulumi.Output[str]) -> aws.secretsmanager.Secret:
        secret = aws.secretsmanager.Secret(
            f"{self._name}-{secret_name}",
            name=self._naming.name(secret_name),
            description=f"{self._naming.prefix}: {description}",
            kms_key_id=self.keys["data"].arn,
            recovery_window_in_days=SECRET_RECOVERY_WINDOW_DAYS,
            tags=self._naming.tags(secret_name),
            opts=child_options(self),
        )
        aws.secretsmanager.SecretVersion(
            f"{self._name}-{secret_name}-version",
            secret_id=secret.id,
            secret_string=value,
            opts=child_options(self),
        )
        return secret

    def _edge_logs_key(self, name: str, args: SecurityArgs) -> aws.kms.Key:
        edge_provider = aws.Provider(
            f"{name}-{EDGE_REGION}",
            region=EDGE_REGION,
            default_tags=aws.ProviderDefaultTagsArgs(tags=self._naming.base_tags),
            opts=child_options(self),
        )
        domain = KeyDomain("edge-logs", f"CloudWatch Logs in {EDGE_REGION} (WAF)", service_principals=("logs",))
        return self._key(name, domain, replace(args.account, region=EDGE_REGION), edge_provider)

    def _key(
        self, name: str, domain: KeyDomain, account: Account, provider: pulumi.ProviderResource | None = None
    ) -> aws.kms.Key:
        naming = self._naming
        statements = [
            Statement("AccountAdministers", KEY_ADMIN_ACTIONS, ["*"], {"AWS": account.root_arn}),
        ]
        if domain.service_principals:
            principals = [account.service_principal(service) for service in domain.service_principals]
            conditions = (
                {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": account.arn("logs", "log-group:*")}}
                if "logs" in domain.service_principals
                else {"StringEquals": {"aws:SourceAccount": account.account_id}}
            )
            statements.append(Statement("ServicesEncrypt", KEY_USE_ACTIONS, ["*"], {"Service": principals}, conditions))
        if domain.via_services:
            statements.append(
                Statement(
                    "AccountUsesThroughServices",
                    (*KEY_USE_ACTIONS, "kms:CreateGrant"),
                    ["*"],
                    {"AWS": account.root_arn},
                    {
                        "StringEquals": {
                            "kms:ViaService": [
                                f"{service}.{account.region}.amazonaws.com" for service in domain.via_services
                            ]
                        }
                    },
                )
            )
        key = aws.kms.Key(
            f"{name}-{domain.name}-key",
            description=f"{naming.prefix}: {domain.description}",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=policy_document(*statements),
            tags=naming.tags(domain.name, "key"),
            opts=child_options(self, provider=provider),
        )
        aws.kms.Alias(
            f"{name}-{domain.name}-alias",
            name=f"alias/{naming.name(domain.name)}",
            target_key_id=key.key_id,
            opts=child_options(self, provider=provider),
        )
        return key
