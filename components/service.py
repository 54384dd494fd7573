"""The compute layer: an ECS cluster and Fargate services (used for both the API and the worker)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
from docker.utils.build import exclude_paths

from components.iam import Account, Statement, assume_role_policy, policy_document
from components.naming import Naming, child_options
from stack_config.schema import ServiceConfig

HTTPS = 443
# The OpenTelemetry collector sidecar (ADOT), pinned; its default ECS config sends traces to X-Ray.
ADOT_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
ADOT_CONFIG = "--config=/etc/ecs/ecs-default-config.yaml"
ADOT_CPU, ADOT_MEMORY_RESERVATION = 64, 128
CONTAINER_HEALTH_START_PERIOD_SECONDS = 60
CONTAINER_HEALTH_INTERVAL_SECONDS, CONTAINER_HEALTH_TIMEOUT_SECONDS, CONTAINER_HEALTH_RETRIES = 15, 5, 3
LOAD_BALANCER_GRACE_SECONDS = 60
TMP_VOLUME = "tmp"
COLLECTOR, INIT = "otel-collector", "init"
IMAGE_PLATFORM = "linux/amd64"
# Docker's and ECR's rule for a tag: 1 to 128 of these characters, not starting with `.` or `-`.
IMAGE_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
EXECUTION_ROLE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
LOAD_BALANCER_INFRASTRUCTURE_POLICY = "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
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
# Where the ECS Exec (SSM) agent writes inside a container. AWS documents a read-only root as unsupported for
# ECS Exec because of these writes; a writable task volume at each path lets the root stay read-only.
EXEC_AGENT_PATHS = {
    "agents": "/managed-agents",
    "ssm-state": "/var/lib/amazon/ssm",
    "ssm-logs": "/var/log/amazon/ssm",
}


# --- image build context ---------------------------------------------------------------------------


def dockerignore_patterns(context: Path, dockerfile: str) -> list[str]:
    """The exclusion patterns Docker applies to this build: `<Dockerfile>.dockerignore` if it exists, else the
    context's `.dockerignore` (Docker's precedence), comments and blank lines dropped."""
    for candidate in (context / f"{dockerfile}.dockerignore", context / ".dockerignore"):
        if candidate.is_file():
            lines = (line.strip() for line in candidate.read_text().splitlines())
            return [line for line in lines if line and not line.startswith("#")]
    return []


def build_context_files(context: Path, dockerfile: str) -> list[str]:
    """The files (and symlinks) Docker sends for this build, relative to the context, sorted: `.dockerignore`
    applied with Docker's own matching rules (docker-py's implementation of them), the Dockerfile always in."""
    included = exclude_paths(str(context), dockerignore_patterns(context, dockerfile), dockerfile=dockerfile)
    return sorted(
        relative for relative in included if (context / relative).is_symlink() or (context / relative).is_file()
    )


def content_image_tag(service: str, context: Path, dockerfile: str, build_inputs: Mapping[str, str | None]) -> str:
    """A tag that changes whenever the image would: `<service>-<sha256>` over every file of the build context
    (path, mode, bytes), the Dockerfile and the other build inputs (stage, platform, paths as passed).

    ECR repositories here are IMMUTABLE, so a tag must never be pushed twice with different content; and the
    builder rebuilds whenever any of these change, so each such change must give a new tag. The service name
    keeps the two images' tags (and the awsx child resources named after them) apart.
    """
    digest = hashlib.sha256()
    for key, value in sorted(build_inputs.items()):
        digest.update(f"{key}={value or ''}\0".encode())
    for relative in build_context_files(context, dockerfile):
        path = context / relative
        mode = path.lstat().st_mode
        digest.update(f"\0{relative}\0{stat.filemode(mode)}\0".encode())
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    tag = f"{service}-{digest.hexdigest()}"
    if not IMAGE_TAG_PATTERN.fullmatch(tag):
        raise ValueError(f"{service}: image tag {tag!r} breaks ECR's tag rules ({IMAGE_TAG_PATTERN.pattern})")
    return tag


@dataclass(frozen=True)
class ContainerSpec:
    """What the app's container runs: the single source is `app/contract.py`."""

    command: Sequence[str]
    health_check_command: Sequence[str]
    stop_timeout_seconds: int
    user: str
    port: int | None = None
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Environment name -> Secrets Manager ARN (optionally `arn:json-key::`); ECS injects the value.
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The Dockerfile stage this service's image is built from (`FROM ... AS <stage>`); without one Docker
    # builds the last stage, whichever service that is.
    image_target: str | None = None
    # Runs to completion in each task before the app starts (e.g. migrations).
    init_command: Sequence[str] | None = None
    # More long-running processes of the same image in the same task: name -> command (e.g. the relay).
    companions: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadBalancing:
    """How the API is reached: the ALB, its target groups (a second one for blue/green), the listener rule that
    forwards to them (the one ECS shifts), the ALB's security group."""

    alb: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    listener_rule: aws.lb.ListenerRule
    alb_security_group_id: pulumi.Input[str]
    alternate_target_group: aws.lb.TargetGroup | None = None

    @property
    def target_groups(self) -> list[aws.lb.TargetGroup]:
        """Every group that serves production at some point: after a blue/green swap it is the alternate."""
        return [self.target_group, *([self.alternate_target_group] if self.alternate_target_group else [])]


