"""A Fargate service (the API's and the worker's alike): its roles, network rules, task definition, the ECS
service with circuit breaker and alarm rollback, its autoscaling and its tasks alarm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.alarms import CONTAINER_INSIGHTS, SQS, AlarmSet, Alerting, ServiceMetrics, query
from components.ecs.autoscaling import ScaledService, autoscale
from components.ecs.cluster import Cluster
from components.ecs.container import ContainerSpec, ImageSource, TaskContainers, build_image
from components.ecs.fis_agent import MANAGED_INSTANCE_POLICY, registration_statements
from components.iam import Account, Statement, policy_document, service_trust_policy
from components.load_balancer import LoadBalancer
from components.naming import Naming, child_options
from stack_config.schema import DeploymentConfig, ServiceConfig

LOAD_BALANCER_GRACE_SECONDS = 60
# ECS documents no maximum for a deployment's alarm names; CodeDeploy's deployment groups stop at 10, the nearest
# documented figure, and ECS polls each with DescribeAlarms (docs/deploy-review.md): a list past it is refused here.
MAX_DEPLOYMENT_ALARMS = 10
EXECUTION_ROLE_POLICY = "service-role/AmazonECSTaskExecutionRolePolicy"
LOAD_BALANCER_INFRASTRUCTURE_POLICY = "AmazonECSInfrastructureRolePolicyForLoadBalancers"
# Actions AWS cannot scope to a resource ARN: the only statements with `*` resources.
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")
EXEC_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
# What the ECS Exec agent needs to record a session in the cluster's log group (the ECS Exec docs' task role
# policy): it checks the group (DescribeLogGroups takes no resource ARN), then writes its own stream.
EXEC_LOG_LOOKUP_ACTIONS = ("logs:DescribeLogGroups",)
EXEC_LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents")


@dataclass(frozen=True)
class Dependency:
    """A data store the service talks to: egress to its security group on its port."""

    label: str
    security_group_id: pulumi.Input[str]
    port: int


@dataclass(frozen=True)
class DeploymentWatch:
    """What rolls back a deployment of a service no load balancer watches (the worker): its error ratio above
    `error_ratio_threshold` (`error_ratio`'s query with `return_data`, per minute), or a message reaching its DLQ."""

    error_ratio: Sequence[aws.cloudwatch.MetricAlarmMetricQueryArgs]
    error_ratio_threshold: float
    dead_letter_queue_name: pulumi.Input[str]


@dataclass(frozen=True)
class ServiceArgs:
    naming: Naming
    account: Account
    service: str  # "api" or "worker"
    config: ServiceConfig
    az_count: int
    cluster: Cluster
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group: aws.ec2.SecurityGroup
    container: ContainerSpec
    log_group_name: pulumi.Input[str]
    # Where the image is built from, unless the config names a prebuilt `image`.
    image: ImageSource
    dependencies: Sequence[Dependency] = ()
    task_statements: Sequence[Statement] = ()
    secret_arns: Sequence[pulumi.Input[str]] = ()
    decrypt_key_arns: Sequence[pulumi.Input[str]] = ()
    # The ALB in front of the service (the API): its target groups, the listener rule ECS shifts for blue/green,
    # its security group, and the alarms that roll a failing deployment back.
    load_balancer: LoadBalancer | None = None
    backlog_queue_name: pulumi.Input[str] | None = None
    # The tasks-below-desired alarm, when given where to send it.
    alerting: Alerting | None = None
    # Rollback alarms of its own (with `alerting`), for a service without a load balancer's.
    deployment_watch: DeploymentWatch | None = None
    # More alarms that roll a deployment back, after the load balancer's or its own (the SLO's fast burn).
    extra_rollback_alarm_names: Sequence[pulumi.Input[str]] = ()
    # The task accepts FIS's network faults (ECS fault injection endpoints; FIS needs the task's PID namespace) and
    # registers with SSM through AWS's agent sidecar, under a managed-instance role of its own.
    fault_injection: bool = False


class FargateService(pulumi.ComponentResource):
    """A Fargate service: image, task definition (non-root, read-only root, secrets by ARN, ADOT
    sidecar), roles, the ECS service with circuit breaker and alarm rollback, and autoscaling."""

    image_uri: pulumi.Output[str]
    task_definition: aws.ecs.TaskDefinition
    service: aws.ecs.Service
    task_role: aws.iam.Role
    execution_role: aws.iam.Role
    # The role SSM gives the tasks registered for FIS's task actions (only with `fault_injection`).
    fis_agent_role: aws.iam.Role | None
    scaling_target: aws.appautoscaling.Target
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:service:FargateService", name, None, opts)
        self._name, self._args = name, args
        # The policies of this service's roles: ECS uses the roles as soon as the service exists (to pull, to
        # start tasks, to shift traffic), so the service waits for what they grant.
        self._grants: list[pulumi.Resource] = []
        self.image_uri = (
            pulumi.Output.from_input(args.config.image)
            if args.config.image is not None
            else build_image(self, name, args.service, args.naming, args.image, target=args.container.image_target)
        )
        self.execution_role, self.task_role = self._roles()
        self._network_rules()
        self.task_definition = self._task_definition()
        alarm_set = AlarmSet(self, name, args.naming, args.alerting) if args.alerting else None
        self._rollback_alarms = (
            rollback_alarms(alarm_set, args.service, args.deployment_watch)
            if alarm_set and args.deployment_watch
            else {}
        )
        self.service = self._service()
        self.scaling_target = autoscale(
            self,
            name,
            ScaledService(
                args.service,
                self.service,
                args.cluster.cluster.name,
                args.config,
                args.load_balancer,
                args.backlog_queue_name,
            ),
        )
        self.alarms = tasks_alarms(alarm_set, self.metrics) if alarm_set else {}
        self.register_outputs(
            {
                "service_name": self.service.name,
                "task_definition_arn": self.task_definition.arn,
                "task_role_arn": self.task_role.arn,
                "image_uri": self.image_uri,
                "alarm_arns": {label: alarm.arn for label, alarm in self.alarms.items()},
            }
        )

    @property
    def metrics(self) -> ServiceMetrics:
        # The service's name is its label (`name=args.service`): known at plan time, like the rollback alarms'.
        return ServiceMetrics(self._args.cluster.cluster.name, {self._args.service: self._args.service})

    # --- identity ----------------------------------------------------------------------------------

    def _roles(self) -> tuple[aws.iam.Role, aws.iam.Role]:
        args = self._args
        execution = self._role(
            "execution",
            "ecs-tasks",
            f"ECS pulls the {args.service} image, writes its logs and reads its secrets",
            EXECUTION_ROLE_POLICY,
        )
        startup: list[Statement] = []
        if args.secret_arns:
            startup.append(Statement("ReadSecrets", ("secretsmanager:GetSecretValue",), list(args.secret_arns)))
        if args.decrypt_key_arns:
            startup.append(Statement("DecryptSecrets", ("kms:Decrypt",), list(args.decrypt_key_arns)))
        if startup:
            self._grants.append(
                aws.iam.RolePolicy(
                    f"{self._name}-execution-secrets",
                    role=execution.id,
                    policy=policy_document(*startup),
                    opts=child_options(self),
                )
            )
        task = self._role("task", "ecs-tasks", f"What the {args.service} code itself may do")
        self.fis_agent_role = (
            self._role(
                "fis-agent",
                "ssm",
                f"SSM's role for the {args.service} tasks registered as managed instances for AWS FIS",
                MANAGED_INSTANCE_POLICY,
                trust=service_trust_policy("ssm", args.account),
            )
            if args.fault_injection
            else None
        )
        fis_agent = (
            registration_statements(args.cluster.cluster.arn, self.fis_agent_role.arn) if self.fis_agent_role else []
        )
        self._grants.append(
            aws.iam.RolePolicy(
                f"{self._name}-task-policy",
                role=task.id,
                policy=policy_document(
                    *args.task_statements,
                    Statement("Tracing", XRAY_ACTIONS, ["*"]),
                    *self._exec_statements(),
                    *fis_agent,
                ),
                opts=child_options(self),
            )
        )
        return execution, task

    def _exec_statements(self) -> list[Statement]:
        """ECS Exec's agent: its SSM channels, the session's key, and the session log it writes to the cluster's exec
        log group."""
        if not self._args.config.execute_command:
            return []
        log_group_arn = self._args.cluster.exec_log_group.arn
        return [
            Statement("EcsExec", EXEC_ACTIONS, ["*"]),
            self._args.cluster.grant_exec_session(),
            Statement("EcsExecFindSessionLog", EXEC_LOG_LOOKUP_ACTIONS, ["*"]),
            Statement(
                "EcsExecWriteSessionLog",
                EXEC_LOG_WRITE_ACTIONS,
                [log_group_arn, pulumi.Output.concat(log_group_arn, ":*")],
            ),
        ]

    def _network_rules(self) -> None:
        args = self._args
        group_id = args.security_group.id
        for dependency in args.dependencies:
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-to-{dependency.label}",
                security_group_id=group_id,
                ip_protocol="tcp",
                from_port=dependency.port,
                to_port=dependency.port,
                referenced_security_group_id=dependency.security_group_id,
                description=f"{args.service} to {dependency.label}",
                opts=child_options(self),
            )
        balancing, port = args.load_balancer, args.container.port
        if balancing is None or port is None:
            return
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-from-alb",
            security_group_id=group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=balancing.security_group.id,
            description="the ALB to the tasks",
            opts=child_options(self),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-alb-to-tasks",
            security_group_id=balancing.security_group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=group_id,
            description=f"the ALB to the {args.service} tasks",
            opts=child_options(self),
        )

    # --- task and service --------------------------------------------------------------------------
    # --- task and service --------------------------------------------------------------------------

    def _task_definition(self) -> aws.ecs.TaskDefinition:
        args = self._args
        containers = TaskContainers(
            args.service,
            args.container,
            self.image_uri,
            args.log_group_name,
            args.account.region,
            args.config.execute_command,
            fis_agent_role_name=self.fis_agent_role.name if self.fis_agent_role else None,
        )
        return aws.ecs.TaskDefinition(
            f"{self._name}-task",
            family=args.naming.name(args.service),
            cpu=str(args.config.cpu),
            memory=str(args.config.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=volume) for volume in containers.volumes],
            enable_fault_injection=True if args.fault_injection else None,
            pid_mode="task" if args.fault_injection else None,
            container_definitions=pulumi.Output.json_dumps(containers.definitions()),
            tags=args.naming.tags(args.service, "task"),
            opts=child_options(self),
        )

    def _service(self) -> aws.ecs.Service:
        args, config = self._args, self._args.config
        balancing = args.load_balancer
        shifts_traffic = config.deployment.shifts_traffic and balancing is not None
        # A deployment that makes the site fail is rolled back.
        rollback_alarm_names = [
            *(
                balancing.rollback_alarm_names
                if balancing is not None
                else [alarm.name for alarm in self._rollback_alarms.values()]
            ),
            *args.extra_rollback_alarm_names,
        ]
        if len(rollback_alarm_names) > MAX_DEPLOYMENT_ALARMS:
            raise ValueError(
                f"{args.service}: {len(rollback_alarm_names)} deployment alarms, more than {MAX_DEPLOYMENT_ALARMS}"
            )
        load_balancers = []
        # ECS needs the cluster's capacity providers before a strategy names them.
        waits_for: list[pulumi.Resource] = [args.cluster.capacity_providers]
        if balancing is not None and args.container.port is not None:
            advanced = None
            if shifts_traffic:
                alternate = balancing.alternate_target_group
                if alternate is None:
                    raise ValueError(f"{args.service}: {config.deployment.strategy} needs an alternate target group")
                infrastructure_role = self._infrastructure_role()
                advanced = aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                    alternate_target_group_arn=alternate.arn,
                    production_listener_rule=balancing.forward_rule.arn,
                    role_arn=infrastructure_role.arn,
                )
            # ECS refuses a target group no listener forwards to: the rule that attaches the groups comes first.
            waits_for.append(balancing.forward_rule)
            load_balancers.append(
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=balancing.target_group.arn,
                    container_name=args.service,
                    container_port=args.container.port,
                    advanced_configuration=advanced,
                )
            )
        if config.use_spot:
            # One on-demand task per AZ stays put; the rest run on Spot.
            strategies = [
                aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE", base=args.az_count, weight=1),
                aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE_SPOT", weight=3),
            ]
        else:
            strategies = [aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE", weight=1)]
        return aws.ecs.Service(
            f"{self._name}-service",
            name=args.service,
            cluster=args.cluster.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=config.desired_count,
            capacity_provider_strategies=strategies,
            platform_version="LATEST",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(args.subnet_ids), security_groups=[args.security_group.id], assign_public_ip=False
            ),
            availability_zone_rebalancing="ENABLED",
            enable_execute_command=config.execute_command,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            load_balancers=load_balancers,
            health_check_grace_period_seconds=LOAD_BALANCER_GRACE_SECONDS if load_balancers else None,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            alarms=(
                aws.ecs.ServiceAlarmsArgs(alarm_names=rollback_alarm_names, enable=True, rollback=True)
                if rollback_alarm_names
                else None
            ),
            deployment_configuration=deployment_configuration(config.deployment, shifts_traffic=shifts_traffic),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            wait_for_steady_state=False,
            tags=args.naming.tags(args.service),
            # Autoscaling owns the running count once the service exists.
            opts=child_options(self, ignore_changes=["desiredCount"], depends_on=[*waits_for, *self._grants]),
        )

    def _infrastructure_role(self) -> aws.iam.Role:
        # Canary and linear use the role as blue/green does; its description predates them and stays as deployed.
        return self._role(
            "deploy",
            "ecs",
            "ECS shifts the listener rule between target groups during blue/green deployments",
            LOAD_BALANCER_INFRASTRUCTURE_POLICY,
        )

    def _role(
        self,
        label: str,
        service: str,
        description: str,
        managed_policy: str | None = None,
        *,
        trust: pulumi.Output[str] | None = None,
    ) -> aws.iam.Role:
        """A role the AWS service `service` assumes for this workload (by `trust`, else the service's usual trust
        policy), with at most one AWS managed policy (its name) attached."""
        role = aws.iam.Role(
            f"{self._name}-{label}-role",
            assume_role_policy=trust if trust is not None else service_trust_policy(service, self._args.account),
            description=description,
            tags=self._args.naming.tags(self._args.service, label),
            opts=child_options(self),
        )
        if managed_policy is not None:
            self._grants.append(
                aws.iam.RolePolicyAttachment(
                    f"{self._name}-{label}-managed",
                    role=role.name,
                    policy_arn=self._args.account.managed_policy_arn(managed_policy),
                    opts=child_options(self),
                )
            )
        return role


