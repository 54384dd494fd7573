from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from app import contract
from tests.app.conftest import ADMIN

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def test_product_read_is_a_miss_then_a_hit_with_a_five_minute_ttl(client: Any, add_product: Any, prefix: str) -> None:
    pid = add_product(price=1234)
    first = client.get(f"/api/products/{pid}")
    second = client.get(f"/api/products/{pid}")
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    assert second.status_code == 200 and second.headers["X-Cache"] == "hit"
    assert second.json["price_cents"] == 1234
    ttl = redis.Redis().ttl(f"{prefix}product:{pid}")
    assert 295 <= ttl <= 300


def test_a_near_copy_lives_no_longer_than_the_redis_entry_it_came_from(
    make_app: Any, add_product: Any, prefix: str
) -> None:
    app = make_app()
    client, near = app.test_client(), app.extensions["services"].catalog.near
    pid = add_product()
    client.get(f"/api/products/{pid}")
    _wait_until(lambda: near.live)
    redis.Redis().pexpire(f"{prefix}product:{pid}", 200)
    near.clear()
    assert client.get(f"/api/products/{pid}").headers["X-Cache-Tier"] == "redis"
    assert client.get(f"/api/products/{pid}").headers["X-Cache-Tier"] == "memory"
    time.sleep(0.25)
    assert client.get(f"/api/products/{pid}").headers["X-Cache"] == "miss"


def _wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_admin_update_invalidates_the_cached_product(client: Any, add_product: Any) -> None:
    pid = add_product(price=500)
    client.get(f"/api/products/{pid}")
    body = {"sku": f"NEW-{pid}", "name": "Renamed", "price_cents": 777}
    resp = client.patch(f"/api/admin/products/{pid}", json=body, headers=AUTH)
    assert resp.status_code == 200
    after = client.get(f"/api/products/{pid}")
    assert after.headers["X-Cache"] == "miss"
    assert after.json["name"] == "Renamed" and after.json["price_cents"] == 777


def test_stock_change_is_written_through_to_the_cache(client: Any, add_product: Any) -> None:
    pid = add_product(stock=5)
    client.get(f"/api/products/{pid}")
    assert client.put(f"/api/admin/products/{pid}/stock", json={"stock": 42}, headers=AUTH).status_code == 200
    after = client.get(f"/api/products/{pid}")
    assert after.headers["X-Cache"] == "hit" and after.json["stock"] == 42


def test_deleted_product_is_gone_from_cache_and_database(client: Any, add_product: Any) -> None:
    pid = add_product()
    client.get(f"/api/products/{pid}")
    assert client.delete(f"/api/admin/products/{pid}", headers=AUTH).status_code == 204
    gone = client.get(f"/api/products/{pid}")
    assert gone.status_code == 404 and gone.mimetype == "application/problem+json"