@dataclass(frozen=True)
class Dependency:
    """A data store the service talks to: egress to its security group on its port."""

    label: str
    security_group_id: pulumi.Input[str]
    port: int


@dataclass(frozen=True)
class ClusterArgs:
    naming: Naming
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int


class Cluster(pulumi.ComponentResource):
    """The ECS cluster: Container Insights on, FARGATE and FARGATE_SPOT, audited ECS Exec."""

    cluster: aws.ecs.Cluster
    exec_log_group: aws.cloudwatch.LogGroup
    capacity_providers: aws.ecs.ClusterCapacityProviders

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:service:Cluster", name, None, opts)
        # Every ECS Exec session is recorded: the audit trail that replaces a bastion host.
        self.exec_log_group = aws.cloudwatch.LogGroup(
            f"{name}-exec-logs",
            name=args.naming.log_group("ecs", "exec"),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=args.naming.tags("ecs-exec"),
            opts=child_options(self),
        )
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.naming.name("cluster"),
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enhanced")],
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
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
        self.register_outputs({"cluster_name": self.cluster.name, "cluster_arn": self.cluster.arn})


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
    # The directory Docker builds from (the repository root: the Dockerfile copies pyproject.toml, uv.lock and
    # app/ from there), absolute; and the Dockerfile, relative to it.
    image_context: Path
    dockerfile: str = "app/Dockerfile"
    dependencies: Sequence[Dependency] = ()
    task_statements: Sequence[Statement] = ()
    secret_arns: Sequence[pulumi.Input[str]] = ()
    decrypt_key_arns: Sequence[pulumi.Input[str]] = ()
    load_balancing: LoadBalancing | None = None
    backlog_queue_name: pulumi.Input[str] | None = None
    rollback_alarm_names: Sequence[pulumi.Input[str]] = ()
    image_keep_count: int = 20


