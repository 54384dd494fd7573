from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.outbox import Relay
from app.settings import Settings
from tests.app.fanout_support import events_topic


def _place(client: Any, pid: int, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = client.post(
            "/api/checkout/orders",
            json={"email": "b@example.com", "items": [{"product_id": pid, "quantity": 1}]},
            headers={"Idempotency-Key": str(uuid.uuid4()), "X-Request-Id": f"corr-{i}"},
        )
        assert resp.status_code == 202
        ids.append(resp.json["id"])
    return ids


def _drain_queue(sqs: Any, queue_url: str, expected: int, timeout: float = 20) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for m in resp.get("Messages", []):
            seen.append({"body": json.loads(m["Body"]), "attrs": m.get("MessageAttributes", {})})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    # Anything beyond `expected` would be a duplicate: give it a moment to show up.
    extra = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    seen.extend({"body": json.loads(m["Body"]), "attrs": {}} for m in extra.get("Messages", []))
    return seen


@contextmanager
def relays(settings: Settings, count: int) -> Iterator[list[Relay]]:
    stop = threading.Event()
    running = [Relay(settings, stop) for _ in range(count)]
    threads = [threading.Thread(target=r.run, daemon=True) for r in running]
    for t in threads:
        t.start()
    try:
        yield running
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for r in running:
            r.cache.close()


def _clear_outbox(db: Any) -> None:
    db.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")


def test_two_relays_publish_every_row_exactly_once(
    client: Any, add_product: Any, db: Any, make_settings: Any, queue_url: str, moto: Any
) -> None:
    _clear_outbox(db)
    pid = add_product(stock=1000)
    settings = make_settings(events_topic_arn=events_topic(moto, queue_url))
    with relays(settings, 2) as running:
        order_ids = _place(client, pid, 45)
        messages = _drain_queue(moto.client("sqs"), queue_url, 45)
    assert sorted(m["body"]["data"]["order_id"] for m in messages) == sorted(order_ids)
    message_ids = [m["body"]["message_id"] for m in messages]
    assert len(set(message_ids)) == 45 and all(uuid.UUID(i).version == 4 for i in message_ids)
    assert {m["attrs"]["correlation_id"]["StringValue"] for m in messages} == {f"corr-{i}" for i in range(45)}
    assert sum(r.published for r in running) == 45
    assert db.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").fetchone()["n"] == 0


def test_relay_wakes_on_notify_instead_of_waiting_for_a_sweep(
    client: Any, add_product: Any, db: Any, make_settings: Any, queue_url: str, moto: Any
) -> None:
    _clear_outbox(db)
    pid = add_product()
    with relays(make_settings(events_topic_arn=events_topic(moto, queue_url)), 1):
        time.sleep(0.5)  # the relay has drained and is asleep on LISTEN
        start = time.monotonic()
        _place(client, pid, 1)
        assert len(_drain_queue(moto.client("sqs"), queue_url, 1, timeout=4)) == 1
        assert time.monotonic() - start < 4.0


def test_orders_are_accepted_while_sqs_is_down_and_delivered_after_recovery(
    client: Any, add_product: Any, db: Any, make_settings: Any, queue_url: str, moto: Any
) -> None:
    _clear_outbox(db)
    pid = add_product(stock=1000)
    settings = make_settings(events_topic_arn=events_topic(moto, queue_url))
    sqs = moto.client("sqs")
    moto.stop()
    try:
        with relays(settings, 1) as (relay,):
            order_ids = _place(client, pid, 12)  # the API does not touch SQS: orders are accepted
            deadline = time.monotonic() + 20
            while relay.breaker.state != "open":
                assert time.monotonic() < deadline, "the SQS breaker never opened"
                time.sleep(0.2)
            pending = db.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").fetchone()["n"]
            assert pending == 12 and relay.published == 0
            moto.start()
            messages = _drain_queue(sqs, queue_url, 12, timeout=30)
    finally:
        if moto.server is None or not moto.server._server:
            moto.start()
    assert sorted(m["body"]["data"]["order_id"] for m in messages) == sorted(order_ids)


def test_the_requests_trace_context_travels_with_its_event_and_a_malformed_one_is_dropped(
    client: Any, add_product: Any, db: Any, make_settings: Any, queue_url: str, moto: Any
) -> None:
    _clear_outbox(db)
    pid = add_product(stock=10)
    traced = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    for extra in ({"traceparent": traced}, {"traceparent": "00-not-a-trace-context"}, {}):
        resp = client.post(
            "/api/checkout/orders",
            json={"email": "b@example.com", "items": [{"product_id": pid, "quantity": 1}]},
            headers={"Idempotency-Key": str(uuid.uuid4()), **extra},
        )
        assert resp.status_code == 202
    with relays(make_settings(events_topic_arn=events_topic(moto, queue_url)), 1):
        messages = _drain_queue(moto.client("sqs"), queue_url, 3)
    carried = sorted(m["attrs"].get("traceparent", {}).get("StringValue", "") for m in messages)
    assert carried == ["", "", traced]
