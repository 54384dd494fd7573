"""What changes between two offline plans: resources created, deleted, replaced or updated, property by property.

Resources are matched by URN; a head resource whose alias URNs (its own `aliases`, or its parent's,
as the engine applies them to children) name a base resource is the same resource moved. Whether a
changed input forces a replacement is provider knowledge the Python SDK does not ship (pulumi-aws's
package carries no schema), so `platformctl/replace_on_change.json` lists, per resource type this
program uses, the inputs the Terraform AWS provider marks `ForceNew` (pulumi-aws bridges that
provider and replaces on them); the program's own `replace_on_changes` resource option counts too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from stack_config.errors import SECRET_MASK

REPLACE_TABLE = Path(__file__).with_name("replace_on_change.json")
ALL_PROPERTIES = "*"


class DiffUsageError(Exception):
    """A plan file that is missing, unreadable, or not a plan."""


@dataclass(frozen=True)
class PropertyChange:
    path: str
    before: Any
    after: Any
    forces_replacement: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "forcesReplacement": self.forces_replacement,
        }


@dataclass(frozen=True)
class ResourceChange:
    action: str  # create, delete, replace, update
    urn: str
    type: str
    previous_urn: str | None = None  # set when an alias matched the resource under another URN
    properties: tuple[PropertyChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "urn": self.urn,
            "type": self.type,
            "previousUrn": self.previous_urn,
            "properties": [change.to_json() for change in self.properties],
        }


ACTIONS = ("create", "update", "replace", "delete")


@dataclass
class PlanDiff:
    base_stack: str
    head_stack: str
    changes: list[ResourceChange] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def destructive(self) -> bool:
        """Something would be deleted or replaced: a reviewer must look before merging."""
        return any(change.action in {"delete", "replace"} for change in self.changes)

    def summary(self) -> str:
        counts = " ".join(f"{action}={self.count(action)}" for action in ACTIONS)
        return f"diff: {self.base_stack} -> {self.head_stack} {counts}"

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_stack,
            "head": self.head_stack,
            "counts": {action: self.count(action) for action in ACTIONS},
            "destructive": self.destructive,
            "changes": [change.to_json() for change in self.changes],
        }


def load_plan_file(path: Path) -> dict[str, Any]:
    """A plan written by `platformctl plan --json`; DiffUsageError names the file and what is wrong."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise DiffUsageError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise DiffUsageError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise DiffUsageError(f"{path} is not a plan (`platformctl plan STACK --json FILE` writes one)")
    return document


@cache
def replace_table() -> dict[str, frozenset[str]]:
    document = json.loads(REPLACE_TABLE.read_text())
    return {type_token: frozenset(names) for type_token, names in document["types"].items()}


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any]) -> PlanDiff:
    base_resources = {resource["urn"]: resource for resource in _custom(base)}
    head_resources = {resource["urn"]: resource for resource in _custom(head)}
    aliases = _alias_urns(head)
    result = PlanDiff(base_stack=str(base.get("stack", "?")), head_stack=str(head.get("stack", "?")))
    matched: set[str] = set()
    for urn, resource in head_resources.items():
        previous = urn if urn in base_resources else _first_in(aliases.get(urn, ()), base_resources, matched)
        if previous is None:
            result.changes.append(ResourceChange("create", urn, resource["type"]))
            continue
        matched.add(previous)
        change = _compare(base_resources[previous], resource, previous if previous != urn else None)
        if change is not None:
            result.changes.append(change)
    result.changes.extend(
        ResourceChange("delete", urn, resource["type"])
        for urn, resource in base_resources.items()
        if urn not in matched
    )
    result.changes.sort(key=lambda change: (ACTIONS.index(change.action), change.urn))
    return result


