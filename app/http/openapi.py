"""The OpenAPI 3 document served at /openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from app import contract
from app.http.catalog import PUBLIC_READ_CACHE_CONTROL

bp = Blueprint("openapi", __name__)

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_CATEGORY = r"^[a-z0-9][a-z0-9-]{0,39}$"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$"
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETag(s) of a copy the client holds; a current one gets a 304 without a body",
    "schema": {"type": "string"},
}
_CACHE_HEADERS = {
    "Cache-Control": {
        "description": "Shared caches (CloudFront) and browsers may keep the answer this long",
        "schema": {"type": "string", "enum": [PUBLIC_READ_CACHE_CONTROL]},
    },
    "ETag": {"description": "Validator of this body, for If-None-Match", "schema": {"type": "string"}},
}
_NOT_MODIFIED = {"description": "not modified: the ETag in If-None-Match is current", "headers": _CACHE_HEADERS}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out.update(_json(schema))
    return out


def _public_read(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"200": {**_ok(description, schema), "headers": _CACHE_HEADERS}, "304": _NOT_MODIFIED}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _PROBLEM for c in (*codes, 429)}


PRODUCT_IN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sku", "name", "price_cents"],
    "properties": {
        "sku": {"type": "string", "pattern": _SKU},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 2000},
        "category": {"type": "string", "pattern": _CATEGORY},
        "price_cents": {"type": "integer", "minimum": 0, "maximum": 100_000_000},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "stock": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
    },
}
PRODUCT = {
    "type": "object",
    "required": ["id", "sku", "name", "price_cents", "currency", "stock"],
    "properties": {"id": {"type": "integer"}, **PRODUCT_IN["properties"], "updated_at": {"type": "string"}},  # type: ignore[dict-item]
}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Commerce API", "version": "1.0.0"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Problem": {
                "description": "RFC 9457 problem details",
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "type": "object",
                            "required": ["title", "status"],
                            "properties": {
                                "type": {"type": "string"},
                                "title": {"type": "string"},
                                "status": {"type": "integer"},
                                "detail": {"type": "string"},
                                "errors": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    }
                },
            }
        },
    },
    "paths": {
        contract.HEALTH_LIVE_PATH: {"get": {"summary": "Liveness", "responses": {"200": _ok("alive")}}},
        contract.HEALTH_READY_PATH: {
            "get": {"summary": "Readiness", "responses": {"200": _ok("ready"), "503": _ok("not ready")}}
        },
        "/api/products": {
            "get": {
                "summary": "List products (cache-aside, reader)",
                "parameters": [
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    {"name": "category", "in": "query", "schema": {"type": "string", "pattern": _CATEGORY}},
                    {"name": "min_price", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "max_price", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "q", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 100}},
                    _IF_NONE_MATCH,
                ],
                "responses": {**_public_read("a page of products"), **_errors(400)},
            }
        },
        "/api/products/{id}": {
            "get": {
                "summary": "One product (cache-aside, reader)",
                "parameters": [_ID, _IF_NONE_MATCH],
                "responses": {**_public_read("the product", PRODUCT), **_errors(404)},
            }
        },
        "/api/admin/products": {
            "post": {
                "security": _ADMIN,
                "requestBody": {"required": True, **_json(PRODUCT_IN)},
                "responses": {"201": _ok("created", PRODUCT), **_errors(400, 401, 403, 409, 413, 415, 422)},
            }
        },
        "/api/admin/products/{id}": {
            "put": {
                "security": _ADMIN,
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(PRODUCT_IN)},
                "responses": {"200": _ok("replaced", PRODUCT), **_errors(400, 401, 403, 404, 409, 413, 415, 422)},
            },
            "delete": {
                "security": _ADMIN,
                "parameters": [_ID],
                "responses": {"204": _ok("deleted"), **_errors(401, 403, 404)},
            },
        },
        "/api/admin/products/{id}/stock": {
            "put": {
                "security": _ADMIN,
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["stock"],
                            "properties": {"stock": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000}},
                        }
                    ),
                },
                "responses": {"200": _ok("updated (write-through)", PRODUCT), **_errors(400, 401, 403, 404, 415, 422)},
            }
        },
        "/api/admin/config/{key}": {
            "put": {
                "security": _ADMIN,
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    **_json({"type": "object", "required": ["value"], "properties": {"value": {}}}),
                },
                "responses": {"200": _ok("stored; every task drops its copy"), **_errors(400, 401, 403, 415, 422)},
            }
        },
        "/api/config": {"get": {"summary": "Config and feature flags", "responses": {"200": _ok("config")}}},
        "/api/user/sessions": {
            "post": {
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["email"],
                            "properties": {
                                "email": {"type": "string", "pattern": _EMAIL, "maxLength": 254},
                                "name": {"type": "string", "maxLength": 100},
                            },
                        }
                    ),
                },
                "responses": {"201": _ok("session created"), **_errors(400, 415, 422, 503)},
            }
        },
        "/api/user/sessions/current": {
            "delete": {"security": [{"bearer": []}], "responses": {"204": _ok("ended"), **_errors(401, 503)}}
        },
        "/api/user/me": {
            "get": {"security": [{"bearer": []}], "responses": {"200": _ok("the user"), **_errors(401, 503)}}
        },
        "/api/checkout/orders": {
            "post": {
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["email", "items"],
                            "properties": {
                                "email": {"type": "string", "pattern": _EMAIL, "maxLength": 254},
                                "items": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 50,
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["product_id", "quantity"],
                                        "properties": {
                                            "product_id": {"type": "integer", "minimum": 1},
                                            "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
                                        },
                                    },
                                },
                            },
                        }
                    ),
                },
                "responses": {
                    "202": _ok("accepted (PENDING)"),
                    **_errors(400, 409, 413, 415, 422),
                },
            }
        },
        "/api/checkout/orders/{id}": {
            "get": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                ],
                "responses": {"200": _ok("the order (from the writer)"), **_errors(404)},
            }
        },
    },
}


@bp.get(contract.OPENAPI_PATH)
def openapi() -> Response:
    return jsonify(SPEC)
