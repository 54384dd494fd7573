"""The edge and the app hold the same numbers: the body size limit and the product cache policy.

Each test reads the infrastructure side from the plan of the edge layer, the app side from the real Flask app,
and compares both with the one declaration in app/contract.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from app import contract
from app.catalog import ProductQuery
from app.http.openapi import SPEC
from platformctl.plan import Plan
from tests.app.conftest import ADMIN
from tests.support import layer


@pytest.fixture
def edge_plan(prod_plan: Plan) -> Plan:
    return layer(prod_plan, "edge")


def _waf_rules(plan: Plan) -> dict[str, Any]:
    (acl,) = plan.of_type("aws:wafv2/webAcl:WebAcl")
    return {rule["name"]: rule for rule in acl.inputs["rules"]}


def _products_cache_policy(plan: Plan) -> dict[str, Any]:
    (cloudfront,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    (policy_id,) = {
        b["cachePolicyId"]
        for b in cloudfront.inputs["orderedCacheBehaviors"]
        if b["pathPattern"].startswith("/api/products")
    }
    (policy,) = [p for p in plan.of_type("aws:cloudfront/cachePolicy:CachePolicy") if p.id == policy_id]
    return policy.inputs


def test_waf_and_app_refuse_bodies_over_the_same_contract_limit(edge_plan: Plan, make_app: Any) -> None:
    size_rule = _waf_rules(edge_plan)["body-size-limit"]["statement"]["sizeConstraintStatement"]
    assert (size_rule["comparisonOperator"], size_rule["size"]) == ("GT", contract.MAX_REQUEST_BYTES)
    assert make_app().config["MAX_CONTENT_LENGTH"] == contract.MAX_REQUEST_BYTES


def test_a_body_at_the_limit_passes_and_one_byte_more_is_a_413_problem(client: Any) -> None:
    body = json.dumps({"email": "limit@example.com"})
    at_limit = body + " " * (contract.MAX_REQUEST_BYTES - len(body))  # JSON allows trailing whitespace
    assert client.post("/api/user/sessions", data=at_limit, content_type="application/json").status_code == 201
    over = client.post("/api/user/sessions", data=at_limit + " ", content_type="application/json")
    assert over.status_code == 413 and over.mimetype == "application/problem+json"
    assert over.json["detail"] == f"'body': larger than {contract.MAX_REQUEST_BYTES} bytes"


def test_the_largest_valid_product_fits_in_the_limit(client: Any) -> None:
    four_byte_char = "\U0001f600"  # the widest a character gets in UTF-8
    product = {
        "sku": f"S{time.time_ns()}".ljust(64, "x"),
        "name": four_byte_char * 200,
        "description": four_byte_char * 2000,
        "category": "c" * 40,
        "price_cents": 100_000_000,
        "currency": "USD",
        "stock": 1_000_000_000,
    }
    body = json.dumps(product, ensure_ascii=False).encode()
    assert len(body) <= contract.MAX_REQUEST_BYTES
    headers = {"Authorization": f"Bearer {ADMIN}"}
    assert (
        client.post("/api/admin/products", data=body, content_type="application/json", headers=headers).status_code
        == 201
    )


@pytest.mark.parametrize("path", ["/api/products", "/api/products/{id}"])
def test_product_reads_carry_the_ttl_the_edge_caches_them_for(
    edge_plan: Plan, client: Any, add_product: Any, path: str
) -> None:
    policy = _products_cache_policy(edge_plan)
    resp = client.get(path.format(id=add_product()))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == f"public, max-age={contract.PRODUCT_CACHE_TTL_SECONDS}"
    assert policy["maxTtl"] == policy["defaultTtl"] == contract.PRODUCT_CACHE_TTL_SECONDS


def test_the_edge_keys_on_exactly_the_list_parameters_the_app_and_its_openapi_take(edge_plan: Plan) -> None:
    whitelisted = _products_cache_policy(edge_plan)["parametersInCacheKeyAndForwardedToOrigin"]["queryStringsConfig"]
    documented = [p["name"] for p in SPEC["paths"]["/api/products"]["get"]["parameters"] if p["in"] == "query"]
    assert (
        whitelisted["queryStrings"]["items"]
        == documented
        == list(ProductQuery.model_fields)
        == list(contract.PRODUCT_LIST_QUERY_PARAMETERS)
    )
