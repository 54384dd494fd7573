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


def test_one_statement_runs_as_its_own_transaction_and_the_connection_goes_back_transactional(
    make_settings: Any,
) -> None:
    db = Database(make_settings(db_pool_max=1))
    db.open()
    try:
        db.execute("CREATE TEMP TABLE IF NOT EXISTS t (n INT)", ())  # one connection: the table stays visible
        assert db.execute("INSERT INTO t VALUES (%s), (%s) RETURNING n", (1, 2)) == [{"n": 1}, {"n": 2}]
        assert db.execute("UPDATE t SET n = n + 1", ()) == []
        with pytest.raises(RuntimeError), db.transaction() as conn:  # the same connection, back in a transaction
            conn.execute("DELETE FROM t")
            raise RuntimeError("rolled back")
        rows = db.read(lambda conn: conn.execute("SELECT n FROM t ORDER BY n").fetchall(), fresh=True)
        assert rows == [{"n": 2}, {"n": 3}]
    finally:
        db.close()


def test_open_waits_for_the_minimum_connections_without_closing_the_pool_when_they_are_late(
    make_settings: Any,
) -> None:
    db = Database(make_settings(db_pool_max=3), min_connections=3)
    try:
        assert db.open(ready_within=5) is True
        assert db.writer.get_stats()["pool_available"] == 3
    finally:
        db.close()
    # 127.0.0.2: loopback with nothing listening on the PostgreSQL port.
    unreachable = Database(make_settings(db_writer_host="127.0.0.2", db_pool_max=2), min_connections=2)
    try:
        start = time.monotonic()
        assert unreachable.open(ready_within=0.3) is False
        assert time.monotonic() - start < 2
        assert not unreachable.writer.closed  # still connecting in the background
    finally:
        unreachable.close()
