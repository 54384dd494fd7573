"""Per-environment defaults, laid under a stack file's own values before validation.

The seeds' cost and availability advice: prod spreads everything over three AZs with a NAT gateway
per AZ, two Aurora readers, two Redis replicas, deletion protection, 7-day database backups and a
cross-region backup copy; staging makes the cheaper choice wherever the architecture stays intact.

ECS Exec is on in staging, where a shell in a task is how problems get debugged, and off in prod,
where a shell reads the task's secrets and acts with its role: prod turns it on per service for an
incident (a deployment, which replaces the tasks) and off again afterwards.

A profile is spelt as a stack file spells its `platform:` keys and is validated by the schema's own
models when it is made, so a misspelt key or a value the schema refuses fails at import. The editor
schema names each environment's real default where they differ (`with_environment_defaults`).
"""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from stack_config.schema import PlatformConfig

ENVIRONMENTS: tuple[str, ...] = typing.get_args(PlatformConfig.model_fields["environment"].annotation)


class ProfileError(ValueError):
    """A profile names a key the schema does not have, or a value it refuses."""


@dataclass(frozen=True)
class Profile:
    """One environment's defaults: `platform:` keys in the stack file's spelling (camelCase, nested)."""

    environment: str
    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ProfileError(f"profile {self.environment!r}: environment must be one of {', '.join(ENVIRONMENTS)}")
        if "environment" in self.values:
            raise ProfileError(f"profile {self.environment}: environment: the profile's own, not a value in it")
        try:
            PlatformConfig.model_validate({**self.values, "environment": self.environment})
        except ValidationError as error:
            # A profile is partial: keys the stack file must give (its edge) are missing, and that is fine.
            problems = [
                f"{'.'.join(map(str, detail['loc']))}: {_reason(detail)} (got {detail['input']!r})"
                for detail in error.errors(include_url=False)
                if not (detail["type"] == "missing" and len(detail["loc"]) == 1)
            ]
            if problems:
                raise ProfileError(f"profile {self.environment}: " + "; ".join(problems)) from None

    def defaults(self) -> dict[str, Any]:
        """Every top-level key with a default, as a stack of this environment loads it when its file leaves it out.

        Values come out as a stack file would spell them (camelCase keys, JSON values).
        """
        document: dict[str, Any] = {}
        for name, field in PlatformConfig.model_fields.items():
            if field.is_required():
                continue
            key = field.alias or name
            assert field.annotation is not None  # every config field is annotated
            adapter: TypeAdapter[Any] = TypeAdapter(field.annotation)
            value = adapter.dump_python(field.get_default(call_default_factory=True), mode="json", by_alias=True)
            own = self.values.get(key)
            if isinstance(own, dict) and isinstance(value, dict):
                value = deep_merge(value, own)
            elif key in self.values:
                value = own
            document[key] = adapter.dump_python(adapter.validate_python(value), mode="json", by_alias=True)
        return document


def _reason(detail: ErrorDetails) -> str:
    return "unknown key" if detail["type"] == "extra_forbidden" else detail["msg"].removeprefix("Value error, ")


PROD = Profile(
    "prod",
    {
        "availabilityZones": 3,
        "network": {"natStrategy": "one_per_az"},
        "services": {
            "minTasksPerAz": 2,
            "api": {
                "cpu": 1024,
                "memory": 2048,
                "desiredCount": 6,
                "minCount": 6,
                "maxCount": 50,
                "deployment": {"strategy": "blue_green", "bakeMinutes": 10},
                "executeCommand": False,
            },
            "worker": {
                "cpu": 512,
                "memory": 1024,
                "desiredCount": 6,
                "minCount": 6,
                "maxCount": 30,
                "executeCommand": False,
            },
        },
        "database": {
            "instanceClass": "db.r7g.large",
            "readerCount": 2,
            "backupRetentionDays": 7,
            "deletionProtection": True,
            "finalSnapshot": True,
        },
        "cache": {"nodeType": "cache.r7g.large", "replicaCount": 2, "snapshotRetentionDays": 7},
        # A year of logs (flow, WAF, ECS Exec audit, database, cache, API, worker): what an incident or audit
        # looks back over; `log-retention-set` holds prod to it (policy/config/prod.json).
        "observability": {"logRetentionDays": 365},
        "recovery": {"rpoMinutes": 15, "rtoMinutes": 60, "backupRetentionDays": 35},
        "budget": {"monthlyUsd": 5000},
        # Requests at the ALB at peak: an assumption (the seeds' 100K+/s is at the edge, mostly CloudFront hits);
        # `platformctl capacity` checks maxCount against it, so set it from real traffic.
        "capacity": {"peakRequestsPerSecond": 500},
    },
)

