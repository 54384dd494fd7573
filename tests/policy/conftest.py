"""One policy pack process for the whole test session, started as the engine starts it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from platformctl.plan import Plan, run_program
from platformctl.policy import PACK_DIR, PolicyPackProcess, PolicyReport, check_plan, load_pack_config
from tests.policy.fixtures import architecture

# The rule modules, importable as the pack imports them (its directory first on the path).
if str(PACK_DIR) not in sys.path:
    sys.path.append(str(PACK_DIR))

_reports: dict[str, PolicyReport] = {}


@pytest.fixture(scope="session")
def pack() -> Iterator[PolicyPackProcess]:
    with PolicyPackProcess(PACK_DIR, project="platform", stack="test") as process:
        yield process


def report_for(pack: PolicyPackProcess, key: str, plan: Plan, config: dict | None = None) -> PolicyReport:
    if key not in _reports:
        _reports[key] = check_plan(plan, pack=pack, pack_config=config or {})
    return _reports[key]


@pytest.fixture(scope="session")
def secure_report(pack: PolicyPackProcess) -> PolicyReport:
    plan = run_program(lambda: architecture(secure=True), project="platform", stack="test")
    return report_for(pack, "secure", plan)


@pytest.fixture(scope="session")
def insecure_report(pack: PolicyPackProcess) -> PolicyReport:
    plan = run_program(lambda: architecture(secure=False), project="platform", stack="test")
    return report_for(pack, "insecure", plan)


def stack_config_file(stack: str) -> dict:
    return load_pack_config(Path(PACK_DIR) / "config" / f"{stack}.json")
