"""The JSON Schema of a whole stack file, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

from typing import Any

from stack_config.errors import NAMESPACE
from stack_config.profiles import with_environment_defaults
from stack_config.schema import PlatformConfig

SECURE_VALUE: dict[str, Any] = {
    "type": "object",
    "description": "An encrypted value, written by `pulumi config set --secret`.",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}


def _allow_secure(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"$ref": "#/$defs/SecureValue"}]}


def stack_file_schema() -> dict[str, Any]:
    """`Pulumi.<stack>.yaml`: `platform:` keys typed by PlatformConfig, any other namespace open."""
    config_schema = with_environment_defaults(PlatformConfig.model_json_schema(by_alias=True, mode="validation"))
    definitions = config_schema.pop("$defs", {})
    definitions["SecureValue"] = SECURE_VALUE
    properties = {f"{NAMESPACE}:{key}": _allow_secure(value) for key, value in config_schema["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pulumi stack file of the platform project",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{NAMESPACE}:{key}" for key in config_schema.get("required", [])],
                # Other namespaces (aws:, pulumi:) are open; an unknown `platform:` key is flagged.
                "propertyNames": {"anyOf": [{"not": {"pattern": f"^{NAMESPACE}:"}}, {"enum": sorted(properties)}]},
                "additionalProperties": True,
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
        "$defs": definitions,
    }
