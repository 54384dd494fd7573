"""Catalog reads (cache-aside) and admin writes."""

from __future__ import annotations

import json

from flask import Blueprint, Response, g, jsonify, request

from app import contract
from app.catalog import MAX_ID, ProductIn, ProductQuery, StockIn
from app.http.util import json_body, query_args, require_admin, services
from app.problems import Problem

bp = Blueprint("catalog", __name__)

# Product reads are the same for every caller (no cookie, token or user in them), so CloudFront and browsers may
# share and keep them; `max-age` bounds both, CloudFront's `Age` header counting its own time against it.
PUBLIC_READ_CACHE_CONTROL = f"public, max-age={contract.PRODUCT_CACHE_TTL_SECONDS}"


def _public_read(resp: Response) -> Response:
    """Cacheable for the contract's TTL, with an ETag over the body; a matching If-None-Match gets a 304.

    CloudFront weakens the ETag of a response it compresses, and werkzeug compares If-None-Match weakly, so a
    revalidation through the edge still matches.
    """
    resp.headers["Cache-Control"] = PUBLIC_READ_CACHE_CONTROL
    resp.add_etag()
    resp.make_conditional(request)  # in place: 304 and no body when the ETag matches
    return resp


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
    return _public_read(resp)


@bp.get("/api/products/<int:product_id>")
def get_product(product_id: int) -> Response:
    _check_id(product_id)
    catalog = services().catalog
    # The rate limiter's round trip already fetched the entry when Redis was reachable.
    raw = g.prefetched if "prefetched" in g else catalog.get_cached_json(product_id)
    if raw is not None:
        return _public_read(Response(raw, mimetype="application/json", headers={"X-Cache": "hit"}))
    product, _ = catalog.get(product_id, skip_cache=True)
    if product is None:
        raise _not_found(product_id)
    # The bytes the cache stores (app.cache.Cache.set_json), so a hit and a miss carry one ETag.
    body = json.dumps(product, separators=(",", ":"))
    return _public_read(Response(body, mimetype="application/json", headers={"X-Cache": "miss"}))


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
