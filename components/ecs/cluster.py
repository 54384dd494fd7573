"""What the ECS services share: the cluster (Container Insights, Fargate and Spot capacity, audited ECS Exec)
and the tasks' security groups, made before the data stores so each store admits exactly these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import Account, Statement, policy_document
from components.naming import LogPolicy, Naming, child_options
from components.security import KEY_DELETION_WINDOW_DAYS, KeyDomain, key_statements

if TYPE_CHECKING:
    from components.context import StackContext

HTTPS = 443
# ECS Exec with a KMS key (the ECS Exec docs): the operator's client asks for a data key to open the session, the
# task's agent decrypts it. Nothing else uses the key.
EXEC_OPERATOR_KEY_ACTIONS = ("kms:GenerateDataKey",)
EXEC_TASK_KEY_ACTIONS = ("kms:Decrypt",)
EXEC_KEY_DOMAIN = KeyDomain("ecs-exec", "ECS Exec sessions (administered only; use is granted by name)")
# An hour of shell access per assumption of the operator role; AWS allows 1 to 12 hours.
EXEC_OPERATOR_SESSION_SECONDS = 3600


@dataclass(frozen=True)
class ClusterArgs:
    naming: Naming
    logs: LogPolicy
    account: Account

    @classmethod
    def for_stack(cls, stack: StackContext) -> ClusterArgs:
        return cls(stack.naming, stack.logs, stack.account)


class Cluster(pulumi.ComponentResource):
    """The ECS cluster: Container Insights on, FARGATE and FARGATE_SPOT, audited ECS Exec.

    ECS Exec sessions are encrypted with a key of their own (`exec_key`), so every session is a KMS call in
    CloudTrail: the operator role (`exec_operator_role`, assumed by the account's principals with MFA) generates the
    session's data key, and the tasks a service lets in (`grant_exec_session`) decrypt it. `admit_exec_sessions`
    writes the key's policy once the task roles exist, naming exactly those principals.
    """

    cluster: aws.ecs.Cluster
    exec_log_group: aws.cloudwatch.LogGroup
    exec_key: aws.kms.Key
    exec_operator_role: aws.iam.Role
    capacity_providers: aws.ecs.ClusterCapacityProviders

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:service:Cluster", name, None, opts)
        self._name, self._args = name, args
        self._exec_key_policy: aws.kms.KeyPolicy | None = None
        # The key's policy is a resource of its own (`admit_exec_sessions`): the task roles it names come later.
        self.exec_key = aws.kms.Key(
            f"{name}-exec-key",
            description=f"{args.naming.prefix}: {EXEC_KEY_DOMAIN.description}",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            tags=args.naming.tags(EXEC_KEY_DOMAIN.name, "key"),
            opts=child_options(self, ignore_changes=["policy"]),
        )
        aws.kms.Alias(
            f"{name}-exec-alias",
            name=f"alias/{args.naming.name(EXEC_KEY_DOMAIN.name)}",
            target_key_id=self.exec_key.key_id,
            opts=child_options(self),
        )
        # Every ECS Exec session is recorded: the audit trail that replaces a bastion host.
        self.exec_log_group = aws.cloudwatch.LogGroup(
            f"{name}-exec-logs",
            name=args.naming.log_group("ecs", "exec"),
            retention_in_days=args.logs.retention_days,
            kms_key_id=args.logs.key_arn,
            tags=args.naming.tags("ecs-exec"),
            opts=child_options(self),
        )
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.naming.name("cluster"),
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enhanced")],
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=self.exec_key.arn,
                    logging="OVERRIDE",
                    log_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationLogConfigurationArgs(
                        cloud_watch_encryption_enabled=True, cloud_watch_log_group_name=self.exec_log_group.name
                    ),
                )
            ),
            tags=args.naming.tags("cluster"),
            opts=child_options(self),
        )
        # Services name these providers in their strategies: ECS refuses a service whose provider is not yet
        # associated with the cluster, so every service waits for this resource.
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider="FARGATE", weight=1
                )
            ],
            opts=child_options(self),
        )
        self.exec_operator_role = self._exec_operator_role()
        self.register_outputs(
            {
                "cluster_name": self.cluster.name,
                "cluster_arn": self.cluster.arn,
                "exec_key_arn": self.exec_key.arn,
                "exec_operator_role_arn": self.exec_operator_role.arn,
            }
        )

    def grant_exec_session(self) -> Statement:
        """What a task role needs to join an encrypted ECS Exec session: decrypt with the exec key."""
        return Statement("EcsExecDecryptsSessions", EXEC_TASK_KEY_ACTIONS, [self.exec_key.arn])

    def admit_exec_sessions(self, task_role_arns: Sequence[pulumi.Input[str]]) -> aws.kms.KeyPolicy:
        """The exec key's policy: the account administers it, the operator role opens sessions, and the task roles
        `task_role_arns` (those of services with ECS Exec on; none is fine) decrypt them. Called once."""
        if self._exec_key_policy is not None:
            raise ValueError("admit_exec_sessions: the exec key's policy is already written")
        account = self._args.account
        statements = [
            *key_statements(EXEC_KEY_DOMAIN, account),
            Statement("OperatorOpensSessions", EXEC_OPERATOR_KEY_ACTIONS, ["*"], {"AWS": self.exec_operator_role.arn}),
        ]
        if task_role_arns:
            statements.append(
                Statement("TasksDecryptSessions", EXEC_TASK_KEY_ACTIONS, ["*"], {"AWS": list(task_role_arns)})
            )
        self._exec_key_policy = aws.kms.KeyPolicy(
            f"{self._name}-exec-key-policy",
            key_id=self.exec_key.key_id,
            policy=policy_document(*statements),
            opts=child_options(self),
        )
        return self._exec_key_policy

    def _exec_operator_role(self) -> aws.iam.Role:
        """The role an operator assumes to open an ECS Exec shell: the account's principals, with MFA only, may
        assume it (IAM decides who); it may exec into this cluster's tasks and generate the session key."""
        args, account = self._args, self._args.account
        role = aws.iam.Role(
            f"{self._name}-exec-operator",
            name=args.naming.name("ecs-exec-operator", max_length=64),
            description="Opens ECS Exec sessions in the cluster's tasks (MFA required)",
            max_session_duration=EXEC_OPERATOR_SESSION_SECONDS,
            assume_role_policy=policy_document(
                Statement(
                    "AccountPrincipalsWithMfa",
                    ("sts:AssumeRole",),
                    principals={"AWS": account.root_arn},
                    conditions={"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                )
            ),
            tags=args.naming.tags("ecs-exec-operator"),
            opts=child_options(self),
        )
        tasks = pulumi.Output.format(
            "arn:{0}:ecs:{1}:{2}:task/{3}/*", account.partition, account.region, account.account_id, self.cluster.name
        )
        aws.iam.RolePolicy(
            f"{self._name}-exec-operator-policy",
            role=role.id,
            policy=policy_document(
                Statement("ExecIntoClusterTasks", ("ecs:ExecuteCommand",), [self.cluster.arn, tasks]),
                Statement("FindClusterTasks", ("ecs:DescribeTasks",), [tasks]),
                Statement("GenerateSessionKey", EXEC_OPERATOR_KEY_ACTIONS, [self.exec_key.arn]),
            ),
            opts=child_options(self),
        )
        return role


@dataclass(frozen=True)
class AppSecurityGroupsArgs:
    naming: Naming
    vpc_id: pulumi.Input[str]
    services: Sequence[str]


class AppSecurityGroups(pulumi.ComponentResource):
    """One security group per service, made first so the data stores can admit exactly these."""

    groups: dict[str, aws.ec2.SecurityGroup]

    def __init__(self, name: str, args: AppSecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:service:AppSecurityGroups", name, None, opts)
        self.groups = {}
        for service in args.services:
            group = aws.ec2.SecurityGroup(
                f"{name}-{service}",
                vpc_id=args.vpc_id,
                description=f"{service} tasks",
                tags=args.naming.tags(service, "tasks"),
                opts=child_options(self),
            )
            # AWS APIs (through endpoints or NAT) and the notification provider speak HTTPS only.
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{service}-https-out",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                cidr_ipv4="0.0.0.0/0",
                description="HTTPS to AWS APIs and the notification provider",
                opts=child_options(self),
            )
            self.groups[service] = group
        self.register_outputs({f"{service}_security_group_id": g.id for service, g in self.groups.items()})

    @property
    def ids(self) -> list[pulumi.Output[str]]:
        return [group.id for group in self.groups.values()]
