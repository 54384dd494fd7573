"""Catalog: products read from the near cache, then cache-aside from Redis (5-minute TTL) over the reader; admin
writes on the writer, which invalidate every tier."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from werkzeug.http import generate_etag

from app import contract
from app.cache import REDIS_UNAVAILABLE
from app.lua import LuaScript
from app.near_cache import NearCache, entry_ttl
from app.types import WHOLE, Text

if TYPE_CHECKING:
    from collections.abc import Iterable

    import psycopg

    from app.cache import Cache
    from app.data import Database

COLUMNS = "id, sku, name, description, category, price_cents, currency, stock, updated_at"
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CATEGORY = r"^[a-z0-9][a-z0-9-]{0,39}$"
MAX_ID = 2**63 - 1


# Each field's limits, once for the three bodies that carry it.
# The patterns admit ASCII only, so plain `str` (see app.types.Text).
Sku = Annotated[str, Field(pattern=SKU)]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
Description = Annotated[Text, Field(max_length=2000)]
Category = Annotated[str, Field(pattern=CATEGORY)]
Price = Annotated[int, Field(ge=0, le=100_000_000), WHOLE]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000), WHOLE]


class ProductReplace(BaseModel):
    """PUT: a replacement names every field; a missing one is an error, never a silent default."""

    model_config = ConfigDict(extra="forbid", strict=True)
    sku: Sku
    name: Name
    description: Description
    category: Category
    price_cents: Price
    currency: Currency
    stock: Stock


class ProductIn(ProductReplace):
    """POST: a new product; the optional fields take these defaults."""

    description: Description = ""
    category: Category = "general"
    currency: Currency = "USD"
    stock: Stock = 0


# A PATCH field's default: None, typed Any so the fields keep their non-null types.
_ABSENT: Any = None


class ProductPatch(BaseModel):
    """PATCH: the fields given change, the rest stay. A field given as null is refused (none is nullable): the
    default None is never validated, an explicit null is and fails."""

    model_config = ConfigDict(extra="forbid", strict=True)
    sku: Sku = _ABSENT
    name: Name = _ABSENT
    description: Description = _ABSENT
    category: Category = _ABSENT
    price_cents: Price = _ABSENT
    currency: Currency = _ABSENT
    stock: Stock = _ABSENT


class StockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    stock: Stock


class ProductQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(1, ge=1, le=10_000)
    per_page: int = Field(20, ge=1, le=100)
    category: Category | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    q: Text | None = Field(None, min_length=1, max_length=100)


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("updated_at"), datetime):
        out["updated_at"] = out["updated_at"].isoformat()
    return out


# Which tier answered a product read (the `X-Cache-Tier` header; the benchmark counts the near cache's share).
MEMORY, REDIS, DATABASE = "memory", "redis", "database"
# One round trip: the entry and what is left of its TTL, which bounds the near copy's life.
_GET_WITH_TTL = LuaScript("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}")


class Catalog:
    def __init__(self, db: Database, cache: Cache) -> None:
        self.db, self.cache = db, cache
        self.near = NearCache(cache)

    def _key(self, product_id: int) -> str:
        return self.cache.key("product", product_id)

    def read_document(self, product_id: int) -> tuple[bytes, str, str] | None:
        """The product's JSON document, its ETag and the tier that had it (MEMORY, REDIS, DATABASE); None when
        the product does not exist. Every tier holds the same bytes, so a hit and a miss carry one ETag."""
        near = self.near.get(product_id)
        if near is not None:
            return near[0], near[1], MEMORY
        generation = self.near.generation  # before the read: an invalidation from now on refuses the fill
        key = self._key(product_id)
        try:
            raw, pttl = self.cache.call(lambda r: _GET_WITH_TTL(r, [key], []))
        except REDIS_UNAVAILABLE:
            raw, pttl = None, None
        if raw is not None:
            etag = generate_etag(raw)
            self.near.put(product_id, raw, etag, entry_ttl(pttl), generation)
            return raw, etag, REDIS

        def query(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
            return conn.execute(f"SELECT {COLUMNS} FROM products WHERE id = %s", (product_id,)).fetchone()  # noqa: S608

        row = self.db.read(query)
        if row is None:
            return None
        body = json_bytes(to_json(row))
        self.cache.set_raw(key, body, contract.PRODUCT_CACHE_TTL_SECONDS)
        etag = generate_etag(body)
        self.near.put(product_id, body, etag, contract.PRODUCT_CACHE_TTL_SECONDS, generation)
        return body, etag, DATABASE

    def _list_version(self) -> str:
        try:
            raw = self.cache.call(lambda r: r.get(self._list_version_key()))
        except REDIS_UNAVAILABLE:
            return ""
        return raw.decode() if raw else "0"

    def list(self, q: ProductQuery) -> tuple[dict[str, Any], bool]:
        version = self._list_version()
        digest = hashlib.sha256(q.model_dump_json().encode()).hexdigest()[:32]
        key = self.cache.key("products", f"v{version}", digest)
        if version:
            hit, value = self.cache.get_json(key)
            if hit:
                return value, True
        where: list[str] = ["TRUE"]
        params: list[object] = []
        if q.category:
            where.append("category = %s")
            params.append(q.category)
        if q.min_price is not None:
            where.append("price_cents >= %s")
            params.append(q.min_price)
        if q.max_price is not None:
            where.append("price_cents <= %s")
            params.append(q.max_price)
        if q.q:
            escaped = q.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("name ILIKE %s")
            params.append(f"%{escaped}%")
        cond = " AND ".join(where)

        def query(conn: psycopg.Connection[Any]) -> tuple[list[dict[str, Any]], int]:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM products WHERE {cond} ORDER BY id LIMIT %s OFFSET %s",  # noqa: S608
                [*params, q.per_page, (q.page - 1) * q.per_page],
            ).fetchall()
            total = conn.execute(f"SELECT count(*) AS n FROM products WHERE {cond}", params).fetchone()  # noqa: S608
            return rows, int(total["n"]) if total else 0

        rows, total = self.db.read(query)
        body = {
            "items": [to_json(r) for r in rows],
            "page": q.page,
            "per_page": q.per_page,
            "total": total,
        }
        if version:
            self.cache.set_json(key, body, contract.PRODUCT_CACHE_TTL_SECONDS)
        return body, False

    def _list_version_key(self) -> str:
        return self.cache.key("products", "version")

    def invalidate(self, product_ids: Iterable[int] = (), *, written_through: bool = False) -> None:
        """These products changed (or one was added): drop their cached copies (unless `written_through`: their
        Redis entries already hold the new row), every cached list, and every process's near copies, in one
        round trip; this process's near copies at once."""
        ids = sorted(set(product_ids))
        keys = [] if written_through else [self._key(product_id) for product_id in ids]
        publish = (self.near.channel, NearCache.message(ids)) if ids else None
        self.cache.invalidate(keys, versions=(self._list_version_key(),), publish=publish)
        if ids:
            self.near.drop(ids)

    def close(self) -> None:
        self.near.stop()

    def create(self, p: ProductIn) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO products (sku, name, description, category, price_cents, currency, stock)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (sku) DO NOTHING"
                " RETURNING id, sku, name, description, category, price_cents, currency, stock, updated_at",
                (p.sku, p.name, p.description, p.category, p.price_cents, p.currency, p.stock),
            ).fetchone()
        if row is None:
            return {}
        self.invalidate()
        return to_json(row)

    def replace(self, product_id: int, p: ProductReplace) -> dict[str, Any] | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "UPDATE products SET sku = %s, name = %s, description = %s, category = %s, price_cents = %s,"
                " currency = %s, stock = %s, updated_at = now() WHERE id = %s"
                " RETURNING id, sku, name, description, category, price_cents, currency, stock, updated_at",
                (p.sku, p.name, p.description, p.category, p.price_cents, p.currency, p.stock, product_id),
            ).fetchone()
        self.invalidate([product_id])
        return to_json(row) if row else None

    def patch(self, product_id: int, p: ProductPatch) -> dict[str, Any] | None:
        """Only the fields the body gave (the caller checked there is at least one)."""
        fields = p.model_dump(exclude_unset=True)
        # Column names from the model's own fields, never from the request.
        assignments = ", ".join(f"{name} = %s" for name in fields)
        with self.db.transaction() as conn:
            row = conn.execute(
                f"UPDATE products SET {assignments}, updated_at = now() WHERE id = %s RETURNING {COLUMNS}",  # noqa: S608
                (*fields.values(), product_id),
            ).fetchone()
        self.invalidate([product_id])
        return to_json(row) if row else None

    def set_stock(self, product_id: int, stock: int) -> dict[str, Any] | None:
        """Write-through: the new row goes to the cache right after the commit."""
        with self.db.transaction() as conn:
            row = conn.execute(
                f"UPDATE products SET stock = %s, updated_at = now() WHERE id = %s RETURNING {COLUMNS}",  # noqa: S608
                (stock, product_id),
            ).fetchone()
        if row is None:
            self.invalidate([product_id])
            return None
        product = to_json(row)
        self.cache.set_raw(self._key(product_id), json_bytes(product), contract.PRODUCT_CACHE_TTL_SECONDS)
        self.invalidate([product_id], written_through=True)
        return product

    def delete(self, product_id: int) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM products WHERE id = %s", (product_id,))
        self.invalidate([product_id])
        return cur.rowcount > 0


# Built once: `json.dumps` with an argument builds a new encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def json_bytes(value: Any) -> bytes:
    """The encoding every tier stores and serves (compact, in the row's column order)."""
    return _COMPACT.encode(value).encode()


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)
