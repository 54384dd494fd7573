from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.app.conftest import ADMIN

REPO = Path(__file__).resolve().parents[2]


def test_config_is_served_from_process_memory(client: Any, db: Any) -> None:
    first = client.get("/api/config").json
    assert "features" in first
    db.execute("UPDATE app_config SET value = '\"changed behind its back\"' WHERE key = 'banner'")
    try:
        assert client.get("/api/config").json["banner"] == first["banner"]
    finally:
        db.execute("UPDATE app_config SET value = %s WHERE key = 'banner'", (f'"{first["banner"]}"',))


def test_admin_change_drops_the_cached_config_on_every_task(make_app: Any) -> None:
    task_a, task_b = make_app().test_client(), make_app().test_client()
    assert task_b.get("/api/config").status_code == 200  # task B now holds the config in memory
    time.sleep(0.2)  # its subscriber is listening
    value = {"on": time.time_ns()}
    resp = task_a.put(
        "/api/admin/config/flag_test", json={"value": value}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert resp.status_code == 200
    deadline = time.monotonic() + 5
    while task_b.get("/api/config").json.get("flag_test") != value:
        assert time.monotonic() < deadline, "task B never dropped its copy"
        time.sleep(0.05)


def test_bad_config_key_is_400_naming_it(client: Any) -> None:
    resp = client.put("/api/admin/config/Bad-Key", json={"value": 1}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status_code == 400 and resp.json["errors"][0]["field"] == "key"


# Task B, in a process of its own: an admin changes a flag (the write and the invalidation it publishes).
_OTHER_TASK = """
import json, sys
from app.http.factory import create_app
from app.settings import Settings
app = create_app(Settings(**json.loads(sys.argv[1])))
resp = app.test_client().put(
    "/api/admin/config/flag_race", json={"value": sys.argv[2]}, headers={"Authorization": "Bearer " + sys.argv[3]}
)
app.extensions["services"].close()
sys.exit(0 if resp.status_code == 200 else 1)
"""


def test_a_load_overtaken_by_an_invalidation_is_not_kept(make_app: Any, settings: Any) -> None:
    """Task A's load reads the old flags; task B (another process) changes one and its invalidation reaches A
    before A's load finishes. A serves that load once but keeps nothing, so its next read has the change, not the
    old flags for the cache's hour."""
    app = make_app()
    client, config = app.test_client(), app.extensions["services"].config
    client.put("/api/admin/config/flag_race", json={"value": "old"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert client.get("/api/config").json["flag_race"] == "old"  # subscribed, and holding the flags
    time.sleep(0.2)

    loaded, resume, invalidated = threading.Event(), threading.Event(), threading.Event()
    load, drop = config._loader, config.invalidate_local

    def slow_load() -> dict[str, Any]:
        value: dict[str, Any] = load()
        loaded.set()
        assert resume.wait(10)
        return value

    def noted_drop() -> None:
        drop()
        invalidated.set()

    config._loader, config.invalidate_local = slow_load, noted_drop
    config.invalidate_local()  # this task's copy goes (as after any change): the next read loads
    invalidated.clear()
    first: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: first.append(config.get()))
    reader.start()
    assert loaded.wait(10)  # A has read the old rows
    fields = {
        "db_name": settings.db_name,
        "db_user": settings.db_user,
        "redis_key_prefix": settings.redis_key_prefix,
        "admin_token": ADMIN,
        "log_level": "ERROR",
    }
    other = subprocess.run(
        [sys.executable, "-c", _OTHER_TASK, json.dumps(fields), "new", ADMIN], cwd=REPO, check=False, timeout=60
    )
    assert other.returncode == 0
    assert invalidated.wait(10)  # B's invalidation reached A while its load was in flight
    config._loader = load
    resume.set()
    reader.join(10)
    assert first[0]["flag_race"] == "old"  # that load's caller got what it read
    assert config.get()["flag_race"] == "new"


def test_config_loads_read_the_writer(make_app: Any, monkeypatch: Any) -> None:
    services = make_app().extensions["services"]
    asked: list[bool] = []
    read = services.db.read

    def spy(fn: Any, *, fresh: bool = False) -> Any:
        asked.append(fresh)
        return read(fn, fresh=fresh)

    monkeypatch.setattr(services.db, "read", spy)
    services.config.invalidate_local()
    services.config.get()
    assert asked == [True]