def deployment_configuration(
    deployment: DeploymentConfig, *, shifts_traffic: bool
) -> aws.ecs.ServiceDeploymentConfigurationArgs:
    """ECS's deployment strategy: ROLLING, or BLUE_GREEN, CANARY or LINEAR where a load balancer lets ECS shift
    traffic. The service's alarms roll back any of them, during the shift and through the bake time after it."""
    if not shifts_traffic:
        return aws.ecs.ServiceDeploymentConfigurationArgs(strategy="ROLLING")
    canary = linear = None
    if deployment.strategy == "canary":
        canary = aws.ecs.ServiceDeploymentConfigurationCanaryConfigurationArgs(
            canary_percent=deployment.canary.percent,
            canary_bake_time_in_minutes=str(deployment.canary.bake_minutes),
        )
    elif deployment.strategy == "linear":
        linear = aws.ecs.ServiceDeploymentConfigurationLinearConfigurationArgs(
            step_percent=deployment.linear.step_percent,
            step_bake_time_in_minutes=str(deployment.linear.step_bake_minutes),
        )
    return aws.ecs.ServiceDeploymentConfigurationArgs(
        strategy=deployment.strategy.upper(),
        bake_time_in_minutes=str(deployment.bake_minutes),
        canary_configuration=canary,
        linear_configuration=linear,
    )


