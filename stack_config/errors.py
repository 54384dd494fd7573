"""Config problems, reported as `platform:<path>: <what is wrong> (got <value>)`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi

NAMESPACE = "platform"
SECRET_MASK = "[secret]"  # noqa: S105 (a mask, not a secret)
_MISSING = object()


@dataclass(frozen=True)
class ConfigProblem:
    path: str  # dotted camelCase path below `platform:`, e.g. "network.natStrategy"
    message: str
    value: Any = _MISSING
    secret: bool = False

    def __str__(self) -> str:
        if self.value is _MISSING:
            got = "nothing"
        elif self.secret:
            got = SECRET_MASK
        else:
            got = _show(self.value)
        return f"{NAMESPACE}:{self.path}: {self.message} (got {got})"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class StackConfigError(pulumi.RunError):
    """Invalid stack config. A RunError, so `pulumi up` prints the problems without a traceback."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")
