from __future__ import annotations

import hashlib
import time
from typing import Any

import redis


def _key(prefix: str, token: str) -> str:
    return f"{prefix}session:{hashlib.sha256(token.encode()).hexdigest()}"


def test_session_is_created_and_identifies_the_user(client: Any) -> None:
    created = client.post("/api/user/sessions", json={"email": "ada@example.com", "name": "Ada"})
    assert created.status_code == 201 and created.json["expires_in"] == 900
    me = client.get("/api/user/me", headers={"Authorization": f"Bearer {created.json['token']}"})
    assert me.status_code == 200 and me.json["email"] == "ada@example.com"


def test_session_ttl_slides_on_use(client: Any, prefix: str) -> None:
    token = client.post("/api/user/sessions", json={"email": "a@example.com"}).json["token"]
    r = redis.Redis()
    r.expire(_key(prefix, token), 10)
    client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
    assert r.ttl(_key(prefix, token)) > 890


def test_expired_session_is_rejected(client: Any, prefix: str) -> None:
    token = client.post("/api/user/sessions", json={"email": "a@example.com"}).json["token"]
    redis.Redis().pexpire(_key(prefix, token), 1)
    time.sleep(0.01)
    resp = client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and resp.mimetype == "application/problem+json"


def test_ended_session_no_longer_works(client: Any) -> None:
    token = client.post("/api/user/sessions", json={"email": "a@example.com"}).json["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.delete("/api/user/sessions/current", headers=auth).status_code == 204
    assert client.get("/api/user/me", headers=auth).status_code == 401


def test_raw_token_is_never_stored_in_redis(client: Any, prefix: str) -> None:
    token = client.post("/api/user/sessions", json={"email": "a@example.com"}).json["token"]
    keys = [k.decode() for k in redis.Redis().scan_iter(match=f"{prefix}session:*")]
    assert keys == [_key(prefix, token)] and token not in keys[0]


def test_session_without_email_names_the_field(client: Any) -> None:
    resp = client.post("/api/user/sessions", json={"name": "x"})
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "email"
