"""What every rule shares: its metadata, how it becomes a CrossGuard policy, and the stack graph.

Rules read resources as the engine hands them over: camelCase properties of pulumi-aws 7.x, wrapped
in pulumi-policy's unknown-checking proxies (Mappings and Sequences, not dicts and lists). Stack
rules tie resources together through property dependencies (a BucketPublicAccessBlock's `bucket`
depends on the Bucket's URN), never through id strings, so they hold in a real `pulumi preview`
where new ids are unknown. A value that cannot be known yet is never taken as compliant: resource
rules let pulumi-policy report it, stack rules check everything else and then report each unknown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal, get_args

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

Kind = Literal["security", "availability", "recovery", "operations"]
# The areas in the order the pack serves its rules (and the README lists them): the only list of them.
Area = Literal[
    "encryption",
    "transit",
    "network",
    "edge",
    "identity",
    "availability",
    "recovery",
    "messaging",
    "observability",
    "governance",
]
AREAS: tuple[Area, ...] = get_args(Area)
# What the offline plan writes for a secret value; a rule that needs it cannot judge it. The pack is
# deployed on its own and cannot import platformctl: tests/policy checks this equals the plan's mask.
SECRET_MASK = "[secret]"  # noqa: S105 - a mask, not a secret


class Unknown(Exception):
    """A value a rule needs is not known (an unknown output in preview, or a masked secret)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
ResourceCheck = Callable[["Resource", dict[str, Any], Report], None]
StackCheck = Callable[["Stack", dict[str, Any], StackReport], None]
Check = ResourceCheck | StackCheck


@dataclass(frozen=True)
class Rule:
    """A rule: its metadata and its check, declared together.

    Written as a decorator on the check, `@Rule(name=..., ...)` above `def the_rule(...)`, the
    module's `the_rule` is the whole rule; a check shared by two rules, or one built by
    `property_true`/`property_set`, is given as `check=`. `stack=True` rules check the whole stack
    (AnalyzeStack), others each resource of `resource_types` (Analyze).
    """

    name: str
    area: Area
    kind: Kind
    severity: Severity
    summary: str
    seed: str
    checks: str
    remediation: str
    resource_types: tuple[str, ...] = ()
    stack: bool = False
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    check: Check | None = field(default=None, repr=False, compare=False)

    def __call__(self, check: Check) -> Rule:
        return replace(self, check=check)

    @property
    def description(self) -> str:
        text = f"{self.summary} Seed: {self.seed}."
        if self.checks:
            text += f" Equivalent: {self.checks}."
        return text

    def defaults(self) -> dict[str, Any]:
        return {key: schema["default"] for key, schema in self.config.items() if "default" in schema}

    def policy(self) -> Policy:
        """The CrossGuard policy: a stack policy for stack rules, else a resource policy."""
        if self.check is None:
            raise TypeError(f"rule {self.name} has no check: declare it with @Rule(...) on one, or check=")
        metadata: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "enforcement_level": self.enforcement,
            "config_schema": _schema(self),
            "severity": self.severity,
            "tags": [self.area, self.kind],
            "remediation_steps": self.remediation,
        }
        if self.stack:
            return StackValidationPolicy(validate=_stack_validate(self, self.check), **metadata)
        return ResourceValidationPolicy(validate=_resource_validate(self, self.check), **metadata)


def property_true(prop: str) -> ResourceCheck:
    """The check of a rule that wants `prop` set to true."""

    def check(resource: Resource, config: dict[str, Any], report: Report) -> None:
        if resource.get(prop) is not True:
            report(f"{resource.label}: {prop} is not true")

    return check


def property_set(prop: str) -> ResourceCheck:
    """The check of a rule that wants `prop` set (a key, an ACL: anything but empty)."""

    def check(resource: Resource, config: dict[str, Any], report: Report) -> None:
        if not resource.get(prop):
            report(f"{resource.label}: no {prop}")

    return check


