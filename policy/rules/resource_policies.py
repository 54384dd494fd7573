"""Key, trust and resource policies: who may use a key, assume a role or read a bucket, and on what conditions.

AWS evaluates condition keys case-insensitively (`AWS:SourceArn` is `aws:sourcearn`), so every check here
compares lower-cased keys; actions are matched with their wildcards expanded (`kms:Create*` grants
`kms:CreateGrant`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule, Stack, StackReport, is_map, items, statements

KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE = "aws:iam/role:Role"
CLOUDFRONT = "cloudfront.amazonaws.com"
# Key-policy actions that hand out use of the key (a grant) or name it (an alias): never to the whole account
# without conditions. `kms:PutKeyPolicy` is the one an administrator must keep (the lockout safety check).
KEY_ACCESS_ACTIONS = ("kms:CreateGrant", "kms:CreateAlias")
KEY_USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey")
KEY_ADMIN_ACTION = "kms:PutKeyPolicy"
# What scopes a service principal's use of a key to this account: the confused-deputy keys, or the
# encryption context a service such as CloudWatch Logs binds to its resource.
SOURCE_KEYS = ("aws:sourceaccount", "aws:sourcearn", "aws:sourceowner")
ENCRYPTION_CONTEXT = "kms:encryptioncontext:"
# Keys that scope the account's principals' use of a key to a calling service (and account).
CALLER_KEYS = ("kms:viaservice", "kms:calleraccount", "kms:grantisforawsresource")
# Service principals that set `aws:SourceArn` when they assume a role (their guides show it in the trust policy).
SOURCE_ARN_SERVICES = ["vpc-flow-logs.amazonaws.com", "ecs-tasks.amazonaws.com", "monitoring.rds.amazonaws.com"]


def _grants(statement: Mapping[str, Any], action: str) -> bool:
    """Whether the statement's Action (wildcards expanded) includes `action`."""
    return any(fnmatch.fnmatchcase(action.lower(), str(pattern).lower()) for pattern in items(statement.get("Action")))


def _grants_prefix(statement: Mapping[str, Any], prefix: str) -> bool:
    """Whether the statement grants any action starting `prefix` (`kms:GenerateDataKey` covers its variants)."""
    return any(
        fnmatch.fnmatchcase(prefix.lower(), str(p).lower()) or str(p).lower().startswith(prefix.lower())
        for p in items(statement.get("Action"))
    )


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    condition = statement.get("Condition") or {}
    keys: set[str] = set()
    for values in condition.values() if is_map(condition) else ():
        keys.update(str(key).lower() for key in (values.keys() if is_map(values) else ()))
    return keys


def _principals(statement: Mapping[str, Any], kind: str) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"] if kind == "AWS" else []
    if not isinstance(principal, Mapping):
        return []
    return [str(p) for p in items(principal.get(kind))]


def _is_account_wide(principal: str) -> bool:
    """The whole account (its root, or its bare id) or everyone: the account's IAM policies decide who."""
    return principal == "*" or principal.endswith(":root") or principal.isdigit()


def key_policy_problems(document: Any) -> list[str]:
    """What a key policy gets wrong: account-wide grants or aliases without conditions, account-wide key use not
    scoped to a calling service, service principals not scoped to this account, and no administrator left."""
    problems: list[str] = []
    can_administer = False
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid") or "(no Sid)"
        keys = _condition_keys(statement)
        account_wide = any(_is_account_wide(p) for p in _principals(statement, "AWS"))
        if account_wide and _grants(statement, KEY_ADMIN_ACTION):
            can_administer = True
        if account_wide and not keys:
            opened = [action for action in KEY_ACCESS_ACTIONS if _grants(statement, action)]
            if opened:
                problems.append(f"statement {sid} grants {', '.join(opened)} to the whole account without conditions")
        uses = any(_grants_prefix(statement, action) for action in KEY_USE_ACTIONS)
        if account_wide and uses and not keys & set(CALLER_KEYS):
            problems.append(f"statement {sid} lets the whole account use the key without kms:ViaService")
        services = _principals(statement, "Service")
        if services and not (keys & set(SOURCE_KEYS) or any(k.startswith(ENCRYPTION_CONTEXT) for k in keys)):
            problems.append(f"statement {sid} admits {', '.join(services)} without aws:SourceAccount/aws:SourceArn")
    if not can_administer:
        problems.append(f"no statement lets the account's administrators call {KEY_ADMIN_ACTION} (locked-out key)")
    return problems


