"""Per-environment defaults: checked against the schema when written, and told truthfully to the editor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from stack_config.json_schema import stack_file_schema
from stack_config.profiles import ENVIRONMENTS, PROFILES, Profile, ProfileError, with_profile
from stack_config.schema import PlatformConfig

REQUIRED = {"edge": {"domain": "shop.example.com", "hostedZone": "example.com"}}


def loaded_defaults(environment: str) -> dict[str, Any]:
    """What a stack of this environment loads for every key its file leaves out, spelt as the file spells it."""
    document = with_profile({"environment": environment, **REQUIRED})
    loaded = PlatformConfig.model_validate(document).model_dump(mode="json", by_alias=True)
    return {key: value for key, value in loaded.items() if key not in {"environment", *REQUIRED}}


def schema_places(
    node: dict[str, Any], values: dict[str, Any], definitions: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every (path, property schema, value per environment) below an object schema, references followed."""

    def resolved(schema: dict[str, Any]) -> dict[str, Any]:
        return definitions[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema

    node = resolved(node)
    for member in map(resolved, [node, *node.get("anyOf", [])]):
        for key, prop in member.get("properties", {}).items():
            below = {env: value[key] for env, value in values.items() if isinstance(value, dict) and key in value}
            if len(below) == len(values):
                yield f"{path}{key}", prop, below
                yield from schema_places(prop, below, definitions, f"{path}{key}.")
        entries = member.get("additionalProperties")
        if isinstance(entries, dict) and all(isinstance(value, dict) for value in values.values()):
            for key in set.intersection(*(set(value) for value in values.values())):
                below = {env: value[key] for env, value in values.items()}
                yield from schema_places(entries, below, definitions, f"{path}{key}.")


def stated_defaults(description: str) -> dict[str, Any]:
    """The "Default: prod X, staging Y." of a description, each value read as YAML (as a stack file would be)."""
    match = re.search(r"Default: (.*)\.$", description)
    assert match, f"no per-environment default in {description!r}"
    envs = "|".join(ENVIRONMENTS)
    parts = re.findall(rf"({envs}) (.*?)(?=, (?:{envs}) |$)", match.group(1))
    return {env: yaml.safe_load(text) for env, text in parts}


def test_the_editor_schema_states_only_defaults_both_environments_load_and_names_each_where_they_differ() -> None:
    schema = stack_file_schema()
    definitions = schema["$defs"]
    defaults = {env: loaded_defaults(env) for env in ENVIRONMENTS}
    differing = {}
    for key, prop in schema["properties"]["config"]["properties"].items():
        name = key.split(":", 1)[1]
        if name not in defaults[ENVIRONMENTS[0]]:
            continue
        for path, place, values in schema_places(
            {"properties": {name: prop["anyOf"][0]}},
            {env: {name: d[name]} for env, d in defaults.items()},
            definitions,
        ):
            distinct = list(values.values())
            if all(value == distinct[0] for value in distinct):
                assert place.get("default", distinct[0]) == distinct[0], f"{path}: the schema's default is wrong"
                continue
            assert "default" not in place, f"{path}: one default for environments that differ: {values}"
            if not all(isinstance(value, dict) for value in distinct):
                assert stated_defaults(place.get("description", "")) == values, path
                differing[path] = values
    # The example: the API's CPU said 512 while prod gets 1024.
    assert differing["services.api.cpu"] == {"prod": 1024, "staging": 512}
    assert differing["services.worker.cpu"] == {"prod": 512, "staging": 256}
    assert len(differing) >= 30  # every key a profile sets differently from the other


def test_a_misspelt_key_or_a_refused_value_in_a_profile_fails_when_the_profile_is_made() -> None:
    with pytest.raises(ProfileError, match=r"profile prod: services\.api\.cpuu: unknown key \(got 1024\)"):
        Profile("prod", {"services": {"api": {"cpuu": 1024}}})
    with pytest.raises(ProfileError, match=r"staging: services\.api\.cpu: must be one of 256, 512, .* \(got 500\)"):
        Profile("staging", {"services": {"api": {"cpu": 500}}})
    with pytest.raises(ProfileError, match=r"database\.readerCount: .*less than or equal to 15"):
        Profile("staging", {"database": {"readerCount": 16}})
    with pytest.raises(ProfileError, match="environment must be one of staging, prod"):
        Profile("qa", {})
    # What a stack file must give (its edge) may be missing from a profile; a section it gives may not be partial.
    with pytest.raises(ProfileError, match=r"network\.public\.prefixLength: Field required"):
        Profile("prod", {"network": {"public": {}}})


def test_every_environment_the_schema_allows_has_its_profile() -> None:
    assert sorted(PROFILES) == sorted(ENVIRONMENTS)
    assert all(profile.environment == environment for environment, profile in PROFILES.items())


def test_a_stack_files_own_values_win_over_its_profile_and_leave_the_profile_unchanged() -> None:
    before = yaml.safe_dump(dict(PROFILES["prod"].values))
    document = with_profile({"environment": "prod", "services": {"api": {"cpu": 2048}}})
    document["services"]["worker"]["cpu"] = 4096  # a caller changing its document must not reach the profile
    assert document["services"]["api"]["cpu"] == 2048
    assert document["services"]["api"]["memory"] == 2048  # the rest of the profile's api section stays
    assert yaml.safe_dump(dict(PROFILES["prod"].values)) == before
