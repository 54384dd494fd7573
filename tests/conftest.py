from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from platformctl.plan import Plan  # noqa: E402
from tests.support import config_for, plan_with  # noqa: E402

_plans: dict[str, Plan] = {}


def _default_plan(environment: str) -> Plan:
    # Planning the program takes a few seconds; the default plans are shared by every test.
    if environment not in _plans:
        _plans[environment] = plan_with(config_for(environment), stack=environment)
    return _plans[environment]


@pytest.fixture
def prod_plan() -> Plan:
    return _default_plan("prod")


@pytest.fixture
def staging_plan() -> Plan:
    return _default_plan("staging")
