"""Signing in to PostgreSQL: IAM tokens per new connection (AWS), the master's current password for migrations."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from app import contract, db_login
from app.data import migration_conninfo
from app.db_login import TOKEN_LIFETIME_SECONDS, TOKEN_REUSE_SECONDS, IamTokens, rds_signer
from app.settings import Settings

PROXY = "platform-prod-aurora-proxy.proxy-c0ffee123abc.us-east-1.rds.amazonaws.com"


class FakeSigner:
    """Counts what it signs; each token says which signature it is."""

    def __init__(self) -> None:
        self.signed: list[tuple[str, int, str]] = []

    def __call__(self, host: str, port: int, user: str) -> str:
        self.signed.append((host, port, user))
        return f"token-{len(self.signed)}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_while_fresh_and_signed_anew_before_it_expires() -> None:
    signer, clock = FakeSigner(), Clock()
    tokens = IamTokens(signer, clock=clock)
    assert tokens.token(PROXY, 5432, "platform_app") == "token-1"
    clock.now += TOKEN_REUSE_SECONDS - 1
    assert tokens.token(PROXY, 5432, "platform_app") == "token-1"  # a pool filling up shares one signature
    clock.now += 1
    assert tokens.token(PROXY, 5432, "platform_app") == "token-2"
    # Refreshed with at least 10 of its 15 minutes left.
    assert TOKEN_LIFETIME_SECONDS - TOKEN_REUSE_SECONDS >= 600


def test_each_endpoint_and_user_has_its_own_token() -> None:
    signer = FakeSigner()
    tokens = IamTokens(signer, clock=Clock())
    tokens.token(PROXY, 5432, "platform_app")
    tokens.token(f"ro.{PROXY}", 5432, "platform_app")
    tokens.token(PROXY, 5432, "someone_else")
    assert signer.signed == [
        (PROXY, 5432, "platform_app"),
        (f"ro.{PROXY}", 5432, "platform_app"),
        (PROXY, 5432, "someone_else"),
    ]


def test_a_token_cannot_be_kept_past_its_life() -> None:
    with pytest.raises(ValueError, match="reuse_seconds must be 0 to 899"):
        IamTokens(FakeSigner(), reuse_seconds=TOKEN_LIFETIME_SECONDS)


def test_the_rds_signer_presigns_a_15_minute_connect_for_the_user_without_calling_aws(monkeypatch: Any) -> None:
    # Static credentials and no endpoint: a network call would fail, the token is computed locally.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session")
    token = rds_signer("us-east-1")(PROXY, 5432, "platform_app")
    url = urlsplit(f"https://{token}")
    query = parse_qs(url.query)
    assert (url.hostname, url.port) == (PROXY, 5432)
    assert query["Action"] == ["connect"] and query["DBUser"] == ["platform_app"]
    assert query["X-Amz-Expires"] == [str(TOKEN_LIFETIME_SECONDS)]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["us-east-1", "rds-db"]


def test_iam_sign_in_puts_a_current_token_in_each_new_connections_parameters(monkeypatch: Any) -> None:
    signer, clock = FakeSigner(), Clock()
    monkeypatch.setitem(db_login._tokens_by_region, "eu-west-1", IamTokens(signer, clock=clock))
    settings = Settings(
        db_login=contract.DB_LOGIN_IAM,
        db_sslmode="verify-full",
        db_user=contract.DB_APP_USER,
        db_password="ignored-in-iam-mode",
        aws_region="eu-west-1",
    )
    first = settings.conninfo(PROXY)
    assert (first["user"], first["password"], first["sslmode"]) == (contract.DB_APP_USER, "token-1", "verify-full")
    clock.now += TOKEN_REUSE_SECONDS
    assert settings.conninfo(PROXY)["password"] == "token-2"
    assert signer.signed == [(PROXY, 5432, contract.DB_APP_USER)] * 2


def test_password_sign_in_stays_the_local_default() -> None:
    settings = Settings(db_password="local-password")
    assert settings.db_login == contract.DB_LOGIN_PASSWORD
    assert settings.conninfo("127.0.0.1")["password"] == "local-password"
    assert "password" not in settings.endpoint_conninfo("127.0.0.1")


def test_bad_sign_in_settings_name_the_field_and_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match="DB_LOGIN must be one of 'iam', 'password' \\(got 'kerberos'\\)"):
        Settings(db_login="kerberos")
    with pytest.raises(ValidationError, match="DB_SSLMODE must be one of require, verify-ca, verify-full when"):
        Settings(db_login=contract.DB_LOGIN_IAM, db_sslmode="prefer")


def _master_secret(moto: Any, username: str, password: str) -> str:
    sm = moto.client("secretsmanager")
    secret = sm.create_secret(
        Name=f"rds!cluster-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"username": username, "password": password}),
    )
    return str(secret["ARN"])


def test_migrations_sign_in_as_the_master_with_the_password_the_secret_holds_at_that_moment(moto: Any) -> None:
    arn = _master_secret(moto, "platform_admin", "before-rotation")
    settings = Settings(
        db_writer_host="proxy.internal",
        db_migration_host="aurora-writer.internal",
        db_migration_master_arn=arn,
        db_login=contract.DB_LOGIN_IAM,
        db_sslmode="require",
        db_user=contract.DB_APP_USER,
        aws_endpoint_url=moto.url,
    )
    info = migration_conninfo(settings)
    assert (info["host"], info["user"], info["password"]) == (
        "aurora-writer.internal",
        "platform_admin",
        "before-rotation",
    )
    # RDS rotates the master password (every 7 days): the next migration reads the new one.
    moto.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"username": "platform_admin", "password": "after-rotation"})
    )
    assert migration_conninfo(settings)["password"] == "after-rotation"


def test_a_secret_that_is_not_a_master_login_is_refused_without_echoing_it(moto: Any) -> None:
    arn = str(
        moto.client("secretsmanager").create_secret(Name=f"x-{uuid.uuid4().hex[:8]}", SecretString="hunter2")["ARN"]
    )
    settings = Settings(db_migration_master_arn=arn, aws_endpoint_url=moto.url)
    with pytest.raises(ValueError, match="not an RDS master user secret") as raised:
        migration_conninfo(settings)
    assert "hunter2" not in str(raised.value)


def test_without_a_master_secret_migrations_sign_in_as_the_app_is_configured_locally() -> None:
    settings = Settings(db_writer_host="127.0.0.1", db_user="postgres", db_password="pw")
    info = migration_conninfo(settings)
    assert (info["host"], info["user"], info["password"]) == ("127.0.0.1", "postgres", "pw")
