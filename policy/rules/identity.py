"""Identity: least-privilege IAM, hardened containers, IAM database auth, rotated secrets."""

from __future__ import annotations

import json
import re
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from rules.chaos import is_fis_agent
from rules.common import Report, Resource, Rule, Stack, StackReport, items, property_true, statements

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
# Where the ECS Exec (SSM) agent writes in each container; a read-only root needs a writable volume at each.
EXEC_AGENT_PATHS = ("/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm")
CLUSTER = "aws:rds/cluster:Cluster"
PROXY = "aws:rds/proxy:Proxy"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"  # noqa: S105 - a type token
IDENTITY_POLICY_TYPES = (ROLE, ROLE_POLICY, MANAGED_POLICY, USER_POLICY, GROUP_POLICY)
# Actions that take no resource ARN (AWS documents `*` as their only resource).
UNSCOPABLE_ACTIONS = [
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",
    "logs:DescribeLogGroups",
    "ec2:DescribeNetworkInterfaces",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "sts:GetCallerIdentity",
    "kms:ListAliases",
    "secretsmanager:GetRandomPassword",
    "secretsmanager:ListSecrets",
    "sqs:ListQueues",
    "sns:ListTopics",
    "s3:ListAllMyBuckets",
    "tag:GetResources",
    # What the FIS role needs to find its targets (components/chaos.py).
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeSubnets",
    "ssm:ListCommands",
    "ssm:CancelCommand",
    # What the FIS SSM agent sidecar's task role needs (components/ecs/fis_agent.py): activations have no ARN, and
    # tags set at creation are authorized on no resource; the grant is conditioned on this cluster's task tags.
    "ssm:CreateActivation",
    "ssm:AddTagsToResource",
    "ssm:DeleteActivation",
]
SECRET_NAME = r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH)"  # noqa: S105 - a pattern of names


def _names_a_secret_by_arn(name: str, value: Any) -> bool:
    return name.upper().endswith(("_SECRET_ID", "_ARN")) and str(value or "").startswith("arn:")


def _rotates(rotation: Resource) -> bool:
    rules = rotation.get("rotationRules")
    scheduled = hasattr(rules, "get") and bool(rules.get("automaticallyAfterDays") or rules.get("scheduleExpression"))
    return rotation.get("rotationEnabled") is not False and bool(rotation.get("rotationLambdaArn")) and scheduled


def _documents(resource: Resource) -> list[tuple[str, Any]]:
    """The identity policies a resource carries: a role's inline policies, or a policy's document."""
    if resource.type == ROLE:
        return [(str(p.get("name") or "inline"), p.get("policy")) for p in items(resource.get("inlinePolicies"))]
    return [(resource.name, resource.json("policy"))]


def _parse(document: Any) -> Any:
    if isinstance(document, str):
        try:
            return json.loads(document)
        except ValueError:
            return None
    return document


def _allows(document: Any) -> list[Any]:
    return [s for s in statements(_parse(document)) if s.get("Effect") == "Allow"]


