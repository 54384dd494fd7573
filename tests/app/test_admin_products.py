"""Admin product writes: PUT replaces with a complete body only; PATCH changes the fields it names."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.app.conftest import ADMIN

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _complete(**changes: Any) -> dict[str, Any]:
    body = {
        "sku": f"SKU-{uuid.uuid4().hex[:10]}",
        "name": "Lamp",
        "description": "A lamp",
        "category": "home",
        "price_cents": 2500,
        "currency": "EUR",
        "stock": 7,
    }
    return {**body, **changes}


def test_put_with_missing_fields_is_422_naming_each_and_changes_nothing(client: Any, add_product: Any) -> None:
    pid = add_product(price=500, stock=9, category="tools")
    before = client.get(f"/api/products/{pid}").json
    resp = client.put(
        f"/api/admin/products/{pid}", json={"sku": "X-1", "name": "Renamed", "price_cents": 1}, headers=AUTH
    )
    assert resp.status_code == 422
    assert {e["field"] for e in resp.json["errors"]} == {"description", "category", "currency", "stock"}
    assert all(e["message"] == "Field required" for e in resp.json["errors"])
    after = client.get(f"/api/products/{pid}").json
    assert (after["stock"], after["category"], after["price_cents"]) == (before["stock"], "tools", 500)


def test_put_with_a_complete_body_replaces_every_field(client: Any, add_product: Any) -> None:
    pid = add_product()
    body = _complete()
    resp = client.put(f"/api/admin/products/{pid}", json=body, headers=AUTH)
    assert resp.status_code == 200
    assert {k: resp.json[k] for k in body} == body
    assert {k: client.get(f"/api/products/{pid}").json[k] for k in body} == body


def test_patch_changes_only_the_fields_it_names(client: Any, add_product: Any) -> None:
    pid = add_product(price=500, stock=9, category="tools", name="Hammer")
    before = client.get(f"/api/products/{pid}").json
    resp = client.patch(f"/api/admin/products/{pid}", json={"price_cents": 650, "description": "steel"}, headers=AUTH)
    assert resp.status_code == 200
    after = client.get(f"/api/products/{pid}").json
    assert after["price_cents"] == 650 and after["description"] == "steel"
    unchanged = ("sku", "name", "category", "currency", "stock")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"name": None}, "name"),
        ({"stock": -1}, "stock"),
        ({"colour": "red"}, "colour"),
        ({"currency": "usd"}, "currency"),
    ],
)
def test_patch_refuses_an_empty_body_nulls_and_what_put_refuses(
    client: Any, add_product: Any, body: dict[str, Any], field: str
) -> None:
    pid = add_product(stock=9)
    resp = client.patch(f"/api/admin/products/{pid}", json=body, headers=AUTH)
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == field
    assert client.get(f"/api/products/{pid}").json["stock"] == 9


def test_patch_to_a_taken_sku_is_409_and_to_no_product_is_404(client: Any, add_product: Any) -> None:
    first, second = add_product(), add_product()
    taken = client.get(f"/api/products/{first}").json["sku"]
    conflict = client.patch(f"/api/admin/products/{second}", json={"sku": taken}, headers=AUTH)
    assert conflict.status_code == 409 and conflict.json["errors"][0]["field"] == "sku"
    missing = client.patch("/api/admin/products/999999999", json={"stock": 1}, headers=AUTH)
    assert missing.status_code == 404


def test_patch_needs_the_admin_token(client: Any, add_product: Any) -> None:
    pid = add_product()
    assert client.patch(f"/api/admin/products/{pid}", json={"stock": 1}).status_code == 401
