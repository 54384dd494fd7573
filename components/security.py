"""Security primitives: customer-managed KMS keys, one per data domain, with least-privilege key policies."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

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


class Security(pulumi.ComponentResource):
    """KMS keys per data domain (`keys["data"]`, `keys["logs"]`, `keys["messaging"]`), rotation on."""

    keys: dict[str, aws.kms.Key]

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:security:Security", name, None, opts)
        self.keys = {domain.name: self._key(name, domain, args) for domain in KEY_DOMAINS}
        self.register_outputs({f"{domain}_key_arn": key.arn for domain, key in self.keys.items()})

    def _key(self, name: str, domain: KeyDomain, args: SecurityArgs) -> aws.kms.Key:
        account, naming = args.account, args.naming
        statements = [
            Statement("AccountAdministers", KEY_ADMIN_ACTIONS, ["*"], {"AWS": account.root_arn}),
        ]
        if domain.service_principals:
            principals = [account.service_principal(service) for service in domain.service_principals]
            conditions = (
                {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": account.arn("logs", "log-group:*")}}
                if domain.name == "logs"
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
            opts=child_options(self),
        )
        aws.kms.Alias(
            f"{name}-{domain.name}-alias",
            name=f"alias/{naming.name(domain.name)}",
            target_key_id=key.key_id,
            opts=child_options(self),
        )
        return key
