"""The policy pack as the Pulumi engine runs it: its own process, driven through the analyzer gRPC interface.

The engine starts a Python policy pack as its own process (`python -u -m pulumi.policy
<engine address> .` in the pack's directory, the stack's config in `PULUMI_CONFIG`, the project and
stack in `PULUMI_PROJECT`/`PULUMI_STACK`), reads the port the pack prints on its first line of
output, and talks the analyzer gRPC interface: Handshake, ConfigureStack, GetAnalyzerInfo,
Configure (the stack's pack config), Analyze per resource, AnalyzeStack with every resource. This
module does the same.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from platformctl.plan import Plan, PlannedResource
from platformctl.policy.config import Resolved
from platformctl.policy.model import LEVEL_CODES, LEVELS, SEVERITIES, PolicyError, RuleInfo

PACK_DIR = Path(__file__).resolve().parent.parent.parent / "policy"
STARTUP_SECONDS = 60


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine's side of the conversation: the pack may log through it."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.messages.append(request.message)
        return empty_pb2.Empty()


class PolicyPackProcess:
    """A policy pack started as the engine starts one; usable as a context manager."""

    def __init__(
        self,
        pack_dir: Path = PACK_DIR,
        *,
        project: str = "platform",
        stack: str = "dev",
        stack_config: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.pack_dir = pack_dir.resolve()
        self.project, self.stack = project, stack
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyError(f"no policy pack (PulumiPolicy.yaml) in {self.pack_dir}")
        self.engine = _Engine()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine, self._server)
        engine_port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.engine_address = f"127.0.0.1:{engine_port}"
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._closed = False
        self.stderr = ""
        env = {
            **os.environ,
            "PULUMI_CONFIG": json.dumps(dict(stack_config or {})),
            "PULUMI_PROJECT": project,
            "PULUMI_STACK": stack,
            "PULUMI_DRY_RUN": "true",
            "PULUMI_ORGANIZATION": "organization",
        }
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter running the pack
            [python, "-u", "-m", "pulumi.policy", self.engine_address, "."],
            cwd=self.pack_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        port = self._read_port()
        # Whatever the pack prints later is kept, so a full pipe never blocks it.
        self.output: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
        )
        grpc.channel_ready_future(self.channel).result(timeout=STARTUP_SECONDS)
        self.analyzer = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        self._handshake()

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=STARTUP_SECONDS)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            self.close()
            stderr = self.stderr
            raise PolicyError(f"the policy pack in {self.pack_dir} did not start: {line}{stderr}".strip())
        return int(line)

    def _drain(self) -> None:
        stdout = self.process.stdout
        if stdout is None:
            return
        try:
            for line in stdout:
                self.output.append(line.decode(errors="replace"))
        except (OSError, ValueError):  # closed by close()
            return

    def _stderr_text(self) -> str:
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def _handshake(self) -> None:
        request = analyzer_pb2.AnalyzerHandshakeRequest(
            engine_address=self.engine_address, root_directory=str(self.pack_dir), program_directory=str(self.pack_dir)
        )
        try:
            self.analyzer.Handshake(request)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:  # older packs skip it, as the engine allows
                raise
        self.analyzer.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack, project=self.project, organization="organization", dry_run=True
            )
        )

    def rules(self) -> list[RuleInfo]:
        info = self.analyzer.GetAnalyzerInfo(empty_pb2.Empty())
        rules = []
        for policy in info.policies:
            schema = (
                json_format.MessageToDict(policy.configSchema.properties) if policy.HasField("configSchema") else {}
            )
            rules.append(
                RuleInfo(
                    name=policy.name,
                    description=policy.description,
                    enforcement_level=LEVELS[policy.enforcementLevel],
                    severity=SEVERITIES.get(policy.severity, "unspecified"),
                    remediation=policy.remediation_steps,
                    tags=tuple(policy.tags),
                    config_schema=schema,
                )
            )
        return rules

    def configure(self, resolved: Resolved) -> dict[str, str]:
        """Send each rule's enforcement level and knobs (`config.resolve_config`); each rule's level back."""
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, properties) in resolved.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = LEVEL_CODES[level]
            entry.properties.CopyFrom(_struct(properties))
        self.analyzer.Configure(request)
        return {name: level for name, (level, _) in resolved.items()}

    def analyze(self, plan: Plan) -> list[tuple[analyzer_pb2.AnalyzeDiagnostic, str]]:
        """Every resource through Analyze (its inputs), then the whole plan through AnalyzeStack (its state)."""
        providers = _providers(plan)
        diagnostics: list[tuple[analyzer_pb2.AnalyzeDiagnostic, str]] = []
        for resource in plan.resources:
            response = self.analyzer.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=resource.type,
                    properties=_struct(resource.inputs),
                    urn=resource.urn,
                    name=resource.name,
                    options=analyzer_pb2.AnalyzerResourceOptions(parent=resource.parent or ""),
                    provider=_provider_of(resource, providers),
                )
            )
            diagnostics.extend((d, resource.urn) for d in response.diagnostics)
        stack_request = analyzer_pb2.AnalyzeStackRequest()
        for resource in plan.resources:
            entry = stack_request.resources.add(
                type=resource.type,
                properties=_struct(_state(resource)),
                urn=resource.urn,
                name=resource.name,
                options=analyzer_pb2.AnalyzerResourceOptions(parent=resource.parent or ""),
                provider=_provider_of(resource, providers),
                parent=resource.parent or "",
                dependencies=resource.dependencies,
            )
            for key, urns in resource.property_dependencies.items():
                if urns:
                    entry.propertyDependencies[key].urns.extend(urns)
        response = self.analyzer.AnalyzeStack(stack_request)
        diagnostics.extend((d, "") for d in response.diagnostics)
        return diagnostics

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        stderr = self._stderr_text()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
        self._server.stop(None)
        self.stderr = stderr

    def __enter__(self) -> PolicyPackProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(value)))
    return struct


def _state(resource: PlannedResource) -> dict[str, Any]:
    """What the engine hands AnalyzeStack: a custom resource's state (inputs and computed outputs)."""
    if resource.custom:
        return {**resource.inputs, **resource.outputs}
    return resource.outputs


def _providers(plan: Plan) -> dict[str, PlannedResource]:
    """Each package's provider: its only one, or the one named after the package (the program's main one).

    The plan does not record which provider a resource uses; a second provider (the backup copy
    region's) serves few resources, so the main one stands in for all.
    """
    found: dict[str, list[PlannedResource]] = {}
    for resource in plan.resources:
        if resource.type.startswith("pulumi:providers:"):
            found.setdefault(resource.type.split(":")[-1], []).append(resource)
    chosen: dict[str, PlannedResource] = {}
    for package, providers in found.items():
        named = [provider for provider in providers if provider.name == package]
        if len(providers) == 1 or len(named) == 1:
            chosen[package] = providers[0] if len(providers) == 1 else named[0]
    return chosen


def _provider_of(
    resource: PlannedResource, providers: Mapping[str, PlannedResource]
) -> analyzer_pb2.AnalyzerProviderResource | None:
    if not resource.custom or resource.type.startswith("pulumi:providers:"):
        return None
    provider = providers.get(resource.type.split(":")[0])
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
    )