class FargateService(pulumi.ComponentResource):
    """A Fargate service: image, task definition (non-root, read-only root, secrets by ARN, ADOT
    sidecar), roles, the ECS service with circuit breaker and alarm rollback, and autoscaling."""

    image_uri: pulumi.Output[str]
    task_definition: aws.ecs.TaskDefinition
    service: aws.ecs.Service
    task_role: aws.iam.Role
    execution_role: aws.iam.Role
    scaling_target: aws.appautoscaling.Target

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:service:FargateService", name, None, opts)
        self._name, self._args = name, args
        # The policies of this service's roles: ECS uses the roles as soon as the service exists (to pull, to
        # start tasks, to shift traffic), so the service waits for what they grant.
        self._grants: list[pulumi.Resource] = []
        self.image_uri = self._image()
        self.execution_role, self.task_role = self._roles()
        self._network_rules()
        self.task_definition = self._task_definition()
        self.service = self._service()
        self.scaling_target = self._autoscaling()
        self.register_outputs(
            {
                "service_name": self.service.name,
                "task_definition_arn": self.task_definition.arn,
                "task_role_arn": self.task_role.arn,
                "image_uri": self.image_uri,
            }
        )

    # --- image -------------------------------------------------------------------------------------

    def _image(self) -> pulumi.Output[str]:
        args = self._args
        if args.config.image is not None:
            return pulumi.Output.from_input(args.config.image)
        repository = aws.ecr.Repository(
            f"{self._name}-repository",
            name=args.naming.name(args.service),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            tags=args.naming.tags(args.service, "images"),
            opts=child_options(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-image-lifecycle",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {args.image_keep_count} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": args.image_keep_count,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child_options(self),
        )
        target = args.container.image_target
        if target is None:
            raise ValueError(f"{args.service}: an image built from {args.dockerfile} must name its Dockerfile stage")
        # The builder (the awsx provider's process) resolves relative paths against its working directory, the
        # project directory where this program runs too. A path relative to it ("." under `pulumi up`) finds the
        # context wherever the checkout is, and stays the same string on every machine: the builder rebuilds
        # when the path it is given changes, and a rebuild under an existing tag is refused by the repository.
        context = os.path.relpath(args.image_context, Path.cwd())
        dockerfile = os.path.normpath(os.path.join(context, args.dockerfile))
        tag = content_image_tag(
            args.service,
            args.image_context,
            args.dockerfile,
            {"context": context, "dockerfile": dockerfile, "target": target, "platform": IMAGE_PLATFORM},
        )
        image = awsx.ecr.Image(
            f"{self._name}-image",
            repository_url=repository.repository_url,
            context=context,
            dockerfile=dockerfile,
            target=target,
            platform=IMAGE_PLATFORM,
            image_tag=tag,
            opts=child_options(self),
        )
        return image.image_uri

    # --- identity ----------------------------------------------------------------------------------

    def _roles(self) -> tuple[aws.iam.Role, aws.iam.Role]:
        args = self._args
        execution = self._role(
            "execution",
            "ecs-tasks.amazonaws.com",
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
        task = self._role("task", "ecs-tasks.amazonaws.com", f"What the {args.service} code itself may do")
        self._grants.append(
            aws.iam.RolePolicy(
                f"{self._name}-task-policy",
                role=task.id,
                policy=policy_document(
                    *args.task_statements, Statement("Tracing", XRAY_ACTIONS, ["*"]), *self._exec_statements()
                ),
                opts=child_options(self),
            )
        )
        return execution, task

    def _exec_statements(self) -> list[Statement]:
        """ECS Exec's agent: its SSM channels, and the session log it writes to the cluster's exec log group."""
        if not self._args.config.execute_command:
            return []
        log_group_arn = self._args.cluster.exec_log_group.arn
        return [
            Statement("EcsExec", EXEC_ACTIONS, ["*"]),
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
        balancing, port = args.load_balancing, args.container.port
        if balancing is None or port is None:
            return
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-from-alb",
            security_group_id=group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=balancing.alb_security_group_id,
            description="the ALB to the tasks",
            opts=child_options(self),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-alb-to-tasks",
            security_group_id=balancing.alb_security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=group_id,
            description=f"the ALB to the {args.service} tasks",
            opts=child_options(self),
        )

    # --- task and service --------------------------------------------------------------------------

    def _task_definition(self) -> aws.ecs.TaskDefinition:
        args, container = self._args, self._args.container
        app = {
            **self._container(args.service, self.image_uri, container.command, app_settings=True),
            "stopTimeout": container.stop_timeout_seconds,
            "linuxParameters": {"initProcessEnabled": True},  # ECS Exec, and signals reach the app
            "healthCheck": {
                "command": list(container.health_check_command),
                "startPeriod": CONTAINER_HEALTH_START_PERIOD_SECONDS,
                "interval": CONTAINER_HEALTH_INTERVAL_SECONDS,
                "timeout": CONTAINER_HEALTH_TIMEOUT_SECONDS,
                "retries": CONTAINER_HEALTH_RETRIES,
            },
            "dependsOn": [
                {"containerName": COLLECTOR, "condition": "START"},
                *([{"containerName": INIT, "condition": "SUCCESS"}] if container.init_command else []),
            ],
        }
        if container.port is not None:
            app["portMappings"] = [{"containerPort": container.port, "protocol": "tcp"}]
        collector = {
            **self._container(COLLECTOR, ADOT_IMAGE, [ADOT_CONFIG], essential=False),
            "cpu": ADOT_CPU,
            "memoryReservation": ADOT_MEMORY_RESERVATION,
        }
        definitions = [app, collector]
        if container.init_command:
            # Runs to completion before the app starts (migrations are safe to run from many tasks at once).
            definitions.append(
                self._container(INIT, self.image_uri, container.init_command, app_settings=True, essential=False)
            )
        for companion, command in sorted(container.companions.items()):
            definitions.append(
                {
                    **self._container(companion, self.image_uri, command, app_settings=True),
                    "stopTimeout": container.stop_timeout_seconds,
                    "dependsOn": [{"containerName": COLLECTOR, "condition": "START"}],
                }
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
            volumes=[
                aws.ecs.TaskDefinitionVolumeArgs(name=volume)
                for volume in [TMP_VOLUME, *[v for c in self._shell_containers() for v in self._exec_volumes(c)]]
            ],
            container_definitions=pulumi.Output.json_dumps(definitions),
            tags=args.naming.tags(args.service, "task"),
            opts=child_options(self),
        )

    def _shell_containers(self) -> list[str]:
        """The containers an operator can open an ECS Exec shell in: the app's long-running processes (the
        collector's image has no shell; the init container is gone once it has run)."""
        if not self._args.config.execute_command:
            return []
        return [self._args.service, *sorted(self._args.container.companions)]

    @staticmethod
    def _exec_volumes(container: str) -> dict[str, str]:
        """Volume name -> path: the ECS Exec agent's writable paths, one set per container so no two agents
        share state."""
        return {f"{container}-exec-{label}": path for label, path in EXEC_AGENT_PATHS.items()}

    def _container(
        self,
        name: str,
        image: pulumi.Input[str],
        command: Sequence[str],
        *,
        app_settings: bool = False,
        essential: bool = True,
    ) -> dict[str, object]:
        """A container as every one of this task runs: non-root, read-only root, /tmp writable, logged; in a
        shell container with ECS Exec on, the agent's paths writable too."""
        args, container = self._args, self._args.container
        mounts = {TMP_VOLUME: "/tmp"}  # noqa: S108
        if name in self._shell_containers():
            mounts.update(self._exec_volumes(name))
        definition: dict[str, object] = {
            "name": name,
            "image": image,
            "essential": essential,
            "command": list(command),
            "user": container.user,
            "readonlyRootFilesystem": True,
            "privileged": False,
            "mountPoints": [
                {"sourceVolume": volume, "containerPath": path, "readOnly": False} for volume, path in mounts.items()
            ],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": args.log_group_name,
                    "awslogs-region": args.account.region,
                    "awslogs-stream-prefix": name,
                    "mode": "non-blocking",
                },
            },
        }
        if app_settings:
            definition["environment"] = [{"name": k, "value": v} for k, v in sorted(container.environment.items())]
            definition["secrets"] = [{"name": k, "valueFrom": v} for k, v in sorted(container.secrets.items())]
        return definition

    def _service(self) -> aws.ecs.Service:
        args, config = self._args, self._args.config
        balancing = args.load_balancing
        blue_green = config.deployment.strategy == "blue_green" and balancing is not None
        load_balancers = []
        # ECS needs the cluster's capacity providers before a strategy names them.
        waits_for: list[pulumi.Resource] = [args.cluster.capacity_providers]
        if balancing is not None and args.container.port is not None:
            advanced = None
            if blue_green:
                alternate = balancing.alternate_target_group
                if alternate is None:
                    raise ValueError(f"{args.service}: blue/green needs an alternate target group")
                infrastructure_role = self._infrastructure_role()
                advanced = aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                    alternate_target_group_arn=alternate.arn,
                    production_listener_rule=balancing.listener_rule.arn,
                    role_arn=infrastructure_role.arn,
                )
            # ECS refuses a target group no listener forwards to: the rule that attaches the groups comes first.
            waits_for.append(balancing.listener_rule)
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
                aws.ecs.ServiceAlarmsArgs(alarm_names=list(args.rollback_alarm_names), enable=True, rollback=True)
                if args.rollback_alarm_names
                else None
            ),
            deployment_configuration=(
                aws.ecs.ServiceDeploymentConfigurationArgs(
                    strategy="BLUE_GREEN", bake_time_in_minutes=str(config.deployment.bake_minutes)
                )
                if blue_green
                else aws.ecs.ServiceDeploymentConfigurationArgs(strategy="ROLLING")
            ),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            wait_for_steady_state=False,
            tags=args.naming.tags(args.service),
            # Autoscaling owns the running count once the service exists.
            opts=child_options(self, ignore_changes=["desiredCount"], depends_on=[*waits_for, *self._grants]),
        )

    def _infrastructure_role(self) -> aws.iam.Role:
        return self._role(
            "deploy",
            "ecs.amazonaws.com",
            "ECS shifts the listener rule between target groups during blue/green deployments",
            LOAD_BALANCER_INFRASTRUCTURE_POLICY,
        )

    def _role(self, label: str, service: str, description: str, managed_policy: str | None = None) -> aws.iam.Role:
        """A role `service` assumes for this workload, with at most one AWS managed policy attached."""
        role = aws.iam.Role(
            f"{self._name}-{label}-role",
            assume_role_policy=assume_role_policy(service),
            description=description,
            tags=self._args.naming.tags(self._args.service, label),
            opts=child_options(self),
        )
        if managed_policy is not None:
            self._grants.append(
                aws.iam.RolePolicyAttachment(
                    f"{self._name}-{label}-managed",
                    role=role.name,
                    policy_arn=managed_policy,
                    opts=child_options(self),
                )
            )
        return role

    # --- autoscaling -------------------------------------------------------------------------------

    def _autoscaling(self) -> aws.appautoscaling.Target:
        args, config = self._args, self._args.config
        target = aws.appautoscaling.Target(
            f"{self._name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.format("service/{0}/{1}", args.cluster.cluster.name, self.service.name),
            min_capacity=config.min_count,
            max_capacity=config.max_count,
            opts=child_options(self),
        )
        scaling = config.autoscaling
        policies: dict[str, aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs] = {}
        if args.backlog_queue_name is None:
            policies["cpu"] = self._tracking(scaling.cpu_target_percent, "ECSServiceAverageCPUUtilization")
            policies["memory"] = self._tracking(scaling.memory_target_percent, "ECSServiceAverageMemoryUtilization")
            if args.load_balancing is not None:
                policies["requests"] = self._request_tracking(args.load_balancing)
        else:
            policies["backlog"] = self._backlog_tracking(args.backlog_queue_name)
        for label, configuration in policies.items():
            aws.appautoscaling.Policy(
                f"{self._name}-scale-on-{label}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=configuration,
                opts=child_options(self),
            )
        return target

    def _tracking(
        self, target_value: float, metric: str
    ) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs:
        scaling = self._args.config.autoscaling
        return aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
            target_value=target_value,
            predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                predefined_metric_type=metric
            ),
            scale_out_cooldown=scaling.scale_out_cooldown_seconds,
            scale_in_cooldown=scaling.scale_in_cooldown_seconds,
        )

    def _request_tracking(
        self, balancing: LoadBalancing
    ) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs:
        """ALB requests per running task, summed over every target group of the service.

        The predefined ALBRequestCountPerTarget watches one group; after a blue/green swap production traffic
        reaches the other one, and the policy would see an idle group. A group without requests publishes no
        data points, so each is FILLed with 0 before the sum.
        """
        groups = {f"requests_{index}": group.arn_suffix for index, group in enumerate(balancing.target_groups)}
        requests = [
            _metric(
                metric_id,
                f"ALB requests ({metric_id})",
                namespace="AWS/ApplicationELB",
                name="RequestCount",
                statistic="Sum",
                dimensions={"LoadBalancer": balancing.alb.arn_suffix, "TargetGroup": suffix},
            )
            for metric_id, suffix in groups.items()
        ]
        total = " + ".join(f"FILL({metric_id}, 0)" for metric_id in groups)
        return self._per_task_tracking(
            self._args.config.autoscaling.requests_per_target, requests, f"({total})", "requests_per_task"
        )

    def _backlog_tracking(
        self, queue_name: pulumi.Input[str]
    ) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs:
        """Visible messages divided by running tasks, through metric math: the backlog each task faces."""
        visible = _metric(
            "visible",
            "Messages visible",
            namespace="AWS/SQS",
            name="ApproximateNumberOfMessagesVisible",
            statistic="Sum",
            dimensions={"QueueName": queue_name},
        )
        return self._per_task_tracking(
            self._args.config.autoscaling.backlog_per_task, [visible], "visible", "backlog_per_task"
        )

    def _per_task_tracking(
        self,
        target_value: float,
        load: Sequence[TrackedMetric],
        load_expression: str,
        result_id: str,
    ) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs:
        """Target tracking on `load_expression` divided by the service's running tasks (Container Insights)."""
        args, scaling = self._args, self._args.config.autoscaling
        spec = aws.appautoscaling
        tasks = _metric(
            "tasks",
            "Running tasks",
            namespace="ECS/ContainerInsights",
            name="RunningTaskCount",
            statistic="Average",
            dimensions={"ClusterName": args.cluster.cluster.name, "ServiceName": args.service},
        )
        per_task = TrackedMetric(
            id=result_id,
            label=result_id.replace("_", " ").capitalize(),
            expression=f"{load_expression} / tasks",
            return_data=True,
        )
        return spec.PolicyTargetTrackingScalingPolicyConfigurationArgs(
            target_value=target_value,
            customized_metric_specification=spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
                metrics=[*load, tasks, per_task]
            ),
            scale_out_cooldown=scaling.scale_out_cooldown_seconds,
            scale_in_cooldown=scaling.scale_in_cooldown_seconds,
        )


TrackedMetric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricArgs


def _metric(
    metric_id: str,
    label: str,
    *,
    namespace: str,
    name: str,
    statistic: str,
    dimensions: Mapping[str, pulumi.Input[str]],
) -> TrackedMetric:
    """One CloudWatch metric a target tracking policy's metric math reads (not returned on its own)."""
    spec = aws.appautoscaling
    stat = spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatArgs
    named = spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs
    dimension = spec.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs  # noqa: E501
    return TrackedMetric(
        id=metric_id,
        label=label,
        return_data=False,
        metric_stat=stat(
            stat=statistic,
            metric=named(
                namespace=namespace,
                metric_name=name,
                dimensions=[dimension(name=key, value=value) for key, value in dimensions.items()],
            ),
        ),
    )
