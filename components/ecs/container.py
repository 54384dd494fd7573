"""What a Fargate task runs: the image (built from the repository, tagged by its content) and its containers
(the app, the ADOT collector, an init container, companions), all non-root on a read-only root."""

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

from components.ecs.fis_agent import (
    FIS_AGENT,
    FIS_AGENT_CPU,
    FIS_AGENT_IMAGE,
    FIS_AGENT_MEMORY_RESERVATION,
    REGISTRATION_SCRIPT,
    ROLE_NAME_VARIABLE,
)
from components.naming import Naming, child_options

# The OpenTelemetry collector sidecar (ADOT), pinned; its default ECS config sends traces to X-Ray.
ADOT_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
ADOT_CONFIG = "--config=/etc/ecs/ecs-default-config.yaml"
ADOT_CPU, ADOT_MEMORY_RESERVATION = 64, 128
CONTAINER_HEALTH_START_PERIOD_SECONDS = 60
CONTAINER_HEALTH_INTERVAL_SECONDS, CONTAINER_HEALTH_TIMEOUT_SECONDS, CONTAINER_HEALTH_RETRIES = 15, 5, 3
TMP_VOLUME = "tmp"
COLLECTOR, INIT = "otel-collector", "init"
IMAGE_PLATFORM = "linux/amd64"
# Docker's and ECR's rule for a tag: 1 to 128 of these characters, not starting with `.` or `-`.
IMAGE_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
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
class ImageSource:
    """Where a service's image is built from: the repository root (the Dockerfile copies pyproject.toml,
    uv.lock and app/ from there), absolute; the Dockerfile, relative to it; how many images ECR keeps."""

    context: Path
    dockerfile: str = "app/Dockerfile"
    keep_count: int = 20


def build_image(
    owner: pulumi.Resource, name: str, service: str, naming: Naming, source: ImageSource, *, target: str | None
) -> pulumi.Output[str]:
    """An immutable, scanned ECR repository for `service` and the image built into it, as `owner`'s children."""
    repository = aws.ecr.Repository(
        f"{name}-repository",
        name=naming.name(service),
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
        encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
        tags=naming.tags(service, "images"),
        opts=child_options(owner),
    )
    aws.ecr.LifecyclePolicy(
        f"{name}-image-lifecycle",
        repository=repository.name,
        policy=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "description": f"keep the last {source.keep_count} images",
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": source.keep_count,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
        opts=child_options(owner),
    )
    if target is None:
        raise ValueError(f"{service}: an image built from {source.dockerfile} must name its Dockerfile stage")
    # The builder (the awsx provider's process) resolves relative paths against its working directory, the
    # project directory where this program runs too. A path relative to it ("." under `pulumi up`) finds the
    # context wherever the checkout is, and stays the same string on every machine: the builder rebuilds
    # when the path it is given changes, and a rebuild under an existing tag is refused by the repository.
    context = os.path.relpath(source.context, Path.cwd())
    dockerfile = os.path.normpath(os.path.join(context, source.dockerfile))
    tag = content_image_tag(
        service,
        source.context,
        source.dockerfile,
        {"context": context, "dockerfile": dockerfile, "target": target, "platform": IMAGE_PLATFORM},
    )
    image = awsx.ecr.Image(
        f"{name}-image",
        repository_url=repository.repository_url,
        context=context,
        dockerfile=dockerfile,
        target=target,
        platform=IMAGE_PLATFORM,
        image_tag=tag,
        opts=child_options(owner),
    )
    return image.image_uri


@dataclass(frozen=True)
class TaskContainers:
    """The containers of one service's task, as ECS takes them: `definitions()` and the `volumes` they mount."""

    service: str
    spec: ContainerSpec
    image: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    region: str
    execute_command: bool
    # The role SSM gives the task registered for FIS's task actions: with it, the SSM agent sidecar runs.
    fis_agent_role_name: pulumi.Input[str] | None = None

    def definitions(self) -> list[dict[str, object]]:
        container = self.spec
        app = {
            **self._container(self.service, self.image, container.command, app_settings=True),
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
                self._container(INIT, self.image, container.init_command, app_settings=True, essential=False)
            )
        for companion, command in sorted(container.companions.items()):
            definitions.append(
                {
                    **self._container(companion, self.image, command, app_settings=True),
                    "stopTimeout": container.stop_timeout_seconds,
                    "dependsOn": [{"containerName": COLLECTOR, "condition": "START"}],
                }
            )
        if self.fis_agent_role_name is not None:
            definitions.append(self._fis_agent(self.fis_agent_role_name))
        return definitions

    def _fis_agent(self, role_name: pulumi.Input[str]) -> dict[str, object]:
        """AWS's SSM agent sidecar for FIS (components/ecs/fis_agent.py): root, writable root, no volumes."""
        return {
            **self._container(FIS_AGENT, FIS_AGENT_IMAGE, ["/bin/bash", "-c", REGISTRATION_SCRIPT], essential=False),
            "user": "root",
            "readonlyRootFilesystem": False,
            "mountPoints": [],
            "environment": [{"name": ROLE_NAME_VARIABLE, "value": role_name}],
            "cpu": FIS_AGENT_CPU,
            "memoryReservation": FIS_AGENT_MEMORY_RESERVATION,
        }

    @property
    def volumes(self) -> list[str]:
        return [TMP_VOLUME, *[volume for shell in self._shell_containers() for volume in _exec_volumes(shell)]]

    def _shell_containers(self) -> list[str]:
        """The containers an operator can open an ECS Exec shell in: the app's long-running processes (the
        collector's image has no shell; the init container is gone once it has run)."""
        if not self.execute_command:
            return []
        return [self.service, *sorted(self.spec.companions)]

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
        container = self.spec
        mounts = {TMP_VOLUME: "/tmp"}  # noqa: S108
        if name in self._shell_containers():
            mounts.update(_exec_volumes(name))
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
                    "awslogs-group": self.log_group_name,
                    "awslogs-region": self.region,
                    "awslogs-stream-prefix": name,
                    "mode": "non-blocking",
                },
            },
        }
        if app_settings:
            definition["environment"] = [{"name": k, "value": v} for k, v in sorted(container.environment.items())]
            definition["secrets"] = [{"name": k, "valueFrom": v} for k, v in sorted(container.secrets.items())]
        return definition


def _exec_volumes(container: str) -> dict[str, str]:
    """Volume name -> path: the ECS Exec agent's writable paths, one set per container so no two agents share state."""
    return {f"{container}-exec-{label}": path for label, path in EXEC_AGENT_PATHS.items()}