def test_admin_writes_need_the_admin_token(client: Any, add_product: Any) -> None:
    pid = add_product()
    assert client.delete(f"/api/admin/products/{pid}").status_code == 401
    assert client.delete(f"/api/admin/products/{pid}", headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_admin_creates_a_product_and_a_duplicate_sku_is_a_conflict(client: Any) -> None:
    body = {"sku": f"C-{time.time_ns()}", "name": "New", "price_cents": 10, "stock": 3}
    created = client.post("/api/admin/products", json=body, headers=AUTH)
    assert created.status_code == 201
    assert client.get(f"/api/products/{created.json['id']}").json["sku"] == body["sku"]
    dup = client.post("/api/admin/products", json=body, headers=AUTH)
    assert dup.status_code == 409 and dup.json["errors"][0]["field"] == "sku"


def test_invalid_product_body_names_the_field(client: Any) -> None:
    resp = client.post("/api/admin/products", json={"sku": "ok", "name": "x", "price_cents": -1}, headers=AUTH)
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert [e["field"] for e in resp.json["errors"]] == ["price_cents"]


def test_listing_filters_by_category_and_paginates_and_is_cached(client: Any, add_product: Any) -> None:
    category = f"cat-{time.time_ns()}"
    ids = [add_product(category=category, price=100 * i) for i in range(1, 6)]
    page1 = client.get(f"/api/products?category={category}&per_page=2&page=1")
    page3 = client.get(f"/api/products?category={category}&per_page=2&page=3")
    assert [p["id"] for p in page1.json["items"]] == ids[:2]
    assert [p["id"] for p in page3.json["items"]] == ids[4:]
    assert page1.json["total"] == 5
    assert client.get(f"/api/products?category={category}&per_page=2&page=1").headers["X-Cache"] == "hit"
    cheap = client.get(f"/api/products?category={category}&max_price=250")
    assert [p["id"] for p in cheap.json["items"]] == ids[:2]


def test_listing_is_invalidated_by_an_admin_write(client: Any, add_product: Any) -> None:
    category = f"cat-{time.time_ns()}"
    pid = add_product(category=category)
    client.get(f"/api/products?category={category}")
    client.put(f"/api/admin/products/{pid}/stock", json={"stock": 9}, headers=AUTH)
    again = client.get(f"/api/products?category={category}")
    assert again.headers["X-Cache"] == "miss" and again.json["items"][0]["stock"] == 9


def test_bad_query_parameter_is_a_400_naming_it(client: Any) -> None:
    resp = client.get("/api/products?per_page=1000")
    assert resp.status_code == 400
    assert resp.json["errors"][0]["field"] == "per_page"
    assert client.get("/api/products?colour=red").json["errors"][0]["field"] == "colour"


def _etag(resp: Any) -> str:
    etag = resp.headers.get("ETag")
    assert etag, f"no ETag on {resp.status_code} {resp.request.path}"
    return str(etag)


def test_product_read_is_public_for_the_ttl_with_an_etag_and_revalidates_to_304(client: Any, add_product: Any) -> None:
    pid = add_product()
    first = client.get(f"/api/products/{pid}")
    assert first.headers["Cache-Control"] == f"public, max-age={contract.PRODUCT_CACHE_TTL_SECONDS}"
    etag = _etag(first)
    again = client.get(f"/api/products/{pid}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == first.headers["Cache-Control"]


def test_a_weakened_etag_still_revalidates(client: Any, add_product: Any) -> None:
    # CloudFront turns a strong ETag weak when it compresses the body; revalidation through it must still match.
    pid = add_product()
    etag = _etag(client.get(f"/api/products/{pid}"))
    assert client.get(f"/api/products/{pid}", headers={"If-None-Match": f"W/{etag}"}).status_code == 304


def test_a_cache_hit_and_a_miss_carry_the_same_etag(client: Any, add_product: Any) -> None:
    pid = add_product()
    miss, hit = client.get(f"/api/products/{pid}"), client.get(f"/api/products/{pid}")
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert _etag(miss) == _etag(hit) and miss.get_data() == hit.get_data()


def test_a_changed_product_answers_an_old_etag_with_the_new_body(client: Any, add_product: Any) -> None:
    pid = add_product(stock=1)
    etag = _etag(client.get(f"/api/products/{pid}"))
    client.put(f"/api/admin/products/{pid}/stock", json={"stock": 2}, headers=AUTH)
    changed = client.get(f"/api/products/{pid}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json["stock"] == 2 and changed.headers["ETag"] != etag


def test_product_list_is_public_with_an_etag_and_revalidates_to_304(client: Any, add_product: Any) -> None:
    category = f"cat-{time.time_ns()}"
    add_product(category=category)
    first = client.get(f"/api/products?category={category}")
    assert first.headers["Cache-Control"] == f"public, max-age={contract.PRODUCT_CACHE_TTL_SECONDS}"
    again = client.get(f"/api/products?category={category}", headers={"If-None-Match": _etag(first)})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/api/products/999999999", "/api/products?per_page=1000"])
def test_product_read_errors_are_never_stored(client: Any, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code in (400, 404) and resp.headers["Cache-Control"] == "no-store"
    assert "ETag" not in resp.headers
