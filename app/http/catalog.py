"""Catalog reads (cache-aside) and admin writes."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from app.catalog import MAX_ID, ProductIn, ProductQuery, StockIn
from app.http.util import json_body, query_args, require_admin, services
from app.problems import Problem

bp = Blueprint("catalog", __name__)


def _not_found(product_id: int) -> Problem:
    return Problem(404, "Not found", f"'id' in path: product {product_id} does not exist", kind="not-found")


def _check_id(product_id: int) -> None:
    if product_id < 1 or product_id > MAX_ID:
        raise _not_found(product_id)


@bp.get("/api/products")
def list_products() -> Response:
    body, hit = services().catalog.list(query_args(ProductQuery))
    resp = jsonify(body)
    resp.headers["X-Cache"] = "hit" if hit else "miss"
    return resp


@bp.get("/api/products/<int:product_id>")
def get_product(product_id: int) -> Response:
    _check_id(product_id)
    catalog = services().catalog
    # The rate limiter's round trip already fetched the entry when Redis was reachable.
    raw = g.prefetched if "prefetched" in g else catalog.get_cached_json(product_id)
    if raw is not None:
        return Response(raw, mimetype="application/json", headers={"X-Cache": "hit"})
    product, _ = catalog.get(product_id, skip_cache=True)
    if product is None:
        raise _not_found(product_id)
    resp = jsonify(product)
    resp.headers["X-Cache"] = "miss"
    return resp


@bp.post("/api/admin/products")
def create_product() -> tuple[Response, int]:
    require_admin()
    product = services().catalog.create(json_body(ProductIn))
    if not product:
        raise Problem(
            409,
            "Conflict",
            "'sku': a product with this SKU already exists",
            errors=[{"field": "sku", "in": "body", "message": "already exists"}],
            kind="conflict",
        )
    return jsonify(product), 201


@bp.put("/api/admin/products/<int:product_id>")
def replace_product(product_id: int) -> Response:
    require_admin()
    _check_id(product_id)
    body = json_body(ProductIn)
    try:
        product = services().catalog.replace(product_id, body)
    except Exception as exc:
        if type(exc).__name__ == "UniqueViolation":
            raise Problem(409, "Conflict", "'sku': another product has this SKU", kind="conflict") from None
        raise
    if product is None:
        raise _not_found(product_id)
    return jsonify(product)


@bp.put("/api/admin/products/<int:product_id>/stock")
def set_stock(product_id: int) -> Response:
    require_admin()
    _check_id(product_id)
    product = services().catalog.set_stock(product_id, json_body(StockIn).stock)
    if product is None:
        raise _not_found(product_id)
    return jsonify(product)


@bp.delete("/api/admin/products/<int:product_id>")
def delete_product(product_id: int) -> tuple[str, int]:
    require_admin()
    _check_id(product_id)
    if not services().catalog.delete(product_id):
        raise _not_found(product_id)
    return "", 204
