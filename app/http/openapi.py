"""The OpenAPI 3.1 document served at /openapi.json: as strict as the server, because it is built from it.

Request bodies and the product list's query are the JSON schemas of the very pydantic models that validate them
(limits, patterns, forbidden characters, `additionalProperties: false`), so the document cannot drift from what
the server refuses. Every operation lists every status the server can answer it with: 429 wherever the rate
limiter runs, 503 wherever a backing service is used, and gunicorn's 414/431, which come before routing.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from app import contract
from app.catalog import MAX_ID, ProductIn, ProductPatch, ProductQuery, ProductReplace, StockIn
from app.checkout import IDEMPOTENCY_KEY, OrderIn
from app.http.catalog import PUBLIC_READ_CACHE_CONTROL
from app.http.config import KEY_PATTERN, ConfigValue
from app.problems import KINDS, PROBLEM_JSON, TYPE_PREFIX
from app.sessions import SessionIn
from app.types import NO_NUL

bp = Blueprint("openapi", __name__)

SCHEMAS: dict[str, Any] = {}
_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _tidy(schema: Any) -> Any:
    """Drop what pydantic adds for humans (titles, docstrings) and the `default: null` of PATCH's absent fields."""
    if isinstance(schema, dict):
        return {
            k: {name: _tidy(s) for name, s in v.items()} if k == "properties" else _tidy(v)
            for k, v in schema.items()
            if not (k in {"title", "description"} and isinstance(v, str)) and not (k == "default" and v is None)
        }
    if isinstance(schema, list):
        return [_tidy(v) for v in schema]
    return schema


def _model(name: str, model: type[BaseModel], **extra: Any) -> dict[str, str]:
    """Register the model's JSON schema (and its nested models) as named component schemas."""
    schema = model.model_json_schema(ref_template=_REF)
    for nested, definition in schema.pop("$defs", {}).items():
        SCHEMAS.setdefault(nested, _tidy(definition))
    SCHEMAS[name] = {**_tidy(schema), **extra}
    return _ref(name)


def _named(name: str, schema: dict[str, Any]) -> dict[str, str]:
    SCHEMAS[name] = schema
    return _ref(name)


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A response object: every property present unless `optional`, nothing else."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [k for k in properties if k not in optional],
        "properties": properties,
    }


# Any JSON value `clean_json` keeps: no NUL in any string or key, however deep.
JSON_VALUE = _named(
    "JsonValue",
    {
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": _ref("JsonValue")},
            {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": _ref("JsonValue")},
        ]
    },
)

PRODUCT_CREATE = _model("ProductCreate", ProductIn)
PRODUCT_REPLACE = _model("ProductReplace", ProductReplace)
PRODUCT_PATCH = _model("ProductPatch", ProductPatch, minProperties=1)
STOCK_UPDATE = _model("StockUpdate", StockIn)
SESSION_CREATE = _model("SessionCreate", SessionIn)
ORDER_CREATE = _model("OrderCreate", OrderIn)
CONFIG_VALUE = _model("ConfigValue", ConfigValue)
SCHEMAS["ConfigValue"]["properties"]["value"] = JSON_VALUE

