"""A stack's pack config (`policy/config/STACK.json`): read, checked against the rules, resolved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platformctl.policy.model import LEVEL_CODES, PolicyError, RuleInfo

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}
# A rule's enforcement level and knobs, as the pack's Configure takes them.
Resolved = dict[str, tuple[str, dict[str, Any]]]


def load_pack_config(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
    except ValueError as error:
        raise PolicyError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{path}: must be a JSON object of rule names")
    return document


def resolve_config(rules: list[RuleInfo], pack_config: Mapping[str, Any]) -> Resolved:
    """Each rule's (enforcement level, knobs), as the engine resolves `--policy-pack-config`.

    The file maps `all` or a rule name to an enforcement level, or to an object with an optional
    `enforcementLevel` and the rule's knobs; knobs not given take the schema's defaults.
    """
    names = {rule.name for rule in rules}
    problems = [f"{key}: no such rule in the pack" for key in pack_config if key != "all" and key not in names]
    default_level = _level_of(pack_config.get("all"))
    resolved: Resolved = {}
    for rule in rules:
        entry = pack_config.get(rule.name)
        level = _level_of(entry) or default_level or rule.enforcement_level
        knobs = (
            {key: value for key, value in entry.items() if key != "enforcementLevel"} if isinstance(entry, dict) else {}
        )
        for key, value in knobs.items():
            schema = rule.config_schema.get(key)
            if schema is None:
                problems.append(
                    f"{rule.name}.{key}: no such setting (settings: {', '.join(rule.config_schema) or 'none'})"
                )
            elif not _fits(value, schema):
                problems.append(f"{rule.name}.{key}: expected {schema.get('type')} (got {json.dumps(value)})")
        if level not in LEVEL_CODES:
            problems.append(f"{rule.name}: unknown enforcement level {level!r}")
        resolved[rule.name] = (level, {**rule.defaults(), **knobs})
    if problems:
        raise PolicyError("invalid policy pack config:\n  " + "\n  ".join(problems))
    return resolved


def levels_by_stack(rules: list[RuleInfo], config_dir: Path) -> dict[str, dict[str, str]]:
    """Each stack's enforcement level of each rule, from the pack's `config/STACK.json` files."""
    return {
        path.stem: {name: level for name, (level, _) in resolve_config(rules, load_pack_config(path)).items()}
        for path in sorted(config_dir.glob("*.json"))
    }


def _level_of(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("enforcementLevel"), str):
        return str(entry["enforcementLevel"])
    return None


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    kinds = JSON_TYPES.get(str(schema.get("type")))
    if kinds is None:
        return True
    if isinstance(value, bool) and bool not in kinds:
        return False
    if not isinstance(value, kinds):
        return False
    minimum = schema.get("minimum")
    return not (minimum is not None and isinstance(value, int | float) and value < minimum)