def rollback_alarms(alarms: AlarmSet, service: str, watch: DeploymentWatch) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """A deployment whose tasks fail messages, or send any to the DLQ, is rolled back (and reported)."""
    errors = alarms.math(
        f"{service}-deploy-errors",
        f"The {service} fails over {watch.error_ratio_threshold:.4g} of its messages in 3 of 5 minutes",
        watch.error_ratio,
        threshold=watch.error_ratio_threshold,
        datapoints_to_alarm=3,
    )
    # SQS counts no NumberOfMessagesSent for what its redrive policy moves: an arrival is the DLQ's depth rising.
    # Two periods, so DIFF has a previous point; a redrive back out (depth falling) is not an arrival.
    arrivals = alarms.math(
        f"{service}-dlq-arrivals",
        f"A message of the {service}'s queue reached its dead-letter queue",
        [
            query(
                "depth",
                SQS,
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": watch.dead_letter_queue_name},
                "Maximum",
            ),
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="arrivals", expression="DIFF(depth)", label="DLQ arrivals", return_data=True
            ),
        ],
        threshold=0,
        evaluation_periods=2,
        datapoints_to_alarm=1,
    )
    return {"errors": errors, "dlq-arrivals": arrivals}


def tasks_alarms(alarms: AlarmSet, metrics: ServiceMetrics) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """A service that cannot place or keep its tasks."""
    for service, service_name in metrics.service_names.items():
        dimensions = {"ClusterName": metrics.cluster_name, "ServiceName": service_name}
        # Container Insights publishes both counts; desired minus running above 0 for five minutes
        # is a service that cannot place or keep its tasks (a deployment settles well within that).
        alarms.math(
            f"{service}-tasks-below-desired",
            f"The {service} service runs fewer tasks than desired",
            [
                query("running", CONTAINER_INSIGHTS, "RunningTaskCount", dimensions),
                query("desired", CONTAINER_INSIGHTS, "DesiredTaskCount", dimensions),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="missing", expression="desired - running", label="Tasks missing", return_data=True
                ),
            ],
            threshold=0,
        )
    return alarms.alarms
