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
from tests.app.fanout_support import events_topic

REPO = Path(__file__).resolve().parents[2]


def test_app_relay_command_publishes_and_stops_cleanly_on_sigterm(
    client: Any, add_product: Any, db: Any, database: str, prefix: str, moto: Any, queue_url: str
) -> None:
    db.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
    env = {
        **os.environ,
        contract.DB_NAME: database,
        contract.REDIS_KEY_PREFIX: prefix,
        contract.EVENTS_TOPIC_ARN: events_topic(moto, queue_url),
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


def test_with_tracing_on_the_worker_span_links_to_the_request_that_placed_the_order(
    database: str, prefix: str, add_product: Any
) -> None:
    pid = add_product(stock=10)
    caller = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    code = (
        "import json, uuid\n"
        "from opentelemetry import trace\n"
        "from app.events import parse\n"
        "from app.http.factory import create_app\n"
        "from app.settings import Settings\n"
        "from app.worker import Worker\n"
        "app = create_app()\n"
        "services = app.extensions['services']\n"
        f"body = {{'email': 'b@example.com', 'items': [{{'product_id': {pid}, 'quantity': 1}}]}}\n"
        f"headers = {{'Idempotency-Key': str(uuid.uuid4()), 'traceparent': '{caller}'}}\n"
        "order = app.test_client().post('/api/checkout/orders', json=body, headers=headers).json['id']\n"
        "row = services.db.read(lambda c: c.execute("
        "'SELECT id, event_type, aggregate_id, correlation_id, payload, created_at, traceparent FROM outbox"
        " WHERE aggregate_id = %s', (order,)).fetchone(), fresh=True)\n"
        "print('OUTBOX', row['traceparent'])\n"
        "event = parse(json.dumps({'message_id': str(row['id']), 'type': row['event_type'],"
        " 'aggregate_id': row['aggregate_id'], 'correlation_id': row['correlation_id'],"
        " 'occurred_at': row['created_at'].isoformat(), 'data': row['payload']}))\n"
        "worker = Worker(Settings(queue_url='http://127.0.0.1:1/queue/orders'))\n"
        "with worker._span(event, {'traceparent': {'StringValue': row['traceparent']}}):\n"
        "    pass\n"
        "trace.get_tracer_provider().force_flush()\n"
        "worker.close()\n"
        "services.close()\n"
    )
    env = {
        **os.environ,
        contract.DB_NAME: database,
        contract.REDIS_KEY_PREFIX: prefix,
        contract.OTEL_EXPORTER_OTLP_ENDPOINT: "console",
        contract.LOG_LEVEL: "WARNING",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    stored = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("OUTBOX "))
    # The event carries the API's server span: same trace as the caller, a span of its own.
    assert stored.split("-")[1] == "ab" * 16 and stored.split("-")[2] != "cd" * 8
    assert '"name": "process order.placed"' in out.stdout
    link = out.stdout[out.stdout.index('"name": "process order.placed"') :]
    assert f'"span_id": "0x{stored.split("-")[2]}"' in link[link.index('"links"') :]


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
