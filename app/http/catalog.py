"""Catalog reads (near cache, then Redis cache-aside) and admin writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from flask import Blueprint, Response, jsonify, request

from app import contract
from app.catalog import DATABASE, MAX_ID, ProductIn, ProductPatch, ProductQuery, ProductReplace, StockIn
from app.http.util import json_body, query_args, require_admin, services
from app.problems import Problem

bp = Blueprint("catalog", __name__)

# Product reads are the same for every caller (no cookie, token or user in them), so CloudFront and browsers may
# share and keep them; `max-age` bounds both, CloudFront's `Age` header counting its own time against it.
PUBLIC_READ_CACHE_CONTROL = f"public, max-age={contract.PRODUCT_CACHE_TTL_SECONDS}"


def _public_read(resp: Response, etag: str | None = None) -> Response:
    """Cacheable for the contract's TTL, with an ETag over the body (`etag`: already computed over it, as the
    near cache keeps it); a matching If-None-Match gets a 304.

    CloudFront weakens the ETag of a response it compresses, and werkzeug compares If-None-Match weakly, so a
    revalidation through the edge still matches.
    """
    resp.headers["Cache-Control"] = PUBLIC_READ_CACHE_CONTROL
    if etag is None:
        resp.add_etag()
    else:
        resp.set_etag(etag)
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
    document = services().catalog.read_document(product_id)
    if document is None:
        raise _not_found(product_id)
    body, etag, tier = document
    headers = {"X-Cache": "miss" if tier == DATABASE else "hit", "X-Cache-Tier": tier}
    return _public_read(Response(body, mimetype="application/json", headers=headers), etag)


@bp.post("/api/admin/products")
def create_product() -> tuple[Response, int]:
    require_admin()
    product = services().catalog.create(json_body(ProductIn))
    if not product:
        raise _sku_taken()
    return jsonify(product), 201


def _sku_taken() -> Problem:
    return Problem.for_field(409, "Conflict", "sku", "body", "another product has this SKU", kind="conflict")


def _write(product_id: int, write: Callable[[], dict[str, Any] | None]) -> Response:
    """An update of an existing product: 404 when there is none, 409 when its new SKU is taken."""
    try:
        product = write()
    except psycopg.errors.UniqueViolation:
        raise _sku_taken() from None
    if product is None:
        raise _not_found(product_id)
    return jsonify(product)


@bp.put("/api/admin/products/<int:product_id>")
def replace_product(product_id: int) -> Response:
    require_admin()
    _check_id(product_id)
    body = json_body(ProductReplace)
    return _write(product_id, lambda: services().catalog.replace(product_id, body))


@bp.patch("/api/admin/products/<int:product_id>")
def patch_product(product_id: int) -> Response:
    require_admin()
    _check_id(product_id)
    body = json_body(ProductPatch)
    if not body.model_fields_set:
        message = f"must name at least one of {', '.join(ProductPatch.model_fields)}"
        raise Problem.for_field(422, "Invalid request", "body", "body", message)
    return _write(product_id, lambda: services().catalog.patch(product_id, body))


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