def _config(rule: Rule, args: ResourceValidationArgs | StackValidationArgs) -> dict[str, Any]:
    return _numbers({**rule.defaults(), **dict(args.get_config() or {})})


def _resource_validate(rule: Rule, check: Any) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """Run on each resource of `rule.resource_types` (Analyze)."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if rule.resource_types and args.resource_type not in rule.resource_types:
            return
        resource = Resource(args.urn, args.resource_type, args.name, args.props, provider=args.provider)
        try:
            check(resource, _config(rule, args), lambda message: report(message, None))
        except Unknown as unknown:
            # pulumi-policy turns this into its "can't run policy during preview" diagnostic.
            raise _unknown_error([unknown.what]) from None

    return validate


def _stack_validate(rule: Rule, check: Any) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """Run once over the whole stack (AnalyzeStack)."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        stack = Stack(args.resources)
        check(stack, _config(rule, args), report)
        if stack.unknowns:
            raise _unknown_error(stack.unknowns)

    return validate


def _numbers(value: Any) -> Any:
    """Config arrives through protobuf, every number a double: whole numbers back to int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return value


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.config:
        return None
    return PolicyConfigSchema(properties={key: dict(value) for key, value in rule.config.items()})


def _unknown_error(what: Sequence[str]) -> UnknownValueError:
    error = UnknownValueError(UNKNOWN_STRING_VALUE, [])
    error.message = "not checked, unknown until apply: " + "; ".join(what)
    return error


# --- reading properties ---------------------------------------------------------------------------


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def items(value: Any) -> list[Any]:
    """A list property as a list (absent means empty)."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    return [value]


class Resource:
    """A resource's URN, type, name and properties, with unknown-aware accessors."""

    def __init__(
        self, urn: str, type_: str, name: str, props: Mapping[str, Any], *, provider: Any = None, source: Any = None
    ) -> None:
        self.urn, self.type, self.name, self.props = urn, type_, name, props
        self.provider = provider
        self.source = source

    def __repr__(self) -> str:
        return f"{self.type} {self.name}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.type.rsplit(':', 1)[-1]})"

    def get(self, *path: str | int, default: Any = None) -> Any:
        """The value at `path`; absent is `default`; unknown raises `Unknown`."""
        value: Any = self.props
        walked: list[str] = []
        for key in path:
            walked.append(str(key))
            try:
                if isinstance(key, int):
                    value = value[key] if is_list(value) and len(value) > key else None
                else:
                    value = value[key] if is_map(value) and key in value else None
            except UnknownValueError:
                raise Unknown(f"{self.label}.{'.'.join(walked)}") from None
            if value is None:
                return default
        if isinstance(value, float) and value.is_integer():
            return int(value)  # protobuf carries every number as a double
        return value

    def json(self, *path: str) -> Any:
        """A property holding a JSON document (policies, container definitions), parsed."""
        value = self.get(*path)
        if value is None or is_map(value) or is_list(value):
            return value
        if value == SECRET_MASK:  # the offline plan masks secrets; a preview hands them over
            raise Unknown(f"{self.label}.{'.'.join(path)} (a secret the offline plan masks)")
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            raise Unknown(f"{self.label}.{'.'.join(path)} (not JSON yet)") from None

    def tags(self) -> dict[str, Any]:
        own = self.get("tags") or {}
        default: Any = {}
        if self.provider is not None:
            try:
                default = self.provider.props.get("defaultTags") or {}
            except UnknownValueError:
                default = {}
            if isinstance(default, str):  # providers receive structured config as JSON text
                try:
                    default = json.loads(default) or {}
                except ValueError:
                    default = {}
            default = (default.get("tags") or {}) if is_map(default) else {}
        return {**dict(default), **dict(own)}


