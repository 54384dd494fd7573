"""The database pools: liveness checks only where a connection may have gone bad."""

from __future__ import annotations

import time
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from app import data
from app.data import Database


@pytest.fixture
def checks(monkeypatch: Any) -> list[int]:
    calls: list[int] = []
    real = ConnectionPool.check_connection

    def counting(conn: Any) -> None:
        calls.append(1)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    return calls


def _backend_pid(db: Database) -> int:
    return int(db.read(lambda conn: conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"], fresh=True))


def test_a_connection_handed_back_moments_ago_skips_the_liveness_round_trip(
    make_settings: Any, checks: list[int]
) -> None:
    db = Database(make_settings(db_pool_max=1))
    db.open()
    try:
        first = _backend_pid(db)
        checks.clear()
        for _ in range(5):
            assert _backend_pid(db) == first
        assert checks == []
    finally:
        db.close()


def test_a_connection_killed_while_idle_is_checked_and_replaced_before_use(
    make_settings: Any, checks: list[int], db: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(data, "CHECK_IDLE_AFTER_SECONDS", 0.2)
    pool = Database(make_settings(db_pool_max=1))
    pool.open()
    try:
        victim = _backend_pid(pool)
        db.execute("SELECT pg_terminate_backend(%s)", (victim,))  # a failover or an idle timeout, in effect
        time.sleep(0.3)
        checks.clear()
        # A write (no retry around it) still gets a working connection: the idle one failed its check.
        with pool.transaction() as conn:
            replacement = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
        assert checks and replacement != victim
    finally:
        pool.close()
