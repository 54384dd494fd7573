"""The database pools: liveness checks only where a connection may have gone bad, a current IAM token per new
connection, connections recycled in time."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from app import contract, data, db_login
from app.data import Database
from app.db_login import TOKEN_REUSE_SECONDS, IamTokens
from app.settings import Settings
from stack_config.schema import DatabaseConfig


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


def test_each_new_pool_connection_signs_in_with_a_current_iam_token(make_settings: Any, monkeypatch: Any) -> None:
    signed: list[str] = []
    now = [0.0]

    def signer(host: str, port: int, user: str) -> str:
        signed.append(user)
        return f"token-{len(signed)}"

    monkeypatch.setitem(db_login._tokens_by_region, "eu-west-2", IamTokens(signer, clock=lambda: now[0]))
    presented: list[object] = []
    real_connect = psycopg.Connection.connect

    def recording_connect(cls: Any, conninfo: str = "", **kwargs: Any) -> Any:
        presented.append(kwargs.get("password"))
        return real_connect(conninfo, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(recording_connect))
    settings = make_settings(
        db_login=contract.DB_LOGIN_IAM, db_sslmode="require", aws_region="eu-west-2", db_pool_max=2
    )
    # Local PostgreSQL has no TLS and trusts loopback: the token is presented, not checked.
    db = Database(settings.model_copy(update={"db_sslmode": "disable"}))
    db.open(ready_within=5)
    try:
        now[0] += TOKEN_REUSE_SECONDS  # the first token is due for renewal when the pool grows
        with db.writer.connection(), db.writer.connection():
            pass
    finally:
        db.close()
    assert presented == ["token-1", "token-2"]
    assert signed == [contract.DB_APP_USER] * 2


def test_pool_connections_are_recycled_before_rds_proxy_drops_them() -> None:
    proxy_idle_timeout = DatabaseConfig.model_fields["proxy_idle_client_timeout_seconds"].default
    db = Database(Settings(db_pool_max=1))
    assert db.writer.max_idle == data.POOL_MAX_IDLE_SECONDS < proxy_idle_timeout
    # IAM is checked at sign-in only: a role that lost `rds-db:connect` keeps a connection this long at most.
    assert db.writer.max_lifetime == data.POOL_MAX_LIFETIME_SECONDS <= 3600
