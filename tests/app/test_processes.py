"""The container commands as processes: `app relay` under SIGTERM, tracing on, Redis AUTH."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from app import contract
from tests.app.conftest import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]


def test_app_relay_command_publishes_and_stops_cleanly_on_sigterm(
    client: Any, add_product: Any, db: Any, database: str, prefix: str, moto: Any, queue_url: str
) -> None:
    db.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
    env = {
        **os.environ,
        contract.DB_NAME: database,
        contract.REDIS_KEY_PREFIX: prefix,
        contract.QUEUE_URL: queue_url,
        contract.AWS_ENDPOINT_URL: moto.url,
        contract.AWS_REGION: "us-east-1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "relay"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        resp = client.post(
            "/api/checkout/orders",
            json={"email": "r@example.com", "items": [{"product_id": add_product(), "quantity": 1}]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert resp.status_code == 202
        sqs = moto.client("sqs")
        deadline, bodies = time.monotonic() + 20, []
        while not bodies and time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
            bodies = [json.loads(m["Body"]) for m in got]
        assert [b["data"]["order_id"] for b in bodies] == [resp.json["id"]]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tracing_exports_flask_and_database_spans_when_enabled(database: str, prefix: str) -> None:
    code = (
        "from app.http.factory import create_app\n"
        "app = create_app()\n"
        "c = app.test_client()\n"
        "assert c.get('/api/config').status_code == 200\n"
        "from opentelemetry import trace\n"
        "trace.get_tracer_provider().force_flush()\n"
        "app.extensions['services'].close()\n"
    )
    env = {
        **os.environ,
        contract.DB_NAME: database,
        contract.REDIS_KEY_PREFIX: prefix,
        contract.OTEL_EXPORTER_OTLP_ENDPOINT: "console",
        contract.LOG_LEVEL: "WARNING",
    }
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert '"name": "GET /api/config"' in out.stdout
    assert '"db.system": "postgresql"' in out.stdout or '"db.system.name": "postgresql"' in out.stdout


def test_redis_auth_token_from_settings_is_used(make_app: Any, add_product: Any) -> None:
    server = RedisServer()
    exe = shutil.which("redis-server")
    assert exe
    server.port = free_port()
    server.proc = subprocess.Popen(
        [exe, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "s3cret-token"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=server.port, password="s3cret-token").ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        client = make_app(redis_url=server.url, redis_auth_token="s3cret-token").test_client()
        pid = add_product()
        client.get(f"/api/products/{pid}")
        assert client.get(f"/api/products/{pid}").headers["X-Cache"] == "hit"
    finally:
        server.stop()
