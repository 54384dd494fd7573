"""Chaos as code: AWS FIS experiment templates against this stack's own API tasks, Aurora cluster and cache.

Each template stops itself when the API's stop alarms fire (the site failing for users), runs as a role that may
touch only this stack's resources, and logs to an encrypted log group. Templates cost nothing until started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import Account, Statement, policy_document
from components.load_balancer import ROLLBACK_ALARMS
from components.naming import LogPolicy, Naming, child_options
from stack_config.schema import ChaosConfig, ChaosExperiment

if TYPE_CHECKING:
    from components.app_services import AppServices
    from components.cache import Cache
    from components.context import StackContext
    from components.database import Database
    from components.ecs import Cluster
    from components.load_balancer import LoadBalancer
    from components.network import Network

# FIS's log schema version 2 (the current one) names the resolved targets of each action.
LOG_SCHEMA_VERSION = 2
FIS_PRINCIPAL = "fis.amazonaws.com"


@dataclass(frozen=True)
class Experiment:
    """One template: its FIS action and target, and what its role may do to that target."""

    description: str
    action: aws.fis.ExperimentTemplateActionArgs
    target: aws.fis.ExperimentTemplateTargetArgs
    statements: list[Statement]


@dataclass(frozen=True)
class ChaosArgs:
    config: ChaosConfig
    naming: Naming
    account: Account
    logs: LogPolicy
    ecs_cluster_name: pulumi.Input[str]
    ecs_cluster_arn: pulumi.Input[str]
    api_service_name: pulumi.Input[str]
    # The API tasks' `Name` tag (the service propagates its tags to its tasks): Terraform's provider wants a
    # target to name ARNs or tags, and the cluster and service parameters narrow the tagged tasks further.
    api_task_name: str
    database_cluster_arn: pulumi.Input[str]
    cache_replication_group_arn: pulumi.Input[str]
    # The AZ cache-az-power cuts: the first AZ of the stack, where the cache's primary is placed.
    cache_zone: str
    # The alarms that stop every experiment: the API's rollback alarms today, the SLO fast-burn alarm once
    # it exists. At least one: an experiment nothing can stop is refused.
    stop_alarm_arns: Sequence[pulumi.Input[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.stop_alarm_arns:
            raise ValueError(
                "chaos: no stop alarm for the FIS experiments: pass stop_alarm_arns (the API's rollback alarms"
                " or the SLO fast-burn alarm), or set platform:chaos.enabled to false"
            )


def chaos_experiments(
    stack: StackContext,
    services: AppServices,
    *,
    network: Network,
    compute: Cluster,
    data: tuple[Database, Cache],
    balancer: LoadBalancer,
    stop_alarm_arns: Sequence[pulumi.Input[str]] | None = None,
) -> Chaos | None:
    """The stack's experiments when `platform:chaos.enabled`; stopped by `stop_alarm_arns`, by default the
    API's rollback alarms (the site failing)."""
    config = stack.config.chaos
    if not config.enabled:
        return None
    database, cache = data
    rollback = [balancer.alarms[label].arn for label in ROLLBACK_ALARMS if label in balancer.alarms]
    args = ChaosArgs(
        config=config,
        naming=stack.naming,
        account=stack.account,
        logs=stack.logs,
        ecs_cluster_name=compute.cluster.name,
        ecs_cluster_arn=compute.cluster.arn,
        api_service_name=services.api.service.name,
        api_task_name=stack.naming.name("api"),
        database_cluster_arn=database.cluster.arn,
        cache_replication_group_arn=cache.replication_group.arn,
        cache_zone=network.zones[0],
        stop_alarm_arns=rollback if stop_alarm_arns is None else stop_alarm_arns,
    )
    return Chaos("chaos", args, stack.opts)


class Chaos(pulumi.ComponentResource):
    """One FIS experiment template per configured experiment, sharing a role and a log group."""

    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    templates: dict[ChaosExperiment, aws.fis.ExperimentTemplate]

    def __init__(self, name: str, args: ChaosArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:chaos:Chaos", name, None, opts)
        naming, account = args.naming, args.account
        experiments = {label: _experiment(label, args) for label in args.config.experiments}
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=naming.log_group("fis", "experiments"),
            retention_in_days=args.logs.retention_days,
            kms_key_id=args.logs.key_arn,
            tags=naming.tags("fis", "logs"),
            opts=child_options(self),
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=fis_trust_policy(account),
            tags=naming.tags("fis"),
            opts=child_options(self),
        )
        statements = [statement for experiment in experiments.values() for statement in experiment.statements]
        aws.iam.RolePolicy(
            f"{name}-targets",
            role=self.role.id,
            policy=policy_document(*statements),
            opts=child_options(self),
        )
        stop_conditions = [
            aws.fis.ExperimentTemplateStopConditionArgs(source="aws:cloudwatch:alarm", value=arn)
            for arn in args.stop_alarm_arns
        ]
        self.templates = {
            label: aws.fis.ExperimentTemplate(
                f"{name}-{label}",
                description=experiment.description,
                role_arn=self.role.arn,
                actions=[experiment.action],
                targets=[experiment.target],
                stop_conditions=stop_conditions,
                log_configuration=aws.fis.ExperimentTemplateLogConfigurationArgs(
                    log_schema_version=LOG_SCHEMA_VERSION,
                    cloudwatch_logs_configuration=aws.fis.ExperimentTemplateLogConfigurationCloudwatchLogsConfigurationArgs(
                        # FIS wants the log group's ARN with its `:*` stream suffix.
                        log_group_arn=pulumi.Output.concat(self.log_group.arn, ":*"),
                    ),
                ),
                tags=naming.tags("fis", label),
                opts=child_options(self),
            )
            for label, experiment in experiments.items()
        }
        self.register_outputs({"template_ids": {label: t.id for label, t in self.templates.items()}})


