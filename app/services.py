"""The per-process objects the HTTP layer uses, built once by the application factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.aws import AdminToken
from app.cache import Cache, ConfigCache
from app.catalog import Catalog
from app.checkout import Checkout
from app.data import Database
from app.ratelimit import RateLimiter
from app.sessions import Sessions
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    cache: Cache
    catalog: Catalog
    checkout: Checkout
    sessions: Sessions
    config: ConfigCache
    limiter: RateLimiter
    admin_token: AdminToken

    @classmethod
    def build(cls, settings: Settings) -> Services:
        cache = Cache(settings)
        db = Database(settings, cache.available_client)
        db.open()

        def load_config() -> dict[str, Any]:
            # The writer: a replica lagging behind the change whose invalidation started this load would hand
            # back the old flags, to be kept for the cache's hour.
            rows = db.read(
                lambda conn: conn.execute("SELECT key, value FROM app_config ORDER BY key").fetchall(), fresh=True
            )
            return {r["key"]: r["value"] for r in rows}

        return cls(
            settings=settings,
            db=db,
            cache=cache,
            catalog=Catalog(db, cache),
            checkout=Checkout(db),
            sessions=Sessions(cache),
            config=ConfigCache(cache, load_config),
            limiter=RateLimiter(cache, settings.rate_limit_per_minute),
            admin_token=AdminToken(settings),
        )

    def close(self) -> None:
        self.config.stop()
        self.catalog.close()
        self.db.close()
        self.cache.close()
