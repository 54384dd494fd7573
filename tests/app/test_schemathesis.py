"""Property-based requests generated from /openapi.json (bounded examples): no 5xx, ever."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from app.http.factory import create_app
from app.settings import Settings
from tests.app.conftest import ADMIN


@pytest.fixture(scope="module")
def api_schema(database: str, moto: Any) -> Iterator[Any]:
    prefix = f"apptest:{uuid.uuid4().hex[:10]}:"
    app = create_app(
        Settings(
            db_name=database,
            redis_key_prefix=prefix,
            admin_token=ADMIN,
            rate_limit_per_minute=100_000,
            aws_endpoint_url=moto.url,
            log_level="ERROR",
        )
    )
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    yield schema
    app.extensions["services"].close()
    r = redis.Redis()
    keys = list(r.scan_iter(match=f"{prefix}*"))
    if keys:
        r.delete(*keys)


def test_generated_requests_never_get_a_server_error(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            def check(case: Any) -> None:
                if case.operation.path.startswith("/api/admin"):
                    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {ADMIN}"}
                response = case.call()
                case.validate_response(response, checks=[not_a_server_error])

            try:
                check()
            except Unsatisfiable:
                # An operation with nothing to send (no parameters, no body) has no invalid form.
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
