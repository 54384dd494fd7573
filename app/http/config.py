"""Config and feature flags, cached per process for an hour and dropped everywhere on change."""

from __future__ import annotations

import json
import re
from typing import Annotated

from flask import Blueprint, Response, jsonify
from pydantic import AfterValidator, BaseModel, ConfigDict, JsonValue

from app.http.util import json_body, require_admin, services
from app.problems import Problem
from app.types import clean_json

bp = Blueprint("config", __name__)
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_KEY = re.compile(KEY_PATTERN)


class ConfigValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Annotated[JsonValue, AfterValidator(clean_json)]


@bp.get("/api/config")
def get_config() -> Response:
    return jsonify(services().config.get())


@bp.put("/api/admin/config/<key>")
def put_config(key: str) -> Response:
    require_admin()
    if not _KEY.fullmatch(key):
        raise Problem.for_field(400, "Invalid request", "key", "path", f"must match {KEY_PATTERN}")
    body = json_body(ConfigValue)
    svc = services()
    with svc.db.transaction() as conn:
        conn.execute(
            "INSERT INTO app_config (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            (key, json.dumps(body.value)),
        )
    svc.config.publish_invalidation()
    return jsonify({"key": key, "value": body.value})