STAGING = Profile(
    "staging",
    {
        "availabilityZones": 2,
        "network": {"natStrategy": "single"},
        "services": {
            "minTasksPerAz": 1,
            "api": {
                "cpu": 512,
                "memory": 1024,
                "desiredCount": 2,
                "minCount": 2,
                "maxCount": 6,
                "executeCommand": True,
            },
            "worker": {
                "cpu": 256,
                "memory": 512,
                "desiredCount": 2,
                "minCount": 2,
                "maxCount": 4,
                "useSpot": True,
                "executeCommand": True,
            },
        },
        "database": {
            "serverlessV2": {"minAcu": 0.5, "maxAcu": 4},
            "readerCount": 1,
            "backupRetentionDays": 1,
            "deletionProtection": False,
            "finalSnapshot": False,
        },
        "cache": {"nodeType": "cache.t4g.small", "replicaCount": 1, "snapshotRetentionDays": 1},
        "observability": {"logRetentionDays": 14},
        "recovery": {"rpoMinutes": 60, "rtoMinutes": 480, "backupRetentionDays": 7},
        "budget": {"monthlyUsd": 800},
        "capacity": {"peakRequestsPerSecond": 50},
        # Fault experiments run where an outage they cause costs nothing: staging has them, prod opts in.
        "chaos": {"enabled": True},
    },
)

PROFILES: dict[str, Profile] = {profile.environment: profile for profile in (PROD, STAGING)}


def with_profile(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack file's values laid over its environment's defaults (an unknown environment adds none)."""
    environment = raw.get("environment")
    profile = PROFILES.get(environment) if isinstance(environment, str) else None
    return deep_merge(copy.deepcopy(dict(profile.values)) if profile else {}, raw)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- the editor schema ---------------------------------------------------------------------------


def with_environment_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """PlatformConfig's JSON Schema, telling each environment's real default where the profiles make them differ.

    Such a key loses its single `default` (an editor would offer the wrong one to one environment) and its
    description ends "Default: prod 1024, staging 512.". A model used at two places (the API's and the
    worker's ServiceConfig) is written out at each place whose defaults differ, so each says its own.
    """
    schema = copy.deepcopy(schema)
    definitions = schema.pop("$defs", {})
    _annotate(schema, {environment: profile.defaults() for environment, profile in PROFILES.items()}, definitions)
    kept = _referenced(schema, definitions)
    if kept:
        schema["$defs"] = {name: definitions[name] for name in sorted(kept)}
    return schema


_ABSENT = object()


def _annotate(node: dict[str, Any], by_environment: dict[str, Any], definitions: dict[str, Any]) -> None:
    """Walk an object schema's properties alongside each environment's defaults at the same place."""
    for key, prop in node.get("properties", {}).items():
        values = {
            env: doc.get(key, _ABSENT) if isinstance(doc, dict) else _ABSENT for env, doc in by_environment.items()
        }
        if any(value is _ABSENT for value in values.values()):
            continue
        first, *others = values.values()
        if all(value == first for value in others):
            if prop.get("default", first) == first:
                continue
            prop["default"] = first  # every environment's, though not the model's
        else:
            prop.pop("default", None)
            if not all(isinstance(value, dict) for value in values.values()):
                shown = ", ".join(f"{env} {_shown(value)}" for env, value in values.items())
                prop["description"] = f"{prop.get('description', '')} Default: {shown}.".lstrip()
        for member in [prop, *prop.get("anyOf", [])]:
            _write_out(member, definitions)
            if "properties" in member:
                _annotate(member, values, definitions)


def _write_out(schema: dict[str, Any], definitions: dict[str, Any]) -> None:
    """Replace a reference to a definition by a copy of it, so this place can say its own defaults."""
    if "$ref" in schema:
        own = {key: value for key, value in schema.items() if key != "$ref"}
        definition = copy.deepcopy(definitions[schema["$ref"].rsplit("/", 1)[1]])
        schema.clear()
        schema.update({**definition, **own})


def _referenced(schema: dict[str, Any], definitions: dict[str, Any]) -> set[str]:
    """The definitions a schema still refers to, directly or through other definitions."""
    names: set[str] = set()
    pending = [schema]
    while pending:
        text = json.dumps(pending.pop())
        for name in definitions.keys() - names:
            if f'"#/$defs/{name}"' in text:
                names.add(name)
                pending.append(definitions[name])
    return names


def _shown(value: Any) -> str:
    """A value as the stack file would spell it (YAML flow style: null for none)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
