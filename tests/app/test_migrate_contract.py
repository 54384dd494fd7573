from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg

from app import contract, gunicorn_conf
from app.data import migrate, migrations
from app.settings import Settings
from tests.app.conftest import PG

REPO = Path(__file__).resolve().parents[2]


def test_migrations_are_safe_to_run_twice_and_concurrently() -> None:
    name = f"app_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(db_name=name)
        results: list[list[str]] = []
        threads = [threading.Thread(target=lambda: results.append(migrate(settings))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(len(r) for r in results) == [0, len(migrations())]
        assert migrate(settings) == []
        with psycopg.connect(**PG, dbname=name) as conn:  # type: ignore[arg-type]
            rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert [r[0] for r in rows] == [v for v, _ in migrations()]
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`app migrate` as the init container runs it: a process of its own with only these settings."""
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "migrate"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_migrate_uses_the_contract_setting_names(database: str) -> None:
    env = {**os.environ, contract.DB_NAME: database, contract.DB_WRITER_HOST: "127.0.0.1", contract.DB_USER: "postgres"}
    out = run_migrate(env)
    assert out.returncode == 0, out.stderr
    assert "migrations applied: 0" in out.stdout


def test_cli_migrate_signs_in_as_the_master_from_its_secret_where_the_app_cannot(moto: Any) -> None:
    """As in AWS: DB_USER is the app's role (which may not create tables) on an endpoint migrations do not use;
    `app migrate` signs in as the user the master secret names, on DB_MIGRATION_HOST."""
    master = json.dumps({"username": "postgres", "password": "unused-by-trust-auth"})
    arn = moto.client("secretsmanager").create_secret(Name=f"rds!cluster-{uuid.uuid4().hex[:8]}", SecretString=master)
    name = f"app_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        contract.DB_NAME: name,
        contract.DB_WRITER_HOST: "127.0.0.2",  # the proxy's place: nothing listens there
        contract.DB_USER: contract.DB_APP_USER,
        contract.DB_MIGRATION_HOST: "127.0.0.1",
        contract.DB_MIGRATION_MASTER_ARN: arn["ARN"],
        contract.AWS_ENDPOINT_URL: moto.url,
    }
    try:
        out = run_migrate(env)
        assert out.returncode == 0, out.stderr
        assert f"migrations applied: {len(migrations())}" in out.stdout
        with psycopg.connect(**PG, dbname=name) as conn:  # type: ignore[arg-type]
            owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert owners == [("postgres",)]
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_contract_module_imports_nothing_heavy() -> None:
    code = "import sys, app.contract; print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('flask','psycopg','redis','boto3','botocore','pydantic','structlog','opentelemetry')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_graceful_timeout_is_below_the_stop_timeout_and_gunicorn_uses_it() -> None:
    assert contract.GRACEFUL_TIMEOUT_SECONDS < contract.STOP_TIMEOUT_SECONDS
    assert gunicorn_conf.graceful_timeout == contract.GRACEFUL_TIMEOUT_SECONDS
    assert gunicorn_conf.bind.endswith(f":{contract.API_PORT}")


def test_every_contract_setting_is_read_by_settings_under_its_name() -> None:
    aliases: set[str] = set()
    for field in Settings.model_fields.values():
        alias: Any = field.validation_alias
        if alias is not None:
            aliases.update(a for a in alias.choices if isinstance(a, str))
    gunicorn_only = {contract.WEB_CONCURRENCY, contract.GUNICORN_THREADS, contract.PORT}
    assert contract.SETTING_NAMES - gunicorn_only <= aliases
    assert aliases <= contract.SETTING_NAMES
    assert {
        contract.DB_PASSWORD,
        contract.REDIS_AUTH_TOKEN,
        contract.ADMIN_TOKEN,
        contract.NOTIFICATION_API_KEY,
    } == contract.SECRET_SETTING_NAMES


def test_settings_are_read_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv(contract.DB_READER_HOST, "reader.internal")
    monkeypatch.setenv(contract.REDIS_TLS, "true")
    monkeypatch.setenv(contract.DB_PASSWORD, "hunter2")
    s = Settings()
    assert s.db_reader_host == "reader.internal" and s.redis_tls is True
    assert "hunter2" not in repr(s)


def test_admin_token_is_read_from_secrets_manager(make_app: Any, moto: Any, add_product: Any) -> None:
    secret_id = f"admin-{uuid.uuid4().hex[:8]}"
    moto.client("secretsmanager").create_secret(Name=secret_id, SecretString="from-secrets-manager")
    client = make_app(admin_token="", admin_token_secret_id=secret_id).test_client()
    pid = add_product()
    body = {"stock": 3}
    assert (
        client.put(f"/api/admin/products/{pid}/stock", json=body, headers={"Authorization": "Bearer nope"}).status_code
        == 403
    )
    ok = client.put(
        f"/api/admin/products/{pid}/stock", json=body, headers={"Authorization": "Bearer from-secrets-manager"}
    )
    assert ok.status_code == 200
