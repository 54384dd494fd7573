"""End-to-end fixtures: the whole local runtime (moto, API, relay, worker, stub) on free ports, per test."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from psycopg.rows import dict_row

from platformctl.local import LocalConfig, LocalRuntime, free_port, queue_depths

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


class Stack:
    def __init__(self, runtime: LocalRuntime, db_name: str) -> None:
        self.runtime = runtime
        self.db_name = db_name
        self.http = httpx.Client(base_url=runtime.api_url, timeout=10)
        self.db = psycopg.connect(**PG, dbname=db_name, autocommit=True, row_factory=dict_row)  # type: ignore[arg-type]

    def add_product(self, stock: int, price: int = 100) -> int:
        row = self.db.execute(
            "INSERT INTO products (sku, name, price_cents, stock) VALUES (%s, 'E2E', %s, %s) RETURNING id",
            (f"E2E-{uuid.uuid4().hex[:10]}", price, stock),
        ).fetchone()
        assert row is not None
        return int(row["id"])

    def order(self, items: list[tuple[int, int]]) -> str:
        resp = self.http.post(
            "/api/checkout/orders",
            json={"email": "e2e@example.com", "items": [{"product_id": p, "quantity": q} for p, q in items]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def statuses(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, count(*) AS n FROM orders GROUP BY status").fetchall()
        return {r["status"]: int(r["n"]) for r in rows}

    def stock(self, product_id: int) -> int:
        row = self.db.execute("SELECT stock FROM products WHERE id = %s", (product_id,)).fetchone()
        assert row is not None
        return int(row["stock"])

    def notifications(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.runtime.config.notifier_port}/notifications"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return dict(json.loads(resp.read()))

    def depths(self) -> dict[str, dict[str, int]]:
        return queue_depths(self.runtime.settings_env())

    def log(self, name: str) -> list[dict[str, Any]]:
        """The service's JSON log lines (a line cut short by SIGKILL is skipped)."""
        entries = []
        for line in (self.runtime.log_dir / f"{name}.log").read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def close(self) -> None:
        self.http.close()
        self.db.close()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    started: list[tuple[Stack, LocalRuntime]] = []

    def make(**config: Any) -> Stack:
        db_name = f"app_e2e_{uuid.uuid4().hex[:10]}"
        extra = {
            "WORKER_POLL_SECONDS": "2",
            "WORKER_RETRY_BASE_SECONDS": "1",
            "WEB_CONCURRENCY": "2",
            "LOG_LEVEL": "INFO",
            **config.pop("extra", {}),
        }
        cfg = LocalConfig(
            api_port=free_port(),
            moto_port=free_port(),
            notifier_port=free_port(),
            db_name=db_name,
            redis_key_prefix=f"e2e:{uuid.uuid4().hex[:8]}:",
            visibility_timeout=4,
            state_dir=tmp_path / "local",
            seed_products=0,
            extra=extra,
            **config,
        )
        runtime = LocalRuntime(cfg, echo=lambda _line: None)
        runtime.up()
        stack = Stack(runtime, db_name)
        started.append((stack, runtime))
        return stack

    yield make
    for stack, runtime in started:
        stack.close()
        runtime.stop()
        assert not runtime.dead() or all(p.poll() is not None for p in runtime.procs.values())
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{stack.db_name}" WITH (FORCE)')
        r = redis.Redis(host="127.0.0.1", port=6379)
        keys = list(r.scan_iter(match=f"{runtime.config.redis_key_prefix}*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()