_PRODUCT_FIELDS = copy.deepcopy(SCHEMAS["ProductReplace"]["properties"])
PRODUCT = _named(
    "Product",
    _object(
        {
            "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            **_PRODUCT_FIELDS,
            "updated_at": {"type": "string", "format": "date-time"},
        }
    ),
)
PRODUCT_PAGE = _named(
    "ProductPage",
    _object(
        {
            "items": {"type": "array", "items": PRODUCT},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
            "total": {"type": "integer", "minimum": 0},
        }
    ),
)
_EMAIL = SCHEMAS["SessionCreate"]["properties"]["email"]
USER = _named(
    "User",
    _object({"email": _EMAIL, "name": {"type": "string"}, "created_at": {"type": "integer", "description": "epoch s"}}),
)
SESSION = _named(
    "Session",
    _object(
        {
            "token": {"type": "string", "minLength": 1},
            "expires_in": {"type": "integer", "const": contract.SESSION_TTL_SECONDS},
            "user": USER,
        }
    ),
)
_ORDER_ID = {"type": "string", "format": "uuid"}
_CURRENCY = SCHEMAS["ProductReplace"]["properties"]["currency"]
ORDER_ACCEPTED = _named(
    "OrderAccepted",
    _object(
        {
            "id": _ORDER_ID,
            "status": {"const": "PENDING"},
            "total_cents": {"type": "integer", "minimum": 0},
            "currency": _CURRENCY,
        }
    ),
)
ORDER = _named(
    "Order",
    _object(
        {
            "id": _ORDER_ID,
            "status": {"enum": ["PENDING", "CONFIRMED", "REJECTED", "FAILED"]},
            "email": _EMAIL,
            "items": {
                "type": "array",
                "items": _object(
                    {
                        "product_id": {"type": "integer", "minimum": 1},
                        "quantity": {"type": "integer", "minimum": 1},
                        "price_cents": {"type": "integer", "minimum": 0},
                    }
                ),
            },
            "total_cents": {"type": "integer", "minimum": 0},
            "currency": _CURRENCY,
            "created_at": {"type": "string", "format": "date-time"},
            "reason": {
                "type": ["string", "null"],
                "description": (
                    "Why the worker rejected the order (REJECTED), or why it failed for good and was compensated,"
                    " its stock released (FAILED); null otherwise"
                ),
            },
        }
    ),
)
CONFIG = _named(
    "Config", {"type": "object", "propertyNames": {"pattern": KEY_PATTERN}, "additionalProperties": JSON_VALUE}
)
CONFIG_ENTRY = _named("ConfigEntry", _object({"key": {"type": "string", "pattern": KEY_PATTERN}, "value": JSON_VALUE}))
_CHECK = _object(
    {"ok": {"type": "boolean"}, "latency_ms": {"type": "number", "minimum": 0}, "error": {"type": "string"}},
    optional=("error",),
)
READINESS = _named(
    "Readiness",
    _object(
        {
            "status": {"enum": ["ok", "unavailable"]},
            "checks": _object({"database": _CHECK, "redis": _CHECK, "database_reader": _CHECK}, ("database_reader",)),
        }
    ),
)
LIVENESS = _named("Liveness", _object({"status": {"const": "ok"}}))
_TYPE_PATTERN = f"^{TYPE_PREFIX}({'|'.join(KINDS)})$"
PROBLEM_TYPE = _named(
    "ProblemType",
    _object(
        {
            "type": {"type": "string", "pattern": _TYPE_PATTERN},
            "description": {"type": "string"},
        }
    ),
)
PROBLEM = _named(
    "Problem",
    _object(
        {
            "type": {
                "type": "string",
                "format": "uri-reference",
                "pattern": _TYPE_PATTERN,
                "description": f"One of the API's problem kinds, resolved against its base: `GET {TYPE_PREFIX}<kind>`",
            },
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "The path asked for (absent only on gunicorn's 414/431)"},
            "errors": {
                "type": "array",
                "items": _object(
                    {"field": {"type": "string"}, "in": {"type": "string"}, "message": {"type": "string"}}
                ),
            },
        },
        optional=("detail", "instance", "errors"),
    ),
)

_RETRY_AFTER = {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_CACHE_HEADERS = {
    "Cache-Control": {
        "description": "Shared caches (CloudFront) and browsers may keep the answer this long",
        "required": True,
        "schema": {"type": "string", "const": PUBLIC_READ_CACHE_CONTROL},
    },
    "ETag": {
        "description": "Validator of this body, for If-None-Match",
        "required": True,
        "schema": {"type": "string"},
    },
}
_NO_STORE = {"Cache-Control": {"required": True, "schema": {"type": "string", "const": "no-store"}}}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_NO_STORE, **(headers or {})},
        "content": {PROBLEM_JSON: {"schema": PROBLEM}},
    }