def _custom(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    # Components own no cloud state: what a reviewer weighs is the custom resources beneath them.
    return [resource for resource in plan.get("resources", []) if resource.get("custom")]


def _first_in(candidates: Any, base: Mapping[str, Any], taken: set[str]) -> str | None:
    return next((urn for urn in candidates if urn in base and urn not in taken), None)


def _alias_urns(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each resource's previous URNs: its own aliases, and its URN under each previous URN of its parent."""
    resources = {resource["urn"]: resource for resource in plan.get("resources", [])}
    found: dict[str, list[str]] = {}

    def previous(urn: str) -> list[str]:
        if urn not in found:
            resource = resources[urn]
            own = list(resource.get("aliases") or [])
            parent = resource.get("parent")
            inherited = (
                [_child_urn(parent_alias, urn) for parent_alias in previous(parent)] if parent in resources else []
            )
            found[urn] = own + [alias for alias in inherited if alias not in own]
        return found[urn]

    for urn in resources:  # parents come first in a plan, so recursion stays shallow
        previous(urn)
    return found


def _child_urn(parent_urn: str, child_urn: str) -> str:
    """The child's URN had its parent carried `parent_urn`: the parent's own type qualifies the child's."""
    prefix, parent_qualified_type, _ = parent_urn.rsplit("::", 2)
    parent_type = parent_qualified_type.rsplit("$", 1)[-1]
    _, child_qualified_type, child_name = child_urn.rsplit("::", 2)
    child_type = child_qualified_type.rsplit("$", 1)[-1]
    return f"{prefix}::{parent_type}${child_type}::{child_name}"


def _compare(before: Mapping[str, Any], after: Mapping[str, Any], previous_urn: str | None) -> ResourceChange | None:
    replace_on = replace_table().get(after["type"], frozenset()) | set(after.get("replaceOnChanges") or [])
    changes = tuple(
        PropertyChange(path, old, new, forces_replacement=_forces(path, replace_on))
        for path, old, new in _changed(before.get("inputs") or {}, after.get("inputs") or {}, "")
    )
    if not changes and previous_urn is None:
        return None
    action = "replace" if any(change.forces_replacement for change in changes) else "update"
    return ResourceChange(action, after["urn"], after["type"], previous_urn, changes)


def _forces(path: str, replace_on: frozenset[str] | set[str]) -> bool:
    if ALL_PROPERTIES in replace_on:
        return True
    top = path.split(".", 1)[0].split("[", 1)[0]
    return top in replace_on or path in replace_on


def _changed(before: Any, after: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Leaf-level differences as (path, before, after); a secret on either side shows as the mask on both."""
    if before == after:
        return
    if SECRET_MASK in (before, after):
        yield path, _masked(before), _masked(after)
        return
    before, after = _parsed_document(before), _parsed_document(after)
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else str(key)
            yield from _changed(before.get(key, _ABSENT), after.get(key, _ABSENT), sub)
        return
    if isinstance(before, list) and isinstance(after, list):
        by_name_before, by_name_after = _by_name(before), _by_name(after)
        if by_name_before is not None and by_name_after is not None:
            # Named entries (WAF rules, containers) compare by name: one inserted rule is one change, not a cascade.
            for name in sorted(set(by_name_before) | set(by_name_after)):
                sub = f"{path}[name={name}]"
                yield from _changed(by_name_before.get(name, _ABSENT), by_name_after.get(name, _ABSENT), sub)
            return
        for index in range(max(len(before), len(after))):
            yield from _changed(
                before[index] if index < len(before) else _ABSENT,
                after[index] if index < len(after) else _ABSENT,
                f"{path}[{index}]",
            )
        return
    yield path, _shown(before), _shown(after)


def _by_name(items: list[Any]) -> dict[str, Any] | None:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    named = [name for name in names if isinstance(name, str)]
    if not items or len(named) != len(items) or len(set(named)) != len(named):
        return None
    return dict(zip(named, items, strict=True))


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _masked(value: Any) -> Any:
    return None if value is _ABSENT else SECRET_MASK


def _shown(value: Any) -> Any:
    # A subtree added or removed is shown whole: any secret inside it is already the mask in the plan.
    return None if value is _ABSENT else value


def _parsed_document(value: Any) -> Any:
    """Policies and container definitions travel as JSON text: compare what they say, not their spacing."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def format_value(value: Any, width: int = 80) -> str:
    text = "(absent)" if value is None else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


MARKS = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


def render_text(diff: PlanDiff) -> list[str]:
    """One line per changed resource, then one per changed property, then the summary."""
    lines: list[str] = []
    for change in diff.changes:
        moved = f" (was {change.previous_urn})" if change.previous_urn else ""
        lines.append(f"{MARKS[change.action]:>2} {change.action:<7} {change.type} {change.urn}{moved}")
        for prop in change.properties:
            forced = "  [forces replacement]" if prop.forces_replacement else ""
            lines.append(f"       {prop.path}: {format_value(prop.before)} -> {format_value(prop.after)}{forced}")
    lines.append(diff.summary())
    return lines


def render_markdown(diff: PlanDiff) -> str:
    """The diff as the pull-request comment shows it: counts, then a table per changed resource."""
    counts = ", ".join(f"{diff.count(action)} to {action}" for action in ACTIONS)
    lines = [f"**Changes against the base branch:** {counts}."]
    if diff.destructive:
        lines.append("")
        lines.append(":warning: Something would be **deleted or replaced**: check the rows marked below.")
    for change in diff.changes:
        name = change.urn.rsplit("::", 1)[-1]
        lines += ["", f"- `{MARKS[change.action]}` **{change.action}** `{change.type}` `{name}`"]
        if change.previous_urn:
            lines[-1] += f" (moved from `{change.previous_urn}`)"
        for prop in change.properties:
            forced = " (forces replacement)" if prop.forces_replacement else ""
            before, after = _code(format_value(prop.before)), _code(format_value(prop.after))
            lines.append(f"  - `{prop.path}`: {before} → {after}{forced}")
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"
