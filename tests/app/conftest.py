"""Fixtures: a database of its own, a Redis key prefix of its own, moto's server, app instances."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg
import pytest
import redis
from moto.server import ThreadedMotoServer
from psycopg.rows import dict_row

from app import contract
from app.data import migrate
from app.http.factory import create_app
from app.settings import Settings

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
ADMIN = "admin-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A migrated database of its own, dropped afterwards."""
    name = f"app_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(Settings(db_name=name))
        yield name
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    with fresh_database() as name:
        yield name


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class Moto:
    """moto's server on a loopback port, which a test may stop and start again (its state survives)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._cls = ThreadedMotoServer
        self.server: Any = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1")


@pytest.fixture(scope="session")
def moto(aws_env: None) -> Iterator[Moto]:
    server = Moto()
    yield server
    server.stop()


@pytest.fixture
def queue_url(moto: Moto) -> str:
    return str(moto.client("sqs").create_queue(QueueName=f"orders-{uuid.uuid4().hex[:8]}")["QueueUrl"])


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"apptest:{uuid.uuid4().hex[:10]}:"
    yield value
    r = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(r.scan_iter(match=f"{value}*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture
def make_settings(database: str, prefix: str, moto: Moto) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "db_name": database,
            # The app's own role, as in AWS (migration 0007): every app test proves its privileges are enough.
            "db_user": contract.DB_APP_USER,
            "redis_key_prefix": prefix,
            "admin_token": ADMIN,
            "rate_limit_per_minute": 100_000,
            "aws_endpoint_url": moto.url,
            "breaker_reset_seconds": 1.0,
            "breaker_min_calls": 3,
            "log_level": "WARNING",
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Any]]:
    built: list[Any] = []

    def make(**overrides: Any) -> Any:
        app = create_app(make_settings(**overrides))
        built.append(app)
        return app

    yield make
    for app in built:
        app.extensions["services"].close()


@pytest.fixture
def client(make_app: Callable[..., Any]) -> Any:
    return make_app().test_client()


@pytest.fixture
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(**PG, dbname=database, autocommit=True, row_factory=dict_row) as conn:  # type: ignore[arg-type]
        yield conn


@pytest.fixture
def add_product(db: psycopg.Connection[Any]) -> Callable[..., int]:
    def add(price: int = 1000, stock: int = 100, category: str = "general", name: str = "Widget") -> int:
        row = db.execute(
            "INSERT INTO products (sku, name, category, price_cents, stock) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (f"SKU-{uuid.uuid4().hex[:12]}", name, category, price, stock),
        ).fetchone()
        assert row is not None
        return int(row["id"])

    return add


class RedisServer:
    """A redis-server of the test's own on a free loopback port, to stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is needed"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
