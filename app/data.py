"""PostgreSQL access: a writer pool and a reader pool (psycopg 3 + psycopg_pool), migrations.

Reads that need no fresh data go to the reader through its breaker; when the reader is down (or its
breaker is open) they go to the writer. Parameterised SQL only.
"""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, LiteralString, TypeVar

import psycopg
import structlog
from psycopg.pq import ExecStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from app.bulkhead import DB_READER, DB_WRITER, Bulkhead
from app.db_login import master_login
from app.resilience import CircuitBreaker, CircuitOpenError, retrying

if TYPE_CHECKING:
    import redis

    from app.settings import Settings

log = structlog.get_logger("app.data")
T = TypeVar("T")
DB_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, PoolTimeout)
READER_UNAVAILABLE: tuple[type[BaseException], ...] = (CircuitOpenError, *DB_ERRORS)
MIGRATION_LOCK_ID = 7_001_001
# A connection handed back healthy less than this long ago skips the pool's liveness round trip (the bypass
# window of HikariCP and others): under load every checkout would otherwise pay one extra round trip, while
# an idle connection, the one a failover or an idle timeout breaks, is still checked before use.
CHECK_IDLE_AFTER_SECONDS = 1.0
# A connection is closed and replaced after this long: IAM sign-in is checked only when a connection opens, so
# this bounds how long a task keeps a connection its role may no longer open.
POOL_MAX_LIFETIME_SECONDS = 1800.0
# An idle connection is closed after this long, before RDS Proxy drops it (its idle client timeout, 1800 s by
# default): the pool, not a failed query, finds out first.
POOL_MAX_IDLE_SECONDS = 600.0


class _Lease:
    """`with _Lease(pool) as conn:` a pool connection with dict rows, stamped healthy when handed back without an
    error (`_check_if_idle` reads the stamp).

    Not `pool.connection()`: the connections are in autocommit and blocks that need a transaction open one
    (`conn.transaction()`), so that context manager's commit on exit only costs a round of psycopg's wait
    machinery per query; and the stamp is set here rather than in the pool's `reset` hook, with which
    psycopg_pool hands every returned connection to its worker thread (a thread hand-off per query).
    """

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def __enter__(self) -> psycopg.Connection[dict[str, Any]]:
        conn = self._pool.getconn()
        conn.row_factory = dict_row  # type: ignore[assignment]
        self._conn = conn
        return conn  # type: ignore[return-value]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self._conn._app_returned_at = time.monotonic()  # type: ignore[attr-defined]
        # A connection left in a transaction or broken is rolled back or discarded by the pool.
        self._pool.putconn(self._conn)


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    returned = getattr(conn, "_app_returned_at", None)
    if returned is not None and time.monotonic() - returned < CHECK_IDLE_AFTER_SECONDS and not conn.broken:
        return
    ConnectionPool.check_connection(conn)


