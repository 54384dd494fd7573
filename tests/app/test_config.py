from __future__ import annotations

import time
from typing import Any

from tests.app.conftest import ADMIN


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
