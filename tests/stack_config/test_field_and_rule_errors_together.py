"""Field errors and cross-field rule problems come out of one run wherever the fields involved parsed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from stack_config.errors import StackConfigError
from stack_config.loader import parse_platform_config
from tests.support import REPO


def prod_raw() -> dict[str, Any]:
    config = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("platform:")}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_platform_config(raw)
    return [str(problem) for problem in caught.value.problems]


def test_the_readme_example_reproduces_line_for_line() -> None:
    raw = copy.deepcopy(prod_raw())
    raw["services"]["api"] = {"memory": 9000}
    raw["network"]["natStrategy"] = "single"
    raw["database"]["engineVersoin"] = "17.4"
    readme = (REPO / "README.md").read_text()
    block = readme.split("Pulumi.prod.yaml: invalid stack config\n", 1)[1].split("```", 1)[0]
    assert [line.strip() for line in block.strip().splitlines()] == problems(raw)


def test_a_rule_in_a_section_with_a_field_error_is_held_back() -> None:
    raw = copy.deepcopy(prod_raw())
    raw["database"]["readerCount"] = 0  # a prod rule on this section...
    raw["database"]["backupRetentionDays"] = "weekly"  # ...which also has a field error
    raw["network"]["natStrategy"] = "single"
    found = problems(raw)
    assert any(line.startswith("platform:database.backupRetentionDays:") for line in found)
    assert any(line.startswith("platform:network.natStrategy: prod needs one_per_az") for line in found)
    assert not any(line.startswith("platform:database.readerCount") for line in found)


def test_a_bad_top_level_value_runs_no_rules() -> None:
    raw = copy.deepcopy(prod_raw())
    raw["availabilityZones"] = "three"
    raw["network"]["natStrategy"] = "single"
    assert problems(raw) == [problem for problem in problems(raw) if "natStrategy" not in problem]
    assert len(problems(raw)) == 1