class Database:
    def __init__(
        self,
        settings: Settings,
        redis_client: Callable[[], redis.Redis | None] | None = None,
        *,
        min_connections: int = 1,
    ) -> None:
        """`min_connections`: kept open in each pool (filled in the background once opened)."""
        self.settings = settings
        self._min_connections = min(min_connections, settings.db_pool_max)
        self.writer = self._pool("writer", settings.db_writer_host)
        self.reader = self._pool("reader", settings.db_reader_host) if settings.db_reader_host else None
        self.reader_breaker = CircuitBreaker("db-reader", settings, redis_client, DB_ERRORS)
        # A full compartment raises CompartmentFull (503), the reader's too: falling back to the writer would
        # hand a saturated reader's load to the writer's compartment, starving the orders it exists to keep.
        self.writer_bulkhead = Bulkhead.for_dependency(DB_WRITER, settings)
        self.reader_bulkhead = Bulkhead.for_dependency(DB_READER, settings)

    def _pool(self, name: str, host: str) -> ConnectionPool:
        settings = self.settings

        def sign_in() -> dict[str, Any]:
            # Called for each new connection, so each gets a current IAM token (or the password).
            # Autocommit: a lone statement is its own transaction (one round trip, no BEGIN or COMMIT), and the
            # blocks that need several statements to commit together open one with `conn.transaction()`.
            return {**settings.conninfo(host), "autocommit": True}

        return ConnectionPool(
            kwargs=sign_in,
            min_size=self._min_connections,
            max_size=settings.db_pool_max,
            timeout=settings.outbound_timeout,
            name=name,
            open=False,
            check=_check_if_idle,
            reconnect_timeout=60,
            max_lifetime=POOL_MAX_LIFETIME_SECONDS,
            max_idle=POOL_MAX_IDLE_SECONDS,
        )

    def open(self, ready_within: float = 0.0) -> bool:
        """Open the pools (they connect in the background); with `ready_within`, wait up to that many
        seconds for the writer's minimum connections. Returns whether they are there."""
        self.writer.open(wait=False)
        if self.reader is not None:
            self.reader.open(wait=False)
        # Not ConnectionPool.wait(): on a timeout it closes the pool, and a slow start must not stop the task.
        deadline = time.monotonic() + ready_within
        while self.writer.get_stats().get("pool_available", 0) < self._min_connections:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        self.writer.close()
        if self.reader is not None:
            self.reader.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A writer transaction: committed on success, rolled back on error."""
        with self.writer_bulkhead, _Lease(self.writer) as conn, conn.transaction():
            yield conn

    def execute(self, sql: LiteralString, params: dict[str, Any] | tuple[Any, ...]) -> list[dict[str, Any]]:
        """One statement on the writer as its own transaction; returns its rows (none for a plain write).

        In autocommit the statement is the transaction: one round trip instead of BEGIN, statement, COMMIT.
        """
        with self.writer_bulkhead, _Lease(self.writer) as conn:
            cur = conn.execute(sql, params)
            # The result's status, not `cur.description`, which builds a Column object per column on every read.
            result = cur.pgresult
            return cur.fetchall() if result is not None and result.status == ExecStatus.TUPLES_OK else []

    def read(self, fn: Callable[[psycopg.Connection[dict[str, Any]]], T], *, fresh: bool = False) -> T:
        """Run an idempotent read: on the reader unless `fresh`, falling back to the writer; retried."""

        def on(pool: ConnectionPool, bulkhead: Bulkhead) -> T:
            # One transaction: a read of several statements sees one snapshot.
            with bulkhead, _Lease(pool) as conn, conn.transaction():
                return fn(conn)

        if not fresh and self.reader is not None:
            reader = self.reader
            try:
                return self.reader_breaker.call(lambda: on(reader, self.reader_bulkhead))
            except READER_UNAVAILABLE as exc:
                log.info("reader_fallback_to_writer", reason=type(exc).__name__)
        for attempt in retrying(DB_ERRORS, attempts=3):
            with attempt:
                return on(self.writer, self.writer_bulkhead)
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self, *, reader: bool = False) -> None:
        pool = self.reader if reader and self.reader is not None else self.writer
        with pool.connection(timeout=self.settings.outbound_timeout) as conn:
            conn.execute("SELECT 1")


def migrations() -> list[tuple[str, str]]:
    files = importlib.resources.files("app.migrations")
    return sorted((f.name, f.read_text()) for f in files.iterdir() if f.name.endswith(".sql"))


def migration_conninfo(settings: Settings) -> dict[str, object]:
    """Where and as whom migrations run: with DB_MIGRATION_MASTER_ARN, the master user on DB_MIGRATION_HOST (Aurora's
    writer: RDS Proxy admits IAM users only), with the password the secret holds now, so the RDS-managed
    rotation never leaves a stale one behind; otherwise DB_USER as the app signs in (locally)."""
    host = settings.db_migration_host or settings.db_writer_host
    if not settings.db_migration_master_arn:
        return settings.conninfo(host)
    user, password = master_login(settings)
    return {**settings.endpoint_conninfo(host), "user": user, "password": password}


def _connect_to_migrate(settings: Settings) -> psycopg.Connection[Any]:
    # Each attempt reads the secret again: one that rotated between the read and the sign-in is read anew.
    for attempt in retrying(DB_ERRORS, attempts=3):
        with attempt:
            return psycopg.connect(**migration_conninfo(settings), autocommit=True)  # type: ignore[arg-type]
    raise AssertionError("unreachable")  # pragma: no cover


def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations in order; safe to run twice and from several tasks at once.

    Migration 0007 creates the app's own role (`contract.DB_APP_USER`); the migrator owns the schema.
    """
    applied: list[str] = []
    with _connect_to_migrate(settings) as conn:
        conn.execute("SET statement_timeout = 0")  # migrations may legitimately run longer than a request
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            for version, sql in migrations():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
                log.info("migration_applied", version=version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied
