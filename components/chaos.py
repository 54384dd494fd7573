"""Chaos as code: AWS FIS experiment templates against this stack's own API tasks, Aurora cluster, cache and SQS
endpoint.

Each template stops itself when the API's rollback alarms or a service's SLO fast burn fire (users feel it), runs
as a role that may touch only this stack's resources, and logs to an encrypted log group. Templates cost nothing
until started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import Account, Statement, policy_document, service_trust_policy
from components.load_balancer import ROLLBACK_ALARMS
from components.naming import LogPolicy, Naming, child_options
from stack_config.schema import ChaosConfig, ChaosExperiment

# The services whose SLO fast burn stops an experiment, and the interface endpoint sqs-unreachable blocks
# (components.network tags it `<prefix>-sqs-endpoint`).
SERVICES = ("api", "worker")
SQS_ENDPOINT = "sqs"

if TYPE_CHECKING:
    from components.app_services import AppServices
    from components.cache import Cache
    from components.context import StackContext
    from components.database import Database
    from components.ecs import Cluster
    from components.load_balancer import LoadBalancer
    from components.network import Network
    from components.slo import ServiceLevelObjectives

# FIS's log schema version 2 (the current one) names the resolved targets of each action.
LOG_SCHEMA_VERSION = 2
# FIS quota L-872EC72B "Stop conditions per experiment template": 5, not adjustable.
MAX_STOP_CONDITIONS = 5
# The SSM document FIS runs in a Fargate task for aws:ecs:task-network-latency through ECS's fault endpoints.
NETWORK_LATENCY_DOCUMENT = "AWSFIS-Run-Network-Latency-ECS"


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
    # The alarms that stop every experiment: the API's rollback alarms and each service's SLO fast-burn alarm.
    # At least one, at most FIS's quota: an experiment nothing can stop is refused.
    stop_alarm_arns: Sequence[pulumi.Input[str]] = field(default_factory=list)
    # The VPC and the `Name` tag of its SQS interface endpoint (sqs-unreachable).
    vpc_arn: pulumi.Input[str] = ""
    sqs_endpoint_name: str = ""
    # The hosts on the API's database path (the RDS proxy's endpoints) that database-latency slows.
    database_hosts: Sequence[pulumi.Input[str]] = ()

    def __post_init__(self) -> None:
        if not self.stop_alarm_arns:
            raise ValueError(
                "chaos: no stop alarm for the FIS experiments: pass stop_alarm_arns (the API's rollback alarms"
                " or the SLO fast-burn alarm), or set platform:chaos.enabled to false"
            )
        if len(self.stop_alarm_arns) > MAX_STOP_CONDITIONS:
            raise ValueError(
                f"chaos: {len(self.stop_alarm_arns)} stop alarms; FIS allows {MAX_STOP_CONDITIONS} per template"
            )


def chaos_experiments(
    stack: StackContext,
    services: AppServices,
    *,
    network: Network,
    compute: Cluster,
    data: tuple[Database, Cache],
    balancer: LoadBalancer,
    slos: ServiceLevelObjectives | None = None,
    stop_alarm_arns: Sequence[pulumi.Input[str]] | None = None,
) -> Chaos | None:
    """The stack's experiments when `platform:chaos.enabled`; stopped by `stop_alarm_arns`, by default the
    API's rollback alarms (the site failing) and every service's SLO fast-burn alarm."""
    config = stack.config.chaos
    if not config.enabled:
        return None
    database, cache = data
    if stop_alarm_arns is None:
        rollback = [balancer.alarms[label].arn for label in ROLLBACK_ALARMS if label in balancer.alarms]
        burns = [alarm.arn for service in SERVICES for alarm in (slos.fast_burn_alarms(service) if slos else [])]
        stop_alarm_arns = [*rollback, *burns]
    proxies = [database.proxy_endpoint, *([database.proxy_reader_endpoint] if database.proxy_reader_endpoint else [])]
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
        stop_alarm_arns=stop_alarm_arns,
        vpc_arn=network.vpc.arn,
        sqs_endpoint_name=stack.naming.tags(SQS_ENDPOINT, "endpoint")["Name"],
        database_hosts=proxies,
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
            assume_role_policy=service_trust_policy("fis", account),
            tags=naming.tags("fis"),
            opts=child_options(self),
        )
        # Experiments on the same targets share statements (listing the API's tasks): each Sid once, as IAM wants.
        statements = list(
            {
                statement.sid: statement for experiment in experiments.values() for statement in experiment.statements
            }.values()
        )
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


def _experiment(label: ChaosExperiment, args: ChaosArgs) -> Experiment:
    return EXPERIMENTS[label](label, args)


def _stop_api_tasks(label: str, args: ChaosArgs) -> Experiment:
    percent = args.config.stop_task_percent
    return Experiment(
        description=f"Stop {percent}% of the API's tasks: the rest serve while ECS replaces them",
        action=_action(label, "aws:ecs:stop-task", "Tasks"),
        target=_api_tasks(args, percent),
        statements=[
            Statement("StopApiTasks", ("ecs:DescribeTasks", "ecs:StopTask"), [_in_cluster(args, "task")]),
            _list_api_tasks(args),
        ],
    )


def _aurora_failover(label: str, args: ChaosArgs) -> Experiment:
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


def _cache_az_power(label: str, args: ChaosArgs) -> Experiment:
    # FIS has no ElastiCache reboot action: cutting the primary AZ's power is its one cache fault.
    minutes = args.config.cache_interruption_minutes
    return Experiment(
        description=f"Cut power to the cache's nodes in {args.cache_zone} for {minutes} min: a replica is promoted",
        action=_action(
            label, "aws:elasticache:replicationgroup-interrupt-az-power", "ReplicationGroups", duration=minutes
        ),
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
            _resolve_by_tags(),
        ],
    )


def _sqs_unreachable(label: str, args: ChaosArgs) -> Experiment:
    """FIS injects API throttling only into EC2 and Kinesis calls; the nearest fault for the worker's receives
    is the SQS endpoint refusing all traffic from the VPC (the worker's receives, deletes and re-sends) for a
    while; SNS keeps delivering into the queue from outside."""
    minutes = args.config.sqs_outage_minutes
    in_vpc = {"ArnEquals": {"ec2:Vpc": args.vpc_arn}}
    return Experiment(
        description=f"Block the SQS endpoint for {minutes} min: the worker cannot receive, the backlog waits",
        action=_action(label, "aws:network:disrupt-vpc-endpoint", "VPCEndpoints", duration=minutes),
        target=aws.fis.ExperimentTemplateTargetArgs(
            name="VPCEndpoints",
            resource_type="aws:ec2:vpc-endpoint",
            selection_mode="ALL",
            resource_tags=[aws.fis.ExperimentTemplateTargetResourceTagArgs(key="Name", value=args.sqs_endpoint_name)],
        ),
        statements=[
            # FIS swaps the endpoint's security groups for an empty one it makes in the same VPC, then back.
            Statement(
                "SwapSqsEndpointGroups",
                ("ec2:ModifyVpcEndpoint",),
                [args.account.arn("ec2", "vpc-endpoint/*")],
                conditions={"StringEquals": {"aws:ResourceTag/Name": args.sqs_endpoint_name}},
            ),
            Statement(
                "ManageGroupsInThisVpc",
                (
                    "ec2:ModifyVpcEndpoint",
                    "ec2:CreateSecurityGroup",
                    "ec2:DeleteSecurityGroup",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:CreateTags",
                ),
                [args.account.arn("ec2", "security-group/*")],
                conditions=in_vpc,
            ),
            # CreateSecurityGroup is authorized against the new group (above, in this VPC) and the VPC (here).
            Statement("CreateGroupsInThisVpc", ("ec2:CreateSecurityGroup",), [args.vpc_arn]),
            # Describe calls take no resource.
            Statement("FindSqsEndpoint", ("ec2:DescribeVpcEndpoints", "ec2:DescribeSecurityGroups"), ["*"]),
        ],
    )


def _database_latency(label: str, args: ChaosArgs) -> Experiment:
    """Latency on the API tasks' packets toward the database proxy. FIS runs it in each task through an SSM
    document over ECS's fault injection endpoints: the task definition enables them, and AWS's SSM agent sidecar
    registers each task with SSM tagged with its task ARN (components/ecs/fis_agent.py), which is how FIS finds
    the tasks it selected."""
    config = args.config
    sources = pulumi.Output.all(*args.database_hosts).apply(",".join)
    task_arns = _in_cluster(args, "task")
    return Experiment(
        description=(
            f"Add {config.database_latency_ms} ms (+/- {config.database_jitter_ms}) toward the database proxy on"
            f" {config.database_latency_task_percent}% of the API's tasks for {config.database_latency_minutes} min"
        ),
        action=_action(
            label,
            "aws:ecs:task-network-latency",
            "Tasks",
            duration=config.database_latency_minutes,
            delayMilliseconds=str(config.database_latency_ms),
            jitterMilliseconds=str(config.database_jitter_ms),
            sources=sources,
            # Fargate tasks take network faults only through ECS's endpoints (FIS action reference).
            useEcsFaultInjectionEndpoints="true",
        ),
        target=_api_tasks(args, config.database_latency_task_percent),
        statements=[
            Statement("DescribeApiTasks", ("ecs:DescribeTasks",), [task_arns]),
            Statement(
                "DescribeClusterInstances",
                ("ecs:DescribeContainerInstances",),
                [_in_cluster(args, "container-instance")],
            ),
            _list_api_tasks(args),
            Statement("DescribeTaskNetwork", ("ec2:DescribeInstances", "ec2:DescribeSubnets"), ["*"]),
            Statement(
                "RunLatencyDocument",
                ("ssm:SendCommand",),
                [args.account.arn("ssm", f"document/{NETWORK_LATENCY_DOCUMENT}").apply(_aws_owned_document)],
            ),
            # The tasks register as managed instances tagged with their task ARN: this cluster's only.
            Statement(
                "OnThisClustersTasks",
                ("ssm:SendCommand",),
                [args.account.arn("ssm", "managed-instance/*")],
                conditions={"ArnLike": {"ssm:resourceTag/ECS_TASK_ARN": task_arns}},
            ),
            Statement("FollowLatencyCommands", ("ssm:ListCommands", "ssm:CancelCommand"), ["*"]),
        ],
    )


EXPERIMENTS: dict[ChaosExperiment, Callable[[str, ChaosArgs], Experiment]] = {
    "stop-api-tasks": _stop_api_tasks,
    "aurora-failover": _aurora_failover,
    "cache-az-power": _cache_az_power,
    "sqs-unreachable": _sqs_unreachable,
    "database-latency": _database_latency,
}


def _api_tasks(args: ChaosArgs, percent: int) -> aws.fis.ExperimentTemplateTargetArgs:
    return aws.fis.ExperimentTemplateTargetArgs(
        name="Tasks",
        resource_type="aws:ecs:task",
        selection_mode=f"PERCENT({percent})",
        resource_tags=[aws.fis.ExperimentTemplateTargetResourceTagArgs(key="Name", value=args.api_task_name)],
        parameters={"cluster": args.ecs_cluster_name, "service": args.api_service_name},
    )


def _list_api_tasks(args: ChaosArgs) -> Statement:
    # ListTasks authorizes on the cluster's container instances, narrowed to this cluster.
    return Statement(
        "ListApiTasks",
        ("ecs:ListTasks",),
        [_in_cluster(args, "container-instance")],
        conditions={"ArnEquals": {"ecs:cluster": args.ecs_cluster_arn}},
    )


def _resolve_by_tags() -> Statement:
    # FIS resolves a target's resources through the tagging API, which takes no resource.
    return Statement("ResolveCacheNodes", ("tag:GetResources",), ["*"])


def _aws_owned_document(arn: str) -> str:
    """AWS's own SSM documents have no account in their ARN: `arn:aws:ssm:<region>::document/<name>`."""
    parts = arn.split(":")
    parts[4] = ""
    return ":".join(parts)


def _in_cluster(args: ChaosArgs, kind: str) -> pulumi.Output[str]:
    """Every `kind` (task, container-instance) of the stack's cluster: `arn:...:ecs:...:<kind>/<cluster>/*`."""
    return pulumi.Output.from_input(args.ecs_cluster_arn).apply(
        lambda arn: arn.replace(":cluster/", f":{kind}/") + "/*"
    )


def _action(
    label: str, action_id: str, target: str, duration: int | None = None, **parameters: pulumi.Input[str]
) -> aws.fis.ExperimentTemplateActionArgs:
    """The template's one action on `target`; `duration` in minutes, `parameters` as FIS names them."""
    values = {**({"duration": f"PT{duration}M"} if duration is not None else {}), **parameters}
    return aws.fis.ExperimentTemplateActionArgs(
        name=label,
        action_id=action_id,
        target=aws.fis.ExperimentTemplateActionTargetArgs(key=target, value=target),
        parameters=[aws.fis.ExperimentTemplateActionParameterArgs(key=k, value=v) for k, v in values.items()] or None,
    )
