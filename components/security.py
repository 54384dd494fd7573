"""Security primitives: customer-managed KMS keys per data domain, and the app's secrets in Secrets Manager."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.iam import Account, Condition, Principal, Statement, confused_deputy_conditions, policy_document
from components.naming import Naming, child_options

KEY_USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
# The account root keeps administration, so the key can never be locked out (KMS's lockout safety check wants
# the caller able to PutKeyPolicy again): the actions of AWS's "key administrators" statement that act on a
# key, named (its wildcards also match account-level actions a key policy cannot grant), less `kms:Create*`,
# which would let any IAM principal of the account create grants (key use) and aliases.
KEY_ADMIN_ACTIONS = (
    "kms:DescribeKey", "kms:EnableKey", "kms:EnableKeyRotation", "kms:DisableKey", "kms:DisableKeyRotation",
    "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListKeyRotations", "kms:ListResourceTags",
    "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:PutKeyPolicy", "kms:UpdateKeyDescription",
    "kms:UpdateAlias", "kms:DeleteAlias", "kms:RevokeGrant", "kms:TagResource", "kms:UntagResource",
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
# What a rotation changes on the seeded secret version (its value, and its stage once a new version is current).
ROTATED_VERSION_PROPERTIES = ("secretString", "versionStages")


@dataclass(frozen=True)
class KeyDomain:
    """A data domain with its own key: the services that encrypt with it."""

    name: str
    description: str
    # Services that call KMS as themselves (their service principal is in the key policy).
    service_principals: tuple[str, ...] = ()
    # Services that use the key on a caller's behalf (grants, through kms:ViaService).
    via_services: tuple[str, ...] = ()


DATA_DOMAIN = KeyDomain(
    "data",
    "Aurora, ElastiCache, Secrets Manager, S3 and AWS Backup",
    # CloudFront decrypts the assets bucket's objects itself when it reads them through OAC.
    service_principals=("cloudfront",),
    via_services=("rds", "elasticache", "secretsmanager", "s3", "backup"),
)
KEY_DOMAINS: tuple[KeyDomain, ...] = (
    DATA_DOMAIN,
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
        self._name, self._naming, self._account = name, args.naming, args.account
        self._data_key_policy: aws.kms.KeyPolicy | None = None
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
            self.secrets[secret_name] = self._secret(
                secret_name, description, self.secret_values[secret_name], rotated=True
            )
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

    def grant_read(self, secret: str, sid: str) -> Statement:
        """Read the secret `secret` (`secrets[secret]`) by ARN at run time."""
        return Statement(sid, ("secretsmanager:GetSecretValue",), [self.secrets[secret].arn])

    def grant_decrypt(self, domain: str, sid: str = "DecryptSecrets") -> Statement:
        """Decrypt with the key of `domain` (`keys[domain]`): the secrets are encrypted with the data key."""
        return Statement(sid, ("kms:Decrypt",), [self.keys[domain].arn])

    @property
    def cache_auth_token(self) -> pulumi.Output[str]:
        return self.secret_values["cache-auth-token"]

    @property
    def origin_verify_value(self) -> pulumi.Output[str]:
        return self.secret_values["origin-verify"]

    def _secret(
        self, secret_name: str, description: str, value: pulumi.Output[str], *, rotated: bool = False
    ) -> aws.secretsmanager.Secret:
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
            # A rotated secret's value, and which version is AWSCURRENT, belong to its rotation Lambda after
            # the seed (components/rotation.py): `pulumi up` must not put the seeded value back.
            opts=child_options(self, ignore_changes=list(ROTATED_VERSION_PROPERTIES) if rotated else []),
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

    def admit_distribution(self, distribution_arn: pulumi.Input[str]) -> aws.kms.KeyPolicy:
        """Let the CloudFront distribution `distribution_arn` (and no other) decrypt with the data key, for the
        assets it reads through origin access control. The distribution is built after this key (it needs the
        bucket the key encrypts), so the data key's policy is a resource of its own, written once it exists."""
        if self._data_key_policy is not None:
            raise ValueError("admit_distribution: the data key already admits a distribution")
        self._data_key_policy = aws.kms.KeyPolicy(
            f"{self._name}-data-key-policy",
            key_id=self.keys["data"].key_id,
            policy=policy_document(*key_statements(DATA_DOMAIN, self._account, distribution_arn)),
            opts=child_options(self),
        )
        return self._data_key_policy

    def _key(
        self, name: str, domain: KeyDomain, account: Account, provider: pulumi.ProviderResource | None = None
    ) -> aws.kms.Key:
        naming = self._naming
        # A key that admits CloudFront gets its policy from `admit_distribution`: the key never writes one, so
        # the KeyPolicy resource is its one owner.
        separate_policy = "cloudfront" in domain.service_principals
        key = aws.kms.Key(
            f"{name}-{domain.name}-key",
            description=f"{naming.prefix}: {domain.description}",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=None if separate_policy else policy_document(*key_statements(domain, account)),
            tags=naming.tags(domain.name, "key"),
            opts=child_options(self, provider=provider, ignore_changes=["policy"] if separate_policy else None),
        )
        aws.kms.Alias(
            f"{name}-{domain.name}-alias",
            name=f"alias/{naming.name(domain.name)}",
            target_key_id=key.key_id,
            opts=child_options(self, provider=provider),
        )
        return key


def key_statements(
    domain: KeyDomain, account: Account, distribution_arn: pulumi.Input[str] | None = None
) -> list[Statement]:
    """A key's policy: the account administers it (no grant or alias creation without conditions), each service
    principal of `domain` uses it for this account's resources only, and the account's principals use it only
    through the services of `domain` (`kms:ViaService`, `kms:CallerAccount`); CloudFront only as
    `distribution_arn`."""
    statements = [Statement("AccountAdministers", KEY_ADMIN_ACTIONS, ["*"], {"AWS": account.root_arn})]
    for service in domain.service_principals:
        principal: Principal = {"Service": account.service_principal(service)}
        if service == "cloudfront":
            if distribution_arn is None:
                raise ValueError(f"key {domain.name}: CloudFront is admitted only with its distribution's ARN")
            conditions: Condition = {"StringEquals": {"AWS:SourceArn": distribution_arn}}
            statements.append(Statement("DistributionDecrypts", ("kms:Decrypt",), ["*"], principal, conditions))
            continue
        if service == "logs":
            # CloudWatch Logs names the log group in the encryption context, not in aws:SourceArn.
            conditions = {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": account.arn("logs", "log-group:*")}}
        else:
            conditions = confused_deputy_conditions(service, account)
        sid = "".join(part.capitalize() for part in service.split("-")) + "Encrypts"
        statements.append(Statement(sid, KEY_USE_ACTIONS, ["*"], principal, conditions))
    if domain.via_services:
        statements.extend(via_service_statements(account, domain.via_services))
    return statements


def via_service_statements(account: Account, services: tuple[str, ...]) -> list[Statement]:
    """The account's principals use the key only through `services` in the key's region; grants only for the
    AWS resources those services create (the grants RDS, Backup and ElastiCache make on the key)."""
    through = {
        "kms:ViaService": [f"{service}.{account.region}.amazonaws.com" for service in services],
        "kms:CallerAccount": account.account_id,
    }
    return [
        Statement(
            "AccountUsesThroughServices", KEY_USE_ACTIONS, ["*"], {"AWS": account.root_arn}, {"StringEquals": through}
        ),
        Statement(
            "AccountGrantsToServiceResources",
            ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"),
            ["*"],
            {"AWS": account.root_arn},
            {"StringEquals": through, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
    ]