@Rule(
    name="kms-key-policy-least-privilege",
    area="encryption",
    kind="security",
    severity=Severity.HIGH,
    summary="KMS key policies give the account administration (kms:PutKeyPolicy stays, so no key is locked out) "
    "but never kms:Create*/kms:CreateGrant/kms:CreateAlias without conditions; the account's principals use a key "
    "only through its services (kms:ViaService, kms:CallerAccount, grants only for AWS resources); every service "
    "principal is scoped to this account (aws:SourceAccount/aws:SourceArn, or the encryption context); no key "
    "keeps the default key policy (issue 17, keys).",
    seed="seed 000 security objectives (customer-managed keys, least privilege)",
    checks="Checkov CKV_AWS_33 (KMS key policy wildcard principal), AWS KMS default key policy guidance",
    remediation="Build key policies with components.security.key_statements: named admin actions without "
    "kms:Create*, kms:CreateGrant only with kms:GrantIsForAWSResource and kms:ViaService, service principals with "
    "components.iam.confused_deputy_conditions; give a key whose policy needs a later resource an aws.kms.KeyPolicy.",
    stack=True,
)
def key_policy_least_privilege(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(key: Resource) -> None:
        documents = [p.json("policy") for p in stack.referrers(key, "keyId", KMS_KEY_POLICY)]
        own = key.json("policy")
        if own is not None:
            documents.append(own)
        if not documents:
            report(f"{key.label}: no key policy (the default one gives the whole account kms:*)", key.urn)
        for document in documents:
            for problem in key_policy_problems(document):
                report(f"{key.label}: {problem}", key.urn)

    stack.check_each(stack.of(KMS_KEY), check)


def cloudfront_problems(document: Any) -> list[str]:
    """Statements admitting CloudFront without pinning one distribution (`StringEquals` `AWS:SourceArn`)."""
    problems = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow" or CLOUDFRONT not in _principals(statement, "Service"):
            continue
        condition = statement.get("Condition") or {}
        pinned = [
            value
            for operator, values in (condition.items() if is_map(condition) else ())
            if str(operator) == "StringEquals" and is_map(values)
            for key, value in values.items()
            if str(key).lower() == "aws:sourcearn"
        ]
        if not pinned or any("*" in str(arn) for value in pinned for arn in items(value)):
            sid = statement.get("Sid") or "(no Sid)"
            problems.append(f"statement {sid} admits any CloudFront distribution, not this stack's")
    return problems


@Rule(
    name="cloudfront-access-pinned-to-distribution",
    area="edge",
    kind="security",
    severity=Severity.HIGH,
    summary="A bucket or key policy admits cloudfront.amazonaws.com only for this stack's distribution "
    "(StringEquals AWS:SourceArn = the distribution's ARN), not any distribution in the account or in AWS "
    "(issue 17, keys).",
    seed="seed 002 storage and edge (origin access control), seed 000 security objectives",
    checks="AWS CloudFront OAC guide (bucket and key policy with AWS:SourceArn)",
    remediation="Write the policy after the distribution exists: Storage.admit_distribution and "
    "Security.admit_distribution(edge.distribution.arn) in __main__.py.",
    resource_types=(BUCKET_POLICY, KMS_KEY, KMS_KEY_POLICY),
)
def cloudfront_pinned(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for problem in cloudfront_problems(resource.json("policy")):
        report(f"{resource.label}: {problem}")


@Rule(
    name="iam-service-trust-confused-deputy",
    area="identity",
    kind="security",
    severity=Severity.HIGH,
    summary="Every role an AWS service assumes checks aws:SourceAccount in its trust policy, and aws:SourceArn "
    "for the services that set it (sourceArnServices), against the cross-service confused deputy (issue 17, "
    "trust).",
    seed="seed 000 security objectives (least privilege IAM)",
    checks="Prowler iam_role_cross_service_confused_deputy_prevention",
    remediation="Build trust policies with components.iam.service_trust_policy(service, account), which adds the "
    "conditions AWS documents for the service.",
    resource_types=(ROLE,),
    config={
        "sourceArnServices": {"type": "array", "items": {"type": "string"}, "default": SOURCE_ARN_SERVICES},
    },
)
def service_trust(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for statement in statements(resource.json("assumeRolePolicy")):
        services = _principals(statement, "Service")
        if statement.get("Effect") != "Allow" or not services:
            continue
        keys = _condition_keys(statement)
        missing = [] if "aws:sourceaccount" in keys else ["aws:SourceAccount"]
        if "aws:sourcearn" not in keys and set(services) & set(config["sourceArnServices"]):
            missing.append("aws:SourceArn")
        if missing:
            report(f"{resource.label}: trust of {', '.join(services)} lacks {' and '.join(missing)}")
