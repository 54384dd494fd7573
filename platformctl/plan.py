"""The offline plan: the real Pulumi program run against a stack file under Pulumi's mock runtime.

The program runs exactly as the language host runs it (`run_in_stack`), with the stack's config
handed over the way the engine hands it (strings, structured values as JSON, secret keys marked).
A recording monitor keeps what the engine would see: each registration's type, parent, inputs,
dependencies and property dependencies, and every resource's registered outputs.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_in_stack, wait_for_rpcs
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from platformctl.mocks import DEFAULT_REGION, OfflineMocks
from stack_config.errors import SECRET_MASK  # config errors and plans show a secret alike

# What an offline plan passes for a `secure:` value it cannot decrypt; masked like any secret.
OFFLINE_SECRET_PLACEHOLDER = "offline-plan-placeholder-secret"  # noqa: S105
STACK_TYPE = "pulumi:pulumi:Stack"


class PlanUsageError(Exception):
    """The plan cannot start: a missing project or stack file, or an unreadable one."""


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    id: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # What `platformctl diff` needs to match a moved resource and to honour the program's replace option.
    aliases: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    # Inputs the program leaves to someone else after creation (a rotation, ECS's deployments).
    ignore_changes: list[str] = field(default_factory=list)
    # Deleting the resource from the program leaves the cloud resource in place (a record another owner shares).
    retain_on_delete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "id": self.id,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
            "aliases": self.aliases,
            "replaceOnChanges": self.replace_on_changes,
            "ignoreChanges": self.ignore_changes,
            "retainOnDelete": self.retain_on_delete,
        }


@dataclass
class Plan:
    stack: str
    project: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "project": self.project,
            "resources": [resource.to_json() for resource in self.resources],
            "outputs": self.outputs,
        }

    def custom_resources(self) -> list[PlannedResource]:
        return [resource for resource in self.resources if resource.custom]

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [resource for resource in self.resources if resource.type == type_token]


def mask_secrets(value: Any) -> Any:
    """Replace every secret, at the depth it was marked, by the mask.

    Works on the wire format (protobuf structs) so that one secret header does not hide the whole
    list of origins it sits in, as the SDK's deserializer would by pushing secretness upwards; plain
    values (a mock's state) are masked wherever a secret wrapper remains.
    """
    if isinstance(value, struct_pb2.Struct):
        if rpc._special_sig_key in value.fields:  # the wire format marks secrets, assets and references
            if value[rpc._special_sig_key] == rpc._special_secret_sig:
                return SECRET_MASK
            return mask_secrets(rpc.deserialize_properties(value))
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, struct_pb2.ListValue):
        return [mask_secrets(item) for item in value]
    if rpc.is_rpc_secret(value):
        return SECRET_MASK
    if isinstance(value, dict):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return {"asset": type(value).__name__}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf carries every number as a double
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps parents, dependencies and registered outputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.planned: dict[str, PlannedResource] = {}
        # The mock monitor gives each executor thread an event loop; they are closed after the run
        # so that none is left for the interpreter to tear down noisily at exit.
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()

    def Invoke(self, request: Any) -> Any:
        self.thread_loops.add(_ensure_event_loop())
        return super().Invoke(request)

    def RegisterResource(self, request: Any) -> Any:
        self.thread_loops.add(_ensure_event_loop())
        response = super().RegisterResource(request)
        urn = response.urn
        registration = self.resources.get(urn)
        inputs = mask_secrets(request.object)
        outputs: dict[str, Any] = {}
        # Custom resources and multi-language components (awsx) answer with state at once;
        # local components report theirs through RegisterResourceOutputs.
        if registration and (request.custom or request.remote):
            outputs = {**mask_secrets(registration.state), **inputs}
        self.planned[urn] = PlannedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            custom=bool(request.custom),
            id=(registration.id or None) if registration else None,
            inputs=inputs,
            outputs=outputs,
            # The SDK gathers dependencies in sets; sorted, two plans of one program compare equal.
            dependencies=sorted(request.dependencies),
            property_dependencies={
                name: sorted(deps.urns) for name, deps in sorted(request.propertyDependencies.items())
            },
            # SDKs send alias specs (`aliases`); older ones resolved URNs themselves (`aliasURNs`).
            aliases=sorted({*request.aliasURNs, *(_alias_urn(alias, request, urn) for alias in request.aliases)}),
            replace_on_changes=sorted(request.replaceOnChanges),
            ignore_changes=sorted(request.ignoreChanges),
            retain_on_delete=bool(request.retainOnDelete),
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        planned = self.planned.get(request.urn)
        if planned is not None and not planned.custom:
            planned.outputs = mask_secrets(request.outputs)
        return super().RegisterResourceOutputs(request)


def _alias_urn(alias: Any, request: Any, urn: str) -> str:
    """The URN an alias names, resolved as the engine resolves an alias spec (unset parts are the resource's own)."""
    if alias.WhichOneof("alias") == "urn":
        return str(alias.urn)
    spec = alias.spec
    stack = spec.stack or urn.split("::", 1)[0].rsplit(":", 1)[-1]
    project = spec.project or urn.split("::", 2)[1]
    type_token = spec.type or request.type
    parent = "" if spec.noParent else (spec.parentUrn or request.parent)
    # A URN qualifies a type by its parent's own type (the last segment of the parent's qualified type).
    qualified = f"{parent.rsplit('::', 2)[1].rsplit('$', 1)[-1]}${type_token}" if parent else type_token
    return f"urn:pulumi:{stack}::{project}::{qualified}::{spec.name or request.name}"


def read_project(project_dir: Path) -> str:
    project_file = project_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise PlanUsageError(f"no Pulumi.yaml in {project_dir}")
    project = _load_yaml(project_file)
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(name, str):
        raise PlanUsageError(f"{project_file}: no project name")
    return name


def read_stack_config(project_dir: Path, project: str, stack: str) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as the engine hands it to a program: text values and secret keys."""
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))
        raise PlanUsageError(f"no stack file {stack_file.name}; stacks here: {', '.join(known) or 'none'}")
    document = _load_yaml(stack_file) or {}
    raw = document.get("config") or {} if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        raise PlanUsageError(f"{stack_file.name}: `config` must be a mapping of keys to values")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full_key = str(key) if ":" in str(key) else f"{project}:{key}"
        plain, secret = _without_secure(value)
        config[full_key] = _engine_text(plain)
        if secret:
            secret_keys.append(full_key)
    return config, secret_keys


def _without_secure(value: Any) -> tuple[Any, bool]:
    """Swap each `secure:` entry for a placeholder; report whether there was one."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return OFFLINE_SECRET_PLACEHOLDER, True
    if isinstance(value, dict):
        pairs = {key: _without_secure(item) for key, item in value.items()}
        return {key: plain for key, (plain, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_without_secure(item) for item in value]
        return [plain for plain, _ in items], any(s for _, s in items)
    return value, False


def _engine_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)  # true/false, numbers and structures as the engine writes them


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise PlanUsageError(f"{path.name} is not valid YAML: {error}") from None


@contextmanager
def _program_path(project_dir: Path) -> Iterator[None]:
    sys.path.insert(0, str(project_dir))
    try:
        yield
    finally:
        sys.path.remove(str(project_dir))


def run_plan(project_dir: Path, stack: str) -> Plan:
    """Run the project's program for `stack` under mocks. Errors the program raises propagate."""
    project_dir = project_dir.resolve()
    project = read_project(project_dir)
    config, secret_keys = read_stack_config(project_dir, project, stack)

    def program() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    with _program_path(project_dir):
        return run_program(program, project=project, stack=stack, config=config, secret_keys=secret_keys)


def run_program(
    program: Callable[[], object],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: Sequence[str] = (),
) -> Plan:
    """Run `program` inside a fresh stack under the offline mocks; return what it registered."""
    config = dict(config or {})
    monitor = RecordingMonitor(OfflineMocks(default_region=config.get("aws:region", DEFAULT_REGION)))
    main_loop = _ensure_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix="offline-plan")
    main_loop.set_default_executor(executor)
    try:
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
        pulumi.runtime.set_all_config(config, list(secret_keys))
        # set_mocks installs a throwaway root stack with the program's stack URN; its registrations (empty
        # outputs) finish first, or one landing late would replace the program's stack outputs.
        _sync_await(wait_for_rpcs())
        monitor.planned.clear()
        # The program gets a root stack of its own, as under the engine.
        pulumi_settings.ROOT.set(None)
        _sync_await(run_in_stack(lambda: _discard(program())))
    finally:
        executor.shutdown(wait=True)
        for loop in monitor.thread_loops - {main_loop}:
            loop.close()

    resources = _tree_order(list(monitor.planned.values()))
    stack_resource = next((r for r in resources if r.type == STACK_TYPE), None)
    outputs = stack_resource.outputs if stack_resource else {}
    return Plan(stack=stack, project=project, resources=resources, outputs=outputs)


def _discard(_: object) -> None:
    """run_in_stack awaits what its function returns; a program's return value is not awaitable."""


def _tree_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Parents before children, siblings by name: the same program always plans in the same order."""
    children: dict[str | None, list[PlannedResource]] = {}
    for resource in resources:
        children.setdefault(resource.parent, []).append(resource)
    ordered: list[PlannedResource] = []
    pending = sorted(children.get(None, []), key=lambda r: (r.type != STACK_TYPE, r.name), reverse=True)
    while pending:
        resource = pending.pop()
        ordered.append(resource)
        pending.extend(sorted(children.get(resource.urn, []), key=lambda r: r.name, reverse=True))
    return ordered
