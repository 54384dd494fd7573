"""The saga always settles: an order whose message fails for good is compensated (stock released once, FAILED
with a reason), and a redelivered or redriven copy of that message is a no-op. Real PostgreSQL, Redis, moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.dlq import redrive, settle
from app.events import parse
from app.settings import Settings
from app.worker.orders import compensate
from platformctl.stub_notifier import StubNotifier
from tests.app.worker_support import depth, insert_order, make_queues, order_event, running_worker, send, wait_for


@pytest.fixture
def queues(moto: Any) -> tuple[str, str]:
    return make_queues(moto.client("sqs"), visibility=2, max_receive=3)


@pytest.fixture
def down_provider() -> str:
    """A provider URL nobody listens on: every notification fails (connection refused)."""
    stub = StubNotifier().start()
    url = stub.url
    stub.stop()
    return url


@pytest.fixture
def saga_settings(
    make_settings: Callable[..., Settings], queues: tuple[str, str], down_provider: str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "queue_url": queues[0],
            "dead_letter_queue_url": queues[1],
            "notification_url": down_provider,
            "worker_poll_seconds": 1,
            "worker_retry_base_seconds": 0,
            "worker_in_flight": 10,
            **overrides,
        }
        return make_settings(**values)

    return make


def _order(db: Any, order_id: str) -> dict[str, Any]:
    return dict(db.execute("SELECT status, reject_reason FROM orders WHERE id = %s", (order_id,)).fetchone())


def _stock(db: Any, product_id: int) -> int:
    return int(db.execute("SELECT stock FROM products WHERE id = %s", (product_id,)).fetchone()["stock"])


def _reservations(db: Any, order_id: str) -> int:
    return int(
        db.execute("SELECT count(*) AS n FROM stock_reservations WHERE order_id = %s", (order_id,)).fetchone()["n"]
    )


def _reserve(db: Any, entry: dict[str, Any], items: list[tuple[int, int]]) -> None:
    """Step 1 of the worker (decide_orders) as a worker that died after it would leave it: stock reserved."""
    event = parse(entry["MessageBody"])
    [row] = db.execute(
        "SELECT outcome FROM decide_orders(%s::uuid[], %s::text[], %s::uuid[], %s::jsonb)",
        ([event.message_id], [event.type], [event.data.order_id], json.dumps([[[p, q] for p, q in sorted(items)]])),
    ).fetchall()
    assert row["outcome"] == "notify:CONFIRMED"


def test_retries_spent_on_the_last_receive_compensate_the_order_instead_of_dead_lettering_it(
    saga_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, client: Any
) -> None:
    sqs = moto.client("sqs")
    source, dlq = queues
    a, b = add_product(stock=10), add_product(stock=5)
    order_id = insert_order(db, [(a, 3), (b, 2)])
    send(sqs, source, order_event(order_id, [(a, 3), (b, 2)]))
    # The breaker never opens (no minimum of calls reached): every receive fails its notification.
    with running_worker(saga_settings(breaker_min_calls=1000)) as worker:
        wait_for(lambda: _order(db, order_id)["status"] != "PENDING", timeout=40)
        wait_for(lambda: depth(sqs, source) == (0, 0))
    assert worker.stats.counts["failed"] == 2 and worker.stats.counts["compensated"] == 1
    order = _order(db, order_id)
    assert order["status"] == "FAILED" and "receive 3 of 3" in order["reject_reason"]
    assert (_stock(db, a), _stock(db, b)) == (10, 5)  # released exactly once
    assert _reservations(db, order_id) == 0
    assert depth(sqs, dlq) == (0, 0)  # settled, not dead-lettered
    shown = client.get(f"/api/checkout/orders/{order_id}").json
    assert shown["status"] == "FAILED" and "retries spent" in shown["reason"]


def test_a_breaker_open_past_its_limit_compensates_the_waiting_orders(
    saga_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any
) -> None:
    sqs = moto.client("sqs")
    source, dlq = queues
    pid = add_product(stock=20)
    orders = [insert_order(db, [(pid, 2)]) for _ in range(4)]
    for order_id in orders:
        send(sqs, source, order_event(order_id, [(pid, 2)]))
    settings = saga_settings(breaker_min_calls=2, breaker_reset_seconds=30, notify_defer_limit_seconds=0)
    with running_worker(settings) as worker:
        wait_for(lambda: all(_order(db, o)["status"] == "FAILED" for o in orders), timeout=40)
        wait_for(lambda: depth(sqs, source) == (0, 0))
    assert worker.stats.counts["compensated"] == 4
    assert all("breaker open" in _order(db, o)["reject_reason"] for o in orders)
    assert _stock(db, pid) == 20
    assert depth(sqs, dlq) == (0, 0)


def test_a_dead_lettered_order_is_compensated_once_and_its_redrive_is_a_no_op(
    saga_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, client: Any
) -> None:
    sqs = moto.client("sqs")
    source, dlq = queues
    pid = add_product(stock=10)
    order_id = insert_order(db, [(pid, 4)])
    entry = order_event(order_id, [(pid, 4)])
    _reserve(db, entry, [(pid, 4)])  # a worker reserved the stock, then every delivery died: the DLQ has it
    assert _stock(db, pid) == 6
    send(sqs, dlq, entry)
    send(sqs, dlq, {"MessageBody": "{not an event", "MessageAttributes": {}})
    assert client.get(f"/api/products/{pid}").json["stock"] == 6  # cached (5 minutes) with the stock held
    settings = saga_settings()
    report = settle(settings)
    assert (report.compensated, report.settled, report.left) == (1, 0, 1)
    assert _order(db, order_id)["status"] == "FAILED" and "dead-lettered" in _order(db, order_id)["reject_reason"]
    assert _stock(db, pid) == 10 and _reservations(db, order_id) == 0
    # The released stock drops the product's cached copies: the API shows it at once, not after the TTL.
    wait_for(lambda: client.get(f"/api/products/{pid}").json["stock"] == 10, timeout=5)
    assert depth(sqs, dlq)[0] == 1  # the malformed one stays for a person to look at

    # A copy of the compensated message dead-lettered again (say a delete that failed): settling it again
    # and redriving it are no-ops, and a worker that still receives one deletes it as a duplicate.
    send(sqs, dlq, entry)
    assert settle(settings).settled == 1
    send(sqs, dlq, entry)
    moved = redrive(settings, rate=100, event_type="order.placed")
    assert (moved.moved, moved.settled) == (0, 1)
    assert depth(sqs, source) == (0, 0)
    send(sqs, source, entry)
    with running_worker(saga_settings(notification_url="")) as worker:
        wait_for(lambda: worker.stats.counts["duplicate"] == 1)
        wait_for(lambda: depth(sqs, source) == (0, 0))
    assert _stock(db, pid) == 10 and _order(db, order_id)["status"] == "FAILED"


def test_a_second_compensation_is_a_no_op_and_a_missing_order_is_reported(
    db: Any, add_product: Any, make_settings: Any
) -> None:
    pid = add_product(stock=7)
    order_id = insert_order(db, [(pid, 5)])
    entry = order_event(order_id, [(pid, 5)])
    _reserve(db, entry, [(pid, 5)])
    event = parse(entry["MessageBody"])
    first = compensate(db, [(event, "first")])[str(event.message_id)]
    assert first["outcome"] == "compensated" and first["released"] == [pid]
    second = compensate(db, [(event, "second")])[str(event.message_id)]
    assert second["outcome"] == "settled" and second["released"] == []
    assert _stock(db, pid) == 7
    assert _order(db, order_id) == {"status": "FAILED", "reject_reason": "first"}
    # The message's row is final: a delivery that had stopped after step 1 never resumes into a notification.
    outcome = db.execute("SELECT outcome FROM processed_messages WHERE message_id = %s", (event.message_id,))
    assert outcome.fetchone()["outcome"] == "FAILED"
    ghost = parse(order_event("00000000-0000-4000-8000-000000000000", [(pid, 1)])["MessageBody"])
    assert compensate(db, [(ghost, "x")])[str(ghost.message_id)]["outcome"] == "missing"


def test_a_confirmed_order_is_never_compensated(
    saga_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any
) -> None:
    pid = add_product(stock=10)
    order_id = insert_order(db, [(pid, 1)])
    entry = order_event(order_id, [(pid, 1)])
    with running_worker(saga_settings(notification_url="")):
        send(moto.client("sqs"), queues[0], entry)
        wait_for(lambda: _order(db, order_id)["status"] == "CONFIRMED")
    event = parse(entry["MessageBody"])
    assert compensate(db, [(event, "late")])[str(event.message_id)]["outcome"] == "settled"
    assert _stock(db, pid) == 9 and _order(db, order_id)["status"] == "CONFIRMED"


def test_the_api_contract_allows_a_failed_order_with_its_reason(client: Any) -> None:
    order = client.get("/openapi.json").json["components"]["schemas"]["Order"]
    assert "FAILED" in order["properties"]["status"]["enum"]
    assert "FAILED" in order["properties"]["reason"]["description"]


def test_dlq_settle_command_reports_what_it_compensated(
    saga_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, database: str, prefix: str, monkeypatch: Any
) -> None:
    source, dlq = queues
    pid = add_product(stock=3)
    order_id = insert_order(db, [(pid, 3)])
    entry = order_event(order_id, [(pid, 3)])
    _reserve(db, entry, [(pid, 3)])
    send(moto.client("sqs"), dlq, entry)
    settings = saga_settings()
    for name, value in {
        "DB_NAME": database,
        "DB_USER": settings.db_user,
        "REDIS_KEY_PREFIX": prefix,
        "QUEUE_URL": source,
        "DEAD_LETTER_QUEUE_URL": dlq,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["dlq", "settle"])
    assert result.exit_code == 0, result.output
    assert "compensated 1 already settled 0 left 0" in result.output
    assert _stock(db, pid) == 3 and _order(db, order_id)["status"] == "FAILED"
