"""Loading `platform:` config into a validated `PlatformConfig`, or every problem with its path."""

from __future__ import annotations

import copy
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, SecretStr
from pydantic_core import ErrorDetails

from stack_config import rules
from stack_config.errors import NAMESPACE, ConfigProblem, StackConfigError
from stack_config.profiles import with_profile
from stack_config.schema import PlatformConfig


def load_stack_config() -> PlatformConfig:
    """The running Pulumi program's `platform:` config, validated before any resource exists."""
    # The language host hands the program its whole config map; Pulumi's Config class only reads
    # keys it is asked for, and unknown keys must be reported too.
    entries = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    raw = {key[len(prefix) :]: value for key, value in entries.items() if key.startswith(prefix)}
    secret_keys = {key[len(prefix) :] for key in raw if runtime_config.is_config_secret(prefix + key)}
    return parse_platform_config({key: _decode(value) for key, value in raw.items()}, secret_keys)


def _decode(value: Any) -> Any:
    """Pulumi passes structured config as JSON text and scalars as their text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_platform_config(raw: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> PlatformConfig:
    """Validate the `platform:` keys (their decoded values); raises StackConfigError listing every problem."""
    secret_keys = set(secret_keys)
    document = with_profile(dict(raw))
    try:
        cfg = PlatformConfig.model_validate(document)
    except pydantic.ValidationError as error:
        problems = [_problem(detail, secret_keys) for detail in error.errors(include_url=False)]
        problems += [_mask(problem, secret_keys) for problem in _rules_over_what_parsed(document, error)]
        raise StackConfigError(problems) from None
    problems = rules.check(cfg)
    if problems:
        raise StackConfigError([_mask(problem, secret_keys) for problem in problems])
    return cfg


# Dropping a bad field can surface another (a required one now missing); a few rounds settle it.
_REPAIR_ROUNDS = 5


def _rules_over_what_parsed(document: dict[str, Any], error: pydantic.ValidationError) -> list[ConfigProblem]:
    """The cross-field rules' problems in sections that parsed, so one run reports both kinds.

    Each field in error is dropped so its default stands in; a rule problem is kept only in a
    section (top-level key) with no field error, as a default there could raise or hide one.
    A bad top-level scalar (environment, region, AZs) feeds rules everywhere: then none run.
    """
    repaired = copy.deepcopy(document)
    bad: list[tuple[int | str, ...]] = []
    for _ in range(_REPAIR_ROUNDS):
        locs = [_field_loc(detail["loc"]) for detail in error.errors(include_url=False)]
        if not all(locs) or any(len(loc) == 1 and loc in bad for loc in locs):
            return []  # a whole-document error, or a required top-level key still missing
        bad += locs
        for loc in locs:
            _drop(repaired, loc)
        try:
            cfg = PlatformConfig.model_validate(repaired)
        except pydantic.ValidationError as again:
            error = again
            continue
        if any(len(loc) == 1 for loc in bad):
            return []
        bad_sections = {str(loc[0]) for loc in bad}
        return [problem for problem in rules.check(cfg) if _section(problem.path) not in bad_sections]
    return []


def _section(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _drop(document: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    """Remove the value at `loc`; inside a list, the whole list (its default stands in, indices stay sound)."""
    holder: Any = document
    target: tuple[dict[str, Any], str] | None = None
    for part in loc:
        if isinstance(holder, dict) and isinstance(part, str) and part in holder:
            target = (holder, part)
            holder = holder[part]
            if isinstance(holder, list):
                break
        elif isinstance(holder, list) and isinstance(part, int) and part < len(holder):
            holder = holder[part]
        else:
            break
    if target is not None:
        target[0].pop(target[1], None)


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _is_secret_path(loc: tuple[int | str, ...], secret_keys: set[str]) -> bool:
    return (bool(loc) and loc[0] in secret_keys) or _annotation_at(loc) is SecretStr


def _mask(problem: ConfigProblem, secret_keys: set[str]) -> ConfigProblem:
    top = problem.path.split(".")[0].split("[")[0]
    if top in secret_keys:
        return ConfigProblem(problem.path, problem.message, problem.value, secret=True)
    return problem


def _problem(detail: ErrorDetails, secret_keys: set[str]) -> ConfigProblem:
    loc = _field_loc(detail["loc"])
    secret = _is_secret_path(loc, secret_keys)
    if detail["type"] == "extra_forbidden":
        return ConfigProblem(_path(loc), _unknown_key_message(loc), detail["input"], secret)
    if detail["type"] == "missing":
        return ConfigProblem(_path(loc), "is required")
    message = detail["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if message[1:2].islower():  # "Input should..." reads on after the path; "VPC ..." keeps its case
        message = message[:1].lower() + message[1:]
    return ConfigProblem(_path(loc), message, detail["input"], secret)


def _field_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's own markers (union branches such as `int`, validator wrappers) from a location."""
    # A marker never comes first: the first part is always the stack file's own key.
    return loc[:1] + tuple(part for part in loc[1:] if not (isinstance(part, str) and _is_pydantic_marker(part)))


def _is_pydantic_marker(part: str) -> bool:
    return part in {"int", "str", "float", "bool", "list[str]"} or part.startswith(
        ("function-after[", "function-before[", "function-wrap[", "function-plain[")
    )


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "unknown key"
    model = _annotation_at(loc[:-1])
    known = sorted(_aliases(model)) if isinstance(model, type) and issubclass(model, BaseModel) else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return f"unknown key; known keys here: {', '.join(known)}"


def _aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _annotation_at(loc: tuple[int | str, ...]) -> Any:
    """The type a location in the stack config holds, walking models, lists, dicts and optionals."""
    current: Any = PlatformConfig
    for part in loc:
        current = _strip_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            by_alias = {field.alias or name: field for name, field in current.model_fields.items()}
            if part not in by_alias:
                return None
            current = by_alias[part].annotation
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    return _strip_optional(current)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _strip_optional(members[0])
    return annotation