def fis_trust_policy(account: Account) -> pulumi.Output[str]:
    """FIS assumes the role for this account's experiments only (the confused-deputy keys FIS sets)."""
    return policy_document(
        Statement(
            "FisAssumesForThisAccount",
            ("sts:AssumeRole",),
            principals={"Service": FIS_PRINCIPAL},
            conditions={
                "StringEquals": {"aws:SourceAccount": account.account_id},
                "ArnLike": {"aws:SourceArn": account.arn("fis", "experiment/*")},
            },
        )
    )


def _experiment(label: ChaosExperiment, args: ChaosArgs) -> Experiment:
    config = args.config
    if label == "stop-api-tasks":
        return Experiment(
            description=f"Stop {config.stop_task_percent}% of the API's tasks: the rest serve while ECS replaces them",
            action=_action(label, "aws:ecs:stop-task", "Tasks"),
            target=aws.fis.ExperimentTemplateTargetArgs(
                name="Tasks",
                resource_type="aws:ecs:task",
                selection_mode=f"PERCENT({config.stop_task_percent})",
                resource_tags=[aws.fis.ExperimentTemplateTargetResourceTagArgs(key="Name", value=args.api_task_name)],
                parameters={"cluster": args.ecs_cluster_name, "service": args.api_service_name},
            ),
            statements=[
                Statement("StopApiTasks", ("ecs:DescribeTasks", "ecs:StopTask"), [_in_cluster(args, "task")]),
                # ListTasks authorizes on the cluster's container instances, narrowed to this cluster.
                Statement(
                    "ListApiTasks",
                    ("ecs:ListTasks",),
                    [_in_cluster(args, "container-instance")],
                    conditions={"ArnEquals": {"ecs:cluster": args.ecs_cluster_arn}},
                ),
            ],
        )
    if label == "aurora-failover":
        return Experiment(
            description="Fail Aurora's writer over to a reader: the proxy follows the new writer",
            action=_action(label, "aws:rds:failover-db-cluster", "Clusters"),
            target=aws.fis.ExperimentTemplateTargetArgs(
                name="Clusters",
                resource_type="aws:rds:cluster",
                selection_mode="ALL",
                resource_arns=[args.database_cluster_arn],
            ),
            statements=[
                Statement(
                    "FailOverAurora",
                    ("rds:FailoverDBCluster", "rds:DescribeDBClusters"),
                    [args.database_cluster_arn],
                )
            ],
        )
    minutes = config.cache_interruption_minutes
    return Experiment(
        description=f"Cut power to the cache's nodes in {args.cache_zone} for {minutes} min: a replica is promoted",
        action=_action(label, "aws:elasticache:replicationgroup-interrupt-az-power", "ReplicationGroups", minutes),
        target=aws.fis.ExperimentTemplateTargetArgs(
            name="ReplicationGroups",
            resource_type="aws:elasticache:replicationgroup",
            selection_mode="ALL",
            resource_arns=[args.cache_replication_group_arn],
            parameters={"availabilityZoneIdentifier": args.cache_zone},
        ),
        statements=[
            Statement(
                "InterruptCacheAz",
                ("elasticache:InterruptClusterAzPower", "elasticache:DescribeReplicationGroups"),
                [args.cache_replication_group_arn],
            ),
            # FIS resolves the replication group's nodes through the tagging API, which takes no resource.
            Statement("ResolveCacheNodes", ("tag:GetResources",), ["*"]),
        ],
    )


def _in_cluster(args: ChaosArgs, kind: str) -> pulumi.Output[str]:
    """Every `kind` (task, container-instance) of the stack's cluster: `arn:...:ecs:...:<kind>/<cluster>/*`."""
    return pulumi.Output.from_input(args.ecs_cluster_arn).apply(
        lambda arn: arn.replace(":cluster/", f":{kind}/") + "/*"
    )


def _action(
    label: str, action_id: str, target: str, minutes: int | None = None
) -> aws.fis.ExperimentTemplateActionArgs:
    return aws.fis.ExperimentTemplateActionArgs(
        name=label,
        action_id=action_id,
        target=aws.fis.ExperimentTemplateActionTargetArgs(key=target, value=target),
        parameters=[aws.fis.ExperimentTemplateActionParameterArgs(key="duration", value=f"PT{minutes}M")]
        if minutes is not None
        else None,
    )
