"""The OpenAPI document against the server it describes, by schemathesis with every check.

The run is schemathesis's own engine (what `schemathesis run` does) against the API under real gunicorn with
the image's configuration: the coverage phase (each limit's boundaries, either side), fuzzing (valid and invalid
requests per operation) and the stateful phase, which follows the document's links (a created product to its
read, replacement, patch, restock and deletion; a placed order to its read) with sessions signed in through
`POST /api/user/sessions`. The limiter is raised for the run so a 429 never stands in for an answer.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from app import contract
from app.http.factory import create_app
from app.http.openapi import SPEC
from app.settings import Settings
from tests.app.conftest import ADMIN, PG, fresh_database
from tests.app.gunicorn_support import served

EXAMPLES = 25


# Products 1..STOCKED_PRODUCTS, stocked for every order the run places: the generated orders name small ids, and a
# database of the run's own holds them whatever else the session created or deleted (the run deletes some too).
STOCKED_PRODUCTS = 100


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    prefix = f"apptest:{uuid.uuid4().hex[:10]}:"
    with fresh_database() as database:
        with psycopg.connect(**PG, dbname=database, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO products (sku, name, category, price_cents, stock)"
                " SELECT 'SKU-' || g, 'Product ' || g, 'general', 100 + g, 1000000 FROM generate_series(1, %s) AS g",
                (STOCKED_PRODUCTS,),
            )
        with served(database, prefix, **{contract.RATE_LIMIT_PER_MINUTE: "10000000"}) as base:
            yield base
    r = redis.Redis()
    keys = list(r.scan_iter(match=f"{prefix}*"))
    if keys:
        r.delete(*keys)


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "auth": {
                "openapi": {"admin": {"bearer": ADMIN}},
                # Session operations sign in first, so their valid requests reach past the 401.
                "dynamic": {
                    "openapi": {
                        "session": {
                            "path": "/api/user/sessions",
                            "payload": {"email": "schemathesis@example.com"},
                            "extract_selector": "/token",
                        }
                    }
                },
            },
            "generation": {"max-examples": EXAMPLES},
            "seed": 18,  # the same requests on every run, so a finding reproduces
            "phases": {"coverage": {"enabled": True}, "fuzzing": {"enabled": True}, "stateful": {"max-steps": 6}},
            "operations": [
                {
                    # A valid order may name a product the database does not hold, or hold enough of: the 422
                    # naming the item is then the documented answer, not a refused valid request.
                    "include-operation-id": "placeOrder",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "409", "422"]}},
                }
            ],
        }
    )


def test_schemathesis_with_every_check_and_the_links_finds_nothing(api_url: str) -> None:
    schema = schemathesis.openapi.from_url(api_url + contract.OPENAPI_PATH, config=_config())
    failures: list[str] = []
    scenarios: Counter[str] = Counter()
    linked_answers: set[tuple[str, int]] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios[event.phase.name] += 1
            for case_id, node in event.recorder.cases.items():
                interaction = event.recorder.interactions.get(case_id)
                if node.parent_id is not None and interaction is not None and interaction.response is not None:
                    linked_answers.add((node.value.operation.label, interaction.response.status_code))
            for checks in event.recorder.checks.values():
                failures.extend(
                    f"{event.label} [{check.name}]: {check.failure_info.failure.title}: "
                    f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
                    for check in checks
                    if check.status == Status.FAILURE and check.failure_info is not None
                )
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"error: {event}")
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert scenarios["COVERAGE"] and scenarios["FUZZING"] and scenarios["STATEFUL_TESTING"], scenarios
    # The links were followed to answers: an order read through the 202's link, a product through the 201's.
    assert ("GET /api/checkout/orders/{id}", 200) in linked_answers, sorted(linked_answers)
    assert ("GET /api/products/{id}", 200) in linked_answers, sorted(linked_answers)


def _normalized(path: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>|\{[a-z_]+\}", "{}", path)


def test_the_document_describes_every_route_the_app_serves(settings: Settings) -> None:
    app = create_app(settings)
    try:
        served_ops = {
            (method.lower(), _normalized(rule.rule))
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in rule.methods or ()
            if method not in {"HEAD", "OPTIONS"}
        }
    finally:
        app.extensions["services"].close()
    documented = {(method, _normalized(path)) for path, item in SPEC["paths"].items() for method in item}
    assert served_ops == documented


def test_every_operation_behind_the_limiter_documents_429_and_the_order_links_to_its_read() -> None:
    exempt = {contract.HEALTH_LIVE_PATH, contract.HEALTH_READY_PATH}
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            assert ("429" in operation["responses"]) == (path not in exempt), (method, path)
    accepted = SPEC["paths"]["/api/checkout/orders"]["post"]["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderAccepted"}
    assert accepted["links"]["GetOrder"] == {"operationId": "getOrder", "parameters": {"id": "$response.body#/id"}}


def test_the_published_body_schemas_carry_the_servers_limits() -> None:
    schemas: dict[str, Any] = SPEC["components"]["schemas"]
    for name in ("ProductCreate", "ProductReplace", "ProductPatch", "StockUpdate", "OrderCreate", "OrderItem"):
        assert schemas[name]["additionalProperties"] is False, name
    replace = schemas["ProductReplace"]
    assert set(replace["required"]) == set(replace["properties"])  # PUT: every field
    assert schemas["ProductPatch"]["minProperties"] == 1 and "required" not in schemas["ProductPatch"]
    assert replace["properties"]["name"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": "^[^\\x00]*$",
    }
    assert replace["properties"]["price_cents"] == {"type": "integer", "minimum": 0, "maximum": 100_000_000}
    item = schemas["OrderItem"]["properties"]
    assert item["quantity"] == {"type": "integer", "minimum": 1, "maximum": 100}
