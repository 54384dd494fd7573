"""Catalog: products read cache-aside from Redis (5-minute TTL) over the reader; admin writes on the writer."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from app import contract
from app.cache import REDIS_UNAVAILABLE
from app.types import Text

if TYPE_CHECKING:
    from collections.abc import Iterable

    import psycopg

    from app.cache import Cache
    from app.data import Database

COLUMNS = "id, sku, name, description, category, price_cents, currency, stock, updated_at"
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CATEGORY = r"^[a-z0-9][a-z0-9-]{0,39}$"
MAX_ID = 2**63 - 1


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: Text = Field(pattern=SKU)
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=2000)
    category: Text = Field("general", pattern=CATEGORY)
    price_cents: int = Field(ge=0, le=100_000_000)
    currency: Text = Field("USD", pattern=r"^[A-Z]{3}$")
    stock: int = Field(0, ge=0, le=1_000_000_000)


class StockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    stock: int = Field(ge=0, le=1_000_000_000)


class ProductQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(1, ge=1, le=10_000)
    per_page: int = Field(20, ge=1, le=100)
    category: Text | None = Field(None, pattern=CATEGORY)
    min_price: int | None = Field(None, ge=0, le=100_000_000)
    max_price: int | None = Field(None, ge=0, le=100_000_000)
    q: Text | None = Field(None, min_length=1, max_length=100)


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("updated_at"), datetime):
        out["updated_at"] = out["updated_at"].isoformat()
    return out


class Catalog:
    def __init__(self, db: Database, cache: Cache) -> None:
        self.db, self.cache = db, cache

    def cache_key(self, product_id: int) -> str:
        return self._key(product_id)

    def _key(self, product_id: int) -> str:
        return self.cache.key("product", product_id)

    def get_cached_json(self, product_id: int) -> bytes | None:
        """The product's cached JSON document as stored (served without re-encoding), or None."""
        return self.cache.get_raw(self._key(product_id))

    def get(self, product_id: int, *, skip_cache: bool = False) -> tuple[dict[str, Any] | None, bool]:
        """(product or None, cache hit)."""
        key = self._key(product_id)
        if not skip_cache:
            hit, value = self.cache.get_json(key)
            if hit:
                return value, True

        def query(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
            return conn.execute(f"SELECT {COLUMNS} FROM products WHERE id = %s", (product_id,)).fetchone()  # noqa: S608

        row = self.db.read(query)
        if row is None:
            return None, False
        product = to_json(row)
        self.cache.set_json(key, product, contract.PRODUCT_CACHE_TTL_SECONDS)
        return product, False

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

    def invalidate(self, product_ids: Iterable[int] = ()) -> None:
        """These products changed (or one was added): drop their cached copies and every cached list, at once."""
        keys = [self._key(product_id) for product_id in sorted(set(product_ids))]
        self.cache.invalidate(keys, versions=(self._list_version_key(),))

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

    def replace(self, product_id: int, p: ProductIn) -> dict[str, Any] | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "UPDATE products SET sku = %s, name = %s, description = %s, category = %s, price_cents = %s,"
                " currency = %s, stock = %s, updated_at = now() WHERE id = %s"
                " RETURNING id, sku, name, description, category, price_cents, currency, stock, updated_at",
                (p.sku, p.name, p.description, p.category, p.price_cents, p.currency, p.stock, product_id),
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
            self.cache.delete(self._key(product_id))
            return None
        product = to_json(row)
        self.cache.set_json(self._key(product_id), product, contract.PRODUCT_CACHE_TTL_SECONDS)
        self.invalidate()
        return product

    def delete(self, product_id: int) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM products WHERE id = %s", (product_id,))
        self.invalidate([product_id])
        return cur.rowcount > 0


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