RESPONSES: dict[str, Any] = {
    "400": _problem("malformed: a query parameter or header breaks its schema, or the body is not JSON"),
    "401": _problem("no valid Bearer token", {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}),
    "403": _problem("the token may not do this"),
    "404": _problem("no such resource"),
    "409": _problem("conflicts with the current state"),
    "413": _problem(f"the body is larger than {contract.MAX_REQUEST_BYTES} bytes"),
    "414": _problem("the request line is too long (answered by gunicorn)"),
    "415": _problem("the body is not application/json"),
    "422": _problem("the body breaks its schema, or the order cannot be placed; `errors` names the fields"),
    "429": _problem("rate limited", _RETRY_AFTER),
    "431": _problem("a header field is too large, or there are too many (answered by gunicorn)"),
    "503": _problem(
        "a backing service is unavailable, or saturated (its compartment in this process is full)", _RETRY_AFTER
    ),
}
_NAMES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "ContentTooLarge",
    "414": "UriTooLong",
    "415": "UnsupportedMediaType",
    "422": "UnprocessableContent",
    "429": "TooManyRequests",
    "431": "HeaderFieldsTooLarge",
    "503": "ServiceUnavailable",
}
_ADMIN: list[dict[str, list[str]]] = [{"admin": []}]
_SESSION: list[dict[str, list[str]]] = [{"session": []}]
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETag(s) of a copy the client holds; a current one gets a 304 without a body",
    "schema": {"type": "string"},
}


def _errors(*codes: int, limited: bool = True) -> dict[str, Any]:
    """The problem answers of an operation: `codes`, 429 behind the limiter, and gunicorn's 414/431 always."""
    all_codes = sorted({*codes, *((429,) if limited else ()), 414, 431})
    return {str(c): {"$ref": f"#/components/responses/{_NAMES[str(c)]}"} for c in all_codes}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "headers": _NO_STORE}
    if schema is not None:
        out.update(_json(schema))
    return {**out, **extra}


def _no_content(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _NO_STORE}


def _public_read(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "200": {"description": description, "headers": _CACHE_HEADERS, **_json(schema)},
        "304": {"description": "not modified: the ETag in If-None-Match is current", "headers": _CACHE_HEADERS},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, **_json(schema)}}


def _query_parameters() -> list[dict[str, Any]]:
    """The product list's query parameters, from the model that validates them (none may be null in a query)."""
    props = _tidy(ProductQuery.model_json_schema())["properties"]
    out = []
    for name, schema in props.items():
        options = [s for s in schema.pop("anyOf", []) if s.get("type") != "null"]
        out.append(
            {"name": name, "in": "query", "required": False, "schema": {**schema, **(options[0] if options else {})}}
        )
    return out


def _product_links() -> dict[str, Any]:
    by_id = {"id": "$response.body#/id"}
    return {
        name: {"operationId": op, "parameters": by_id}
        for name, op in (
            ("GetProduct", "getProduct"),
            ("ReplaceProduct", "replaceProduct"),
            ("PatchProduct", "patchProduct"),
            ("SetStock", "setStock"),
            ("DeleteProduct", "deleteProduct"),
        )
    }