@Rule(
    name="iam-no-wildcard-actions",
    area="identity",
    kind="security",
    severity=Severity.HIGH,
    summary="Identity policies allow named actions only: no `*`, no `service:*`, no NotAction.",
    seed="seed 000 security objectives (least privilege IAM)",
    checks="cdk-nag AwsSolutions-IAM5, Checkov CKV_AWS_63 / CKV_AWS_289 / CKV_AWS_290",
    remediation="Name each action in the Statement (components/iam.py's Statement refuses `*` and `service:*`); "
    "build role policies with components.iam.policy_document.",
    resource_types=IDENTITY_POLICY_TYPES,
)
def wildcard_actions(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for name, document in _documents(resource):
        for statement in _allows(document):
            if statement.get("NotAction"):
                report(f"{resource.label}: policy {name} allows NotAction")
            for action in items(statement.get("Action")):
                if action == "*" or str(action).endswith(":*"):
                    report(f"{resource.label}: policy {name} allows {action}")


@Rule(
    name="iam-wildcard-resources-allowlisted",
    area="identity",
    kind="security",
    severity=Severity.HIGH,
    summary="An identity policy grants Resource `*` only for actions AWS cannot scope to a resource (an explicit "
    "allowlist).",
    seed="seed 000 security objectives (least privilege IAM)",
    checks="cdk-nag AwsSolutions-IAM5, Checkov CKV_AWS_355 / CKV_AWS_290",
    remediation="Replace Resource '*' with the ARNs (components.iam.Account.arn) of the queues, keys, secrets and "
    "log groups the role uses; extend allowedActions in policy/config/STACK.json only for actions that take no "
    "resource.",
    resource_types=IDENTITY_POLICY_TYPES,
    config={"allowedActions": {"type": "array", "items": {"type": "string"}, "default": UNSCOPABLE_ACTIONS}},
)
def wildcard_resources(resource: Resource, config: dict[str, Any], report: Report) -> None:
    allowed = set(config["allowedActions"])
    for name, document in _documents(resource):
        for statement in _allows(document):
            if "*" not in items(statement.get("Resource")):
                continue
            scoped = [a for a in items(statement.get("Action")) if a not in allowed]
            if scoped:
                report(f"{resource.label}: policy {name} grants {', '.join(map(str, scoped))} on Resource '*'")


@Rule(
    name="iam-no-admin-managed-policies",
    area="identity",
    kind="security",
    severity=Severity.CRITICAL,
    summary="No role, user or group gets AdministratorAccess, PowerUserAccess or IAMFullAccess.",
    seed="seed 000 security objectives (least privilege IAM)",
    checks="cdk-nag AwsSolutions-IAM4, Checkov CKV_AWS_274",
    remediation="Remove the aws.iam.RolePolicyAttachment (or managed_policy_arns entry) and grant the role's actions "
    "with an aws.iam.RolePolicy built by components.iam.policy_document.",
    resource_types=(ROLE, *ATTACHMENTS),
    config={
        "forbiddenPolicies": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess"],
        }
    },
)
def admin_policies(resource: Resource, config: dict[str, Any], report: Report) -> None:
    arns = items(resource.get("managedPolicyArns")) if resource.type == ROLE else [resource.get("policyArn")]
    for arn in arns:
        if str(arn).rsplit("/", 1)[-1] in config["forbiddenPolicies"]:
            report(f"{resource.label}: attaches {arn}")


def _containers(resource: Resource) -> list[Any]:
    return [c for c in items(resource.json("containerDefinitions")) if hasattr(c, "get")]


def _hardened(resource: Resource) -> list[Any]:
    """The containers that run non-root on a read-only root: all but AWS's FIS SSM agent sidecar, which runs as
    root on a writable root as documented and is admitted only by `fis-templates-opted-in`."""
    return [c for c in _containers(resource) if not is_fis_agent(c)]


