"""The benchmark's peer: the same product read written the way Flask's ecosystem documents it.

Flask-Caching's `RedisCache` around the view (`@cache.cached`) and Flask-Limiter with Redis storage as the
default limit, on the same Redis, table and limit as the API; the row comes from a psycopg pool and is
encoded the way the API encodes it. Served by the same gunicorn configuration (`bench/api.py` starts it).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from app import contract
from app.catalog import COLUMNS, json_bytes, to_json
from app.settings import load_settings


def create_app() -> Flask:
    settings = load_settings()
    app = Flask("peer")
    app.config.update(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=settings.redis_url,
        CACHE_KEY_PREFIX=f"{settings.redis_key_prefix}peer:",
        CACHE_DEFAULT_TIMEOUT=contract.PRODUCT_CACHE_TTL_SECONDS,
    )
    cache = Cache(app)
    Limiter(
        get_remote_address,
        app=app,
        default_limits=[f"{settings.rate_limit_per_minute} per minute"],
        storage_uri=settings.redis_url,
        key_prefix=f"{settings.redis_key_prefix}peer-rl",
    )
    pool: ConnectionPool[Any] = ConnectionPool(
        kwargs={**settings.conninfo(settings.db_writer_host), "row_factory": dict_row},
        max_size=settings.db_pool_max,
        open=True,
    )

    @app.get("/api/products/<int:product_id>")
    @cache.cached()
    def get_product(product_id: int) -> Response:
        with pool.connection() as conn:
            row = conn.execute(f"SELECT {COLUMNS} FROM products WHERE id = %s", (product_id,)).fetchone()
        if row is None:
            abort(404)
        return Response(json_bytes(to_json(row)), mimetype="application/json")

    return app