_DB = 503  # the operation reads or writes PostgreSQL or Redis (down, or its bulkhead full)

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Commerce API", "version": "1.1.0"},
    "components": {
        "securitySchemes": {
            "admin": {"type": "http", "scheme": "bearer", "description": "The admin token (ADMIN_TOKEN)"},
            "session": {"type": "http", "scheme": "bearer", "description": "A token from POST /api/user/sessions"},
        },
        "schemas": SCHEMAS,
        "responses": {_NAMES[code]: response for code, response in RESPONSES.items()},
    },
    "paths": {
        contract.HEALTH_LIVE_PATH: {
            "get": {
                "operationId": "live",
                "summary": "Liveness",
                "responses": {"200": _ok("alive", LIVENESS), **_errors(limited=False)},
            }
        },
        contract.HEALTH_READY_PATH: {
            "get": {
                "operationId": "ready",
                "summary": "Readiness",
                "responses": {
                    "200": _ok("ready", READINESS),
                    **_errors(limited=False),
                    "503": _ok("not ready", READINESS),
                },
            }
        },
        contract.OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _ok("the OpenAPI document", {"type": "object"}), **_errors()},
            }
        },
        TYPE_PREFIX + "{kind}": {
            "get": {
                "operationId": "problemType",
                "summary": "What a problem `type` means",
                "parameters": [{"name": "kind", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("the kind's description", PROBLEM_TYPE), **_errors(404)},
            }
        },
        "/api/products": {
            "get": {
                "operationId": "listProducts",
                "summary": "List products (cache-aside, reader)",
                "parameters": [*_query_parameters(), _IF_NONE_MATCH],
                "responses": {**_public_read("a page of products", PRODUCT_PAGE), **_errors(400, _DB)},
            }
        },
        "/api/products/{id}": {
            "get": {
                "operationId": "getProduct",
                "summary": "One product (near cache, cache-aside, reader)",
                "parameters": [_ID, _IF_NONE_MATCH],
                "responses": {**_public_read("the product", PRODUCT), **_errors(404, _DB)},
            }
        },
        "/api/admin/products": {
            "post": {
                "operationId": "createProduct",
                "security": _ADMIN,
                **_body(PRODUCT_CREATE),
                "responses": {
                    "201": _ok("created", PRODUCT, links=_product_links()),
                    **_errors(400, 401, 403, 409, 413, 415, 422, _DB),
                },
            }
        },
        "/api/admin/products/{id}": {
            "put": {
                "operationId": "replaceProduct",
                "summary": "Replace a product: every field is required",
                "security": _ADMIN,
                "parameters": [_ID],
                **_body(PRODUCT_REPLACE),
                "responses": {"200": _ok("replaced", PRODUCT), **_errors(400, 401, 403, 404, 409, 413, 415, 422, _DB)},
            },
            "patch": {
                "operationId": "patchProduct",
                "summary": "Change some of a product's fields",
                "security": _ADMIN,
                "parameters": [_ID],
                **_body(PRODUCT_PATCH),
                "responses": {"200": _ok("updated", PRODUCT), **_errors(400, 401, 403, 404, 409, 413, 415, 422, _DB)},
            },
            "delete": {
                "operationId": "deleteProduct",
                "security": _ADMIN,
                "parameters": [_ID],
                "responses": {"204": _no_content("deleted"), **_errors(401, 403, 404, _DB)},
            },
        },
        "/api/admin/products/{id}/stock": {
            "put": {
                "operationId": "setStock",
                "security": _ADMIN,
                "parameters": [_ID],
                **_body(STOCK_UPDATE),
                "responses": {
                    "200": _ok("updated (write-through)", PRODUCT),
                    **_errors(400, 401, 403, 404, 413, 415, 422, _DB),
                },
            }
        },
        "/api/admin/config/{key}": {
            "put": {
                "operationId": "putConfig",
                "security": _ADMIN,
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": KEY_PATTERN},
                    }
                ],
                **_body(CONFIG_VALUE),
                "responses": {
                    "200": _ok(
                        "stored; every task drops its copy",
                        CONFIG_ENTRY,
                        links={"GetConfig": {"operationId": "getConfig"}},
                    ),
                    **_errors(400, 401, 403, 413, 415, 422, _DB),
                },
            }
        },
        "/api/config": {
            "get": {
                "operationId": "getConfig",
                "summary": "Config and feature flags",
                "responses": {"200": _ok("config", CONFIG), **_errors(_DB)},
            }
        },
        "/api/user/sessions": {
            "post": {
                "operationId": "createSession",
                **_body(SESSION_CREATE),
                "responses": {"201": _ok("session created", SESSION), **_errors(400, 413, 415, 422, _DB)},
            }
        },
        "/api/user/sessions/current": {
            "delete": {
                "operationId": "endSession",
                "security": _SESSION,
                "responses": {"204": _no_content("ended"), **_errors(401, _DB)},
            }
        },
        "/api/user/me": {
            "get": {
                "operationId": "me",
                "security": _SESSION,
                "responses": {"200": _ok("the user", USER), **_errors(401, _DB)},
            }
        },
        "/api/checkout/orders": {
            "post": {
                "operationId": "placeOrder",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY},
                    }
                ],
                **_body(ORDER_CREATE),
                "responses": {
                    "202": _ok(
                        "accepted (PENDING); the worker decides it",
                        ORDER_ACCEPTED,
                        headers={
                            **_NO_STORE,
                            "Location": {
                                "required": True,
                                "description": "The order: `GET /api/checkout/orders/{id}`",
                                "schema": {"type": "string"},
                            },
                        },
                        links={"GetOrder": {"operationId": "getOrder", "parameters": {"id": "$response.body#/id"}}},
                    ),
                    **_errors(400, 409, 413, 415, 422, _DB),
                },
            }
        },
        "/api/checkout/orders/{id}": {
            "get": {
                "operationId": "getOrder",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _ORDER_ID}],
                "responses": {"200": _ok("the order (from the writer)", ORDER), **_errors(404, _DB)},
            }
        },
    },
}


@bp.get(contract.OPENAPI_PATH)
def openapi() -> Response:
    return jsonify(SPEC)