@Rule(
    name="ecs-no-secrets-in-environment",
    area="identity",
    kind="security",
    severity=Severity.HIGH,
    summary="No secret-looking name (password, token, API key...) in a container's plain environment; those come "
    "from Secrets Manager through `secrets`.",
    seed="seed 000 security objectives (secrets in Secrets Manager)",
    checks="cdk-nag AwsSolutions-ECS2",
    remediation="Move the variable from `environment` to `secrets` (valueFrom=<aws.secretsmanager.Secret>.arn) in "
    "the container definition built by the service layer.",
    resource_types=(TASK_DEFINITION,),
)
def plain_secrets(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for container in _containers(resource):
        for variable in items(container.get("environment")):
            name = str(variable.get("name") or "")
            if _names_a_secret_by_arn(name, variable.get("value")):
                continue  # where to read the secret (ADMIN_TOKEN_SECRET_ID=arn:...), not its value
            if re.search(SECRET_NAME, name.upper()):
                report(f"{resource.label}: container {container.get('name')} has {name} in plain environment")


@Rule(
    name="ecs-container-non-root",
    area="identity",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Containers run as a non-root user (AWS's FIS SSM agent sidecar excepted: fis-templates-opted-in).",
    seed="seed 000 security objectives (hardened compute)",
    checks="",
    remediation="Run every container as the image's unprivileged user: APP_USER in components/app_services.py "
    "(10001:10001, the user app/Dockerfile creates) reaches each container definition through ContainerSpec.user.",
    resource_types=(TASK_DEFINITION,),
)
def non_root(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for container in _hardened(resource):
        user = str(container.get("user") or "")
        if not user or user.split(":", maxsplit=1)[0] in ("root", "0"):
            report(f"{resource.label}: container {container.get('name')} runs as {user or 'root (unset)'}")


@Rule(
    name="ecs-read-only-root-filesystem",
    area="identity",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Containers have a read-only root filesystem (AWS's FIS SSM agent sidecar excepted: "
    "fis-templates-opted-in).",
    seed="seed 000 security objectives (hardened compute)",
    checks="Checkov CKV_AWS_336",
    remediation="Set readonlyRootFilesystem=true in each container definition of the service layer (mount a volume "
    "for /tmp if the app writes there).",
    resource_types=(TASK_DEFINITION,),
)
def read_only(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for container in _hardened(resource):
        if container.get("readonlyRootFilesystem") is not True:
            report(f"{resource.label}: container {container.get('name')} root filesystem is writable")


@Rule(
    name="ecs-container-not-privileged",
    area="identity",
    kind="security",
    severity=Severity.HIGH,
    summary="No container is privileged.",
    seed="seed 000 security objectives (hardened compute)",
    checks="Checkov CKV_AWS_334",
    remediation="Remove privileged=true from the container definitions of the service layer.",
    resource_types=(TASK_DEFINITION,),
)
def privileged(resource: Resource, config: dict[str, Any], report: Report) -> None:
    for container in _containers(resource):
        if container.get("privileged") is True:
            report(f"{resource.label}: container {container.get('name')} is privileged")


@Rule(
    name="ecs-exec-agent-can-write",
    area="identity",
    kind="security",
    severity=Severity.MEDIUM,
    summary="A service with ECS Exec on gives the exec agent somewhere to write in each essential container with a "
    "read-only root: writable volumes at /managed-agents, /var/lib/amazon/ssm and /var/log/amazon/ssm (AWS documents "
    "a read-only root as unsupported for ECS Exec; without them the agent stops and no session opens).",
    seed="seed 000 security objectives (hardened compute, audited access instead of bastions)",
    checks="",
    remediation="Set platform:services.<service>.executeCommand in Pulumi.STACK.yaml and let the service layer "
    "(components/ecs/container.py) add the agent volumes, or mount a task volume (readOnly false) at each of the three "
    "paths in the container definition; or turn ECS Exec off (enable_execute_command=False).",
    stack=True,
)
def exec_agent_writable(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(service: Resource) -> None:
        if service.get("enableExecuteCommand") is not True:
            return
        for task in stack.deps(service, "taskDefinition", TASK_DEFINITION):
            volumes = {str(v.get("name")) for v in items(task.get("volumes")) if hasattr(v, "get")}
            for container in _containers(task):
                if container.get("readonlyRootFilesystem") is not True or container.get("essential") is False:
                    continue
                writable = {
                    str(m.get("containerPath"))
                    for m in items(container.get("mountPoints"))
                    if hasattr(m, "get") and m.get("readOnly") is not True and str(m.get("sourceVolume")) in volumes
                }
                missing = [path for path in EXEC_AGENT_PATHS if path not in writable]
                if missing:
                    report(
                        f"{service.label}: ECS Exec is on but container {container.get('name')} of {task.name} has "
                        f"a read-only root and no writable volume at {', '.join(missing)}",
                        service.urn,
                    )

    stack.check_each(stack.of(ECS_SERVICE), check)


iam_auth = Rule(
    name="aurora-iam-auth",
    area="identity",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Aurora clusters enable IAM database authentication.",
    seed="seed 002 data layer, seed 000 security objectives",
    checks="Checkov CKV_AWS_162",
    remediation="Set iam_database_authentication_enabled=True on aws.rds.Cluster in the database layer.",
    resource_types=(CLUSTER,),
    check=property_true("iamDatabaseAuthenticationEnabled"),
)


@Rule(
    name="rds-proxy-iam-auth",
    area="identity",
    kind="security",
    severity=Severity.HIGH,
    summary="RDS proxies take IAM tokens, not passwords, from clients: end-to-end IAM (defaultAuthScheme "
    "IAM_AUTH), or iamAuth REQUIRED in every auth block. A password a task read at start stops working when "
    "Secrets Manager rotates it (every 7 days for an RDS-managed master secret).",
    seed="seed 002 data layer (RDS Proxy, Secrets Manager rotation), seed 000 security objectives",
    checks="",
    remediation="Set default_auth_scheme='IAM_AUTH' on aws.rds.Proxy in the database layer (its role then needs "
    "rds-db:connect on the cluster's dbuser ARN for each user, see Database.cluster_connect_arn), or "
    "iam_auth='REQUIRED' in each ProxyAuthArgs; give the task roles rds-db:connect on Database.proxy_connect_arn() "
    "and sign in with a token per new connection (DB_LOGIN=iam).",
    resource_types=(PROXY,),
)
def proxy_iam_auth(resource: Resource, config: dict[str, Any], report: Report) -> None:
    if resource.get("defaultAuthScheme") == "IAM_AUTH":
        return
    auths = [auth for auth in items(resource.get("auths")) if hasattr(auth, "get")]
    if not auths:
        report(f"{resource.label}: no defaultAuthScheme IAM_AUTH and no auth block")
    for index, auth in enumerate(auths):
        if auth.get("iamAuth") != "REQUIRED":
            iam = auth.get("iamAuth")
            report(f"{resource.label}: auth {index} lets clients sign in with a password (iamAuth {iam})")


@Rule(
    name="secrets-rotated",
    area="identity",
    kind="security",
    severity=Severity.LOW,
    summary="Secrets rotate where AWS supports it: the database master password is managed by RDS "
    "(manageMasterUserPassword), other secrets have an enabled rotation with a Lambda and a schedule. Mandatory in "
    "prod (policy/config/prod.json); a third-party API key set in the config cannot rotate and fails it there.",
    seed="seed 000 security objectives (secrets management)",
    checks="cdk-nag AwsSolutions-SMG4, Checkov CKV2_AWS_57",
    remediation="Set manage_master_user_password=True (and master_user_secret_kms_key_id) on aws.rds.Cluster instead "
    "of master_password; give every other secret a rotation Lambda and aws.secretsmanager.SecretRotation(secret_id="
    "<secret>.id, rotation_lambda_arn=..., rotation_rules=...) (components/rotation.py does for the generated ones).",
    stack=True,
    enforcement=EnforcementLevel.ADVISORY,
)
def rotation(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check_cluster(cluster: Resource) -> None:
        if cluster.get("manageMasterUserPassword") is not True and not cluster.get("replicationSourceIdentifier"):
            report(f"{cluster.label}: the master password is not managed (rotated) by RDS", cluster.urn)

    def check_secret(secret: Resource) -> None:
        rotations = stack.referrers(secret, "secretId", SECRET_ROTATION)
        if not any(_rotates(rotation) for rotation in rotations):
            report(f"{secret.label}: no enabled rotation with a Lambda and a schedule", secret.urn)

    stack.check_each(stack.of(CLUSTER), check_cluster)
    stack.check_each(stack.of(SECRET), check_secret)