class Stack:
    """The resources of a stack, with lookups by type and through property dependencies."""

    def __init__(self, resources: Iterable[PolicyResource]) -> None:
        self.by_urn: dict[str, Resource] = {}
        for resource in resources:
            self.by_urn[resource.urn] = Resource(
                resource.urn,
                resource.resource_type,
                resource.name,
                resource.props,
                provider=resource.provider,
                source=resource,
            )
        self.unknowns: list[str] = []

    def of(self, *types: str) -> list[Resource]:
        return [resource for resource in self.by_urn.values() if resource.type in types]

    def deps(self, resource: Resource, prop: str, *types: str) -> list[Resource]:
        """The resources `resource.prop` was computed from (its property dependencies), of `types`."""
        found = []
        for dep in (resource.source.property_dependencies.get(prop) or []) if resource.source else []:
            target = self.by_urn.get(dep.urn)
            if target is not None and (not types or target.type in types):
                found.append(target)
        return found

    def referrers(self, target: Resource, prop: str, *types: str) -> list[Resource]:
        """Resources of `types` whose `prop` depends on `target`."""
        return [resource for resource in self.of(*types) if target in self.deps(resource, prop)]

    def check_each(self, resources: Iterable[Resource], check: Callable[[Resource], None]) -> None:
        """Run `check` on each resource; one that meets an unknown value is set aside and reported."""
        for resource in resources:
            self.guard(partial(check, resource))

    def guard(self, check: Callable[[], Any]) -> Any:
        try:
            return check()
        except Unknown as unknown:
            self.unknowns.append(unknown.what)
        except UnknownValueError as error:
            self.unknowns.append(error.message)


def statements(document: Any) -> list[Mapping[str, Any]]:
    """A policy document's statements (a single statement object counts as one)."""
    if not is_map(document):
        return []
    return [statement for statement in items(document.get("Statement")) if is_map(statement)]


def denies_insecure_transport(document: Any) -> bool:
    """Whether the policy denies every request made without TLS (aws:SecureTransport false)."""
    for statement in statements(document):
        if statement.get("Effect") != "Deny":
            continue
        condition = statement.get("Condition") or {}
        for operator in ("Bool", "BoolIfExists"):
            values: Any = (condition.get(operator) or {}) if is_map(condition) else {}
            secure = values.get("aws:SecureTransport") if is_map(values) else None
            if str(secure).lower() == "false" or items(secure) == ["false"]:
                principal: Any = statement.get("Principal")
                if principal == "*" or (is_map(principal) and items(principal.get("AWS")) == ["*"]):
                    return True
    return False


def zone_of(subnet: Resource) -> str | None:
    zone = subnet.get("availabilityZone") or subnet.get("availabilityZoneId")
    return str(zone) if zone else None


TIER_TAG = "tier"
IGW = "aws:ec2/internetGateway:InternetGateway"
NAT = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def route_tables_of(stack: Stack, subnet: Resource) -> list[Resource]:
    tables: list[Resource] = []
    for association in stack.referrers(subnet, "subnetId", ASSOCIATION):
        tables.extend(stack.deps(association, "routeTableId", ROUTE_TABLE))
    return tables


def route_targets(stack: Stack, table: Resource) -> list[Resource]:
    """The gateways a route table sends traffic to: inline `routes` and separate Route resources."""
    targets = stack.deps(table, "routes", IGW, NAT)
    for route in stack.referrers(table, "routeTableId", ROUTE):
        targets.extend(stack.deps(route, "gatewayId", IGW))
        targets.extend(stack.deps(route, "natGatewayId", NAT))
    return targets


def subnet_tier(stack: Stack, subnet: Resource) -> str:
    """public (a route to an internet gateway), private (to a NAT gateway) or isolated (neither).

    Read from the route tables through property dependencies; a subnet with no route table in the
    stack falls back to its `tier` tag, and is isolated if it has none.
    """
    tables = route_tables_of(stack, subnet)
    if not tables:
        tag = (subnet.get("tags") or {}).get(TIER_TAG)
        return str(tag) if tag in ("public", "private", "isolated") else "isolated"
    types = {target.type for table in tables for target in route_targets(stack, table)}
    if IGW in types:
        return "public"
    if NAT in types:
        return "private"
    return "isolated"
