"""The app's own database role (migration 0007): what it may do, what it may not, and how it comes to exist.

The rest of tests/app signs in as this role too (conftest `make_settings`), so every flow the app has is proof
that its privileges are enough.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from app import contract
from app.data import migrate, migrations
from app.settings import Settings
from tests.app.conftest import PG

APP = contract.DB_APP_USER
ROLE_MIGRATION = "0007_app_role.sql"


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"app_role_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def as_app(database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(**{**PG, "user": APP}, dbname=database, autocommit=True)  # type: ignore[arg-type]


def as_migrator(database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(**PG, dbname=database, autocommit=True)  # type: ignore[arg-type]


def test_the_app_role_signs_in_owns_nothing_and_holds_no_power_over_roles_or_databases(database: str) -> None:
    with as_migrator(database) as conn:
        role = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolpassword"
            " FROM pg_authid WHERE rolname = %s",
            (APP,),
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s", (APP,)
        ).fetchone()
    # It may sign in, with no password: in AWS with IAM tokens only (rds_iam).
    assert role == (True, False, False, False, False, False, None)
    assert owned == (0,)


def test_the_app_role_does_the_apps_work(database: str) -> None:
    with as_app(database) as conn, conn.transaction(force_rollback=True):
        product = conn.execute(
            "INSERT INTO products (sku, name, price_cents, stock) VALUES (%s, 'w', 100, 5) RETURNING id",
            (f"SKU-{uuid.uuid4().hex[:10]}",),
        ).fetchone()
        assert product is not None
        conn.execute("UPDATE products SET stock = stock - 1 WHERE id = %s", product)
        conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")
        conn.execute("LISTEN outbox")
        # The migrations' functions run with the caller's rights: the app may call them.
        functions = conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND NOT has_function_privilege(%s, p.oid, 'EXECUTE')",
            (APP,),
        ).fetchall()
        assert functions == []


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE products",
        "TRUNCATE orders",
        "ALTER TABLE orders ADD COLUMN sneaky TEXT",
        "CREATE TABLE sneaky (id INT)",
        "CREATE ROLE sneaky LOGIN",
        "CREATE DATABASE sneaky",
        "INSERT INTO schema_migrations (version) VALUES ('9999_sneaky.sql')",
        "DELETE FROM schema_migrations",
        "CREATE OR REPLACE FUNCTION place_order() RETURNS void LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_the_app_role_cannot_change_the_schema_roles_or_migration_history(database: str, statement: str) -> None:
    with as_app(database) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement.encode())


def test_what_a_later_migration_creates_is_the_apps_to_use() -> None:
    with fresh_database() as name:
        migrate(Settings(db_name=name))
        with as_migrator(name) as conn:  # as a migration after 0007 would
            conn.execute("CREATE TABLE later (id BIGSERIAL PRIMARY KEY, note TEXT)")
        with as_app(name) as conn:
            conn.execute("INSERT INTO later (note) VALUES ('sequence and table granted')")
            assert conn.execute("SELECT count(*) FROM later").fetchone() == (1,)


def test_the_role_is_made_once_even_when_databases_of_one_cluster_migrate_at_the_same_time() -> None:
    # Roles are cluster-wide and the migration lock is per database: both create the role or find it made.
    with fresh_database() as first, fresh_database() as second:
        errors: list[BaseException] = []

        def run(name: str) -> None:
            try:
                migrate(Settings(db_name=name))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(name,)) for name in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for name in (first, second):
            with as_app(name) as conn:
                conn.execute("SELECT count(*) FROM products")


def test_on_aurora_the_role_signs_in_with_iam_tokens_only() -> None:
    """RDS has an `rds_iam` role; the migration makes the app's role a member. Plain PostgreSQL has none: the
    role is made here, in a transaction rolled back, so no other database of this server ever sees it."""
    role_sql = dict(migrations())[ROLE_MIGRATION]
    with fresh_database() as name:
        migrate(Settings(db_name=name))
        with psycopg.connect(**PG, dbname=name) as conn:  # type: ignore[arg-type]
            conn.execute("CREATE ROLE rds_iam NOLOGIN")
            conn.execute(role_sql.encode())
            member = conn.execute("SELECT pg_has_role(%s, 'rds_iam', 'MEMBER')", (APP,)).fetchone()
            conn.rollback()
    assert member == (True,)


def test_the_app_roles_statements_are_bounded_by_the_outbound_timeout_without_startup_options(database: str) -> None:
    # Through RDS Proxy the role's own default is the only place the bound can come from.
    with as_migrator(database) as conn:
        settings = conn.execute(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
            " JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = %s AND d.datname = %s",
            (APP, database),
        ).fetchone()
    assert settings == ([f"statement_timeout={int(contract.OUTBOUND_TIMEOUT_SECONDS)}s"],)
    iam = Settings(db_login=contract.DB_LOGIN_IAM, db_sslmode="require", db_name=database)
    with as_app(database) as conn:
        assert "options" not in iam.endpoint_conninfo("127.0.0.1")
        shown = conn.execute("SHOW statement_timeout").fetchone()
    assert shown == (f"{int(contract.OUTBOUND_TIMEOUT_SECONDS)}s",)
