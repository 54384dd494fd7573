from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg

from platformctl.stub_notifier import StubNotifier
from tests.app.worker_support import make_queues, order_event, running_worker, send, wait_for


def _order(pid: int, qty: int = 1) -> dict[str, Any]:
    return {"email": "buyer@example.com", "items": [{"product_id": pid, "quantity": qty}]}


def test_order_is_accepted_with_its_outbox_event_in_one_transaction(
    client: Any, add_product: Any, db: psycopg.Connection[Any]
) -> None:
    pid = add_product(price=250)
    resp = client.post(
        "/api/checkout/orders",
        json=_order(pid, 2),
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-Request-Id": "req-1"},
    )
    assert resp.status_code == 202 and resp.json["status"] == "PENDING" and resp.json["total_cents"] == 500
    order_id = resp.json["id"]
    event = db.execute("SELECT * FROM outbox WHERE aggregate_id = %s", (order_id,)).fetchone()
    assert event is not None and event["event_type"] == "order.placed" and event["correlation_id"] == "req-1"
    read = client.get(f"/api/checkout/orders/{order_id}")
    assert read.status_code == 200 and read.json["status"] == "PENDING"
    # Both ids come from one read of the OS's random source: random (version 4, RFC 4122 variant) and distinct.
    ids = [uuid.UUID(order_id), uuid.UUID(str(event["id"]))]
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids) and ids[0] != ids[1]


def test_same_key_and_body_replays_the_stored_response(client: Any, add_product: Any, db: Any) -> None:
    pid = add_product()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/api/checkout/orders", json=_order(pid), headers=headers)
    second = client.post("/api/checkout/orders", json=_order(pid), headers=headers)
    assert second.status_code == 202 and second.json == first.json
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    count = db.execute("SELECT count(*) AS n FROM orders WHERE id = %s", (first.json["id"],)).fetchone()["n"]
    assert count == 1


def test_same_key_with_a_different_body_is_422(client: Any, add_product: Any) -> None:
    pid = add_product()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    client.post("/api/checkout/orders", json=_order(pid, 1), headers=headers)
    resp = client.post("/api/checkout/orders", json=_order(pid, 2), headers=headers)
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "Idempotency-Key"


def test_replay_while_the_first_request_is_in_flight_is_409_with_retry_after(
    client: Any, add_product: Any, db: Any
) -> None:
    pid = add_product()
    key = str(uuid.uuid4())
    # The first request's transaction holds the key's lock (here: another session holds the same lock).
    db.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"checkout:{key}",))
    try:
        resp = client.post("/api/checkout/orders", json=_order(pid), headers={"Idempotency-Key": key})
        assert resp.status_code == 409 and resp.headers["Retry-After"] == "1"
    finally:
        db.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"checkout:{key}",))
    # Nothing was stored for the refused attempt: once the first is done, the key works.
    assert client.post("/api/checkout/orders", json=_order(pid), headers={"Idempotency-Key": key}).status_code == 202


def test_rejected_order_is_stored_and_replayed_without_an_order(client: Any, add_product: Any, db: Any) -> None:
    pid = add_product(stock=1)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/api/checkout/orders", json=_order(pid, 2), headers=headers)
    again = client.post("/api/checkout/orders", json=_order(pid, 2), headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.headers["Idempotent-Replayed"] == "true" and again.json["errors"] == first.json["errors"]
    assert (
        db.execute("SELECT count(*) AS n FROM orders WHERE items @> %s", (f'[{{"product_id": {pid}}}]',)).fetchone()[
            "n"
        ]
        == 0
    )


def test_concurrent_requests_with_one_key_create_one_order(client: Any, add_product: Any, db: Any) -> None:
    pid = add_product()
    key = str(uuid.uuid4())
    app = client.application
    codes: list[int] = []

    def post() -> None:
        codes.append(
            app.test_client()
            .post("/api/checkout/orders", json=_order(pid), headers={"Idempotency-Key": key})
            .status_code
        )

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) <= {202, 409} and 202 in codes
    assert (
        db.execute("SELECT count(*) AS n FROM orders WHERE items @> %s", (f'[{{"product_id": {pid}}}]',)).fetchone()[
            "n"
        ]
        == 1
    )


def test_keys_are_kept_for_24_hours(client: Any, add_product: Any, db: Any) -> None:
    key = str(uuid.uuid4())
    client.post("/api/checkout/orders", json=_order(add_product()), headers={"Idempotency-Key": key})
    row = db.execute("SELECT expires_at - created_at AS kept FROM idempotency_keys WHERE key = %s", (key,)).fetchone()
    assert row["kept"].total_seconds() == 24 * 3600


def test_missing_idempotency_key_is_400_naming_the_header(client: Any, add_product: Any) -> None:
    resp = client.post("/api/checkout/orders", json=_order(add_product()))
    assert resp.status_code == 400 and resp.json["errors"][0]["field"] == "Idempotency-Key"


def test_unknown_product_and_short_stock_name_the_item_field(client: Any, add_product: Any) -> None:
    h = {"Idempotency-Key": str(uuid.uuid4())}
    resp = client.post("/api/checkout/orders", json=_order(2**62), headers=h)
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "items[0].product_id"
    pid = add_product(stock=1)
    resp = client.post("/api/checkout/orders", json=_order(pid, 5), headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "items[0].quantity"


def test_invalid_order_body_names_the_nested_field(client: Any) -> None:
    body = {"email": "a@example.com", "items": [{"product_id": 1, "quantity": 0}]}
    resp = client.post("/api/checkout/orders", json=body, headers={"Idempotency-Key": "k1"})
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "items[0].quantity"


def test_unknown_order_is_404(client: Any) -> None:
    resp = client.get(f"/api/checkout/orders/{uuid.uuid4()}")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


def test_the_first_bad_item_is_named_and_mixed_currencies_are_refused(client: Any, add_product: Any, db: Any) -> None:
    plenty, scarce = add_product(stock=10), add_product(stock=2)
    items = [
        {"product_id": plenty, "quantity": 3},
        {"product_id": scarce, "quantity": 3},
        {"product_id": 2**62, "quantity": 1},
    ]
    resp = client.post(
        "/api/checkout/orders",
        json={"email": "buyer@example.com", "items": items},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert resp.status_code == 422
    assert resp.json["detail"] == "'items[1].quantity': only 2 in stock"
    assert resp.json["errors"] == [{"field": "items[1].quantity", "in": "body", "message": "only 2 in stock"}]
    euro = add_product()
    db.execute("UPDATE products SET currency = 'EUR' WHERE id = %s", (euro,))
    mixed = {
        "email": "buyer@example.com",
        "items": [{"product_id": plenty, "quantity": 1}, {"product_id": euro, "quantity": 1}],
    }
    resp = client.post("/api/checkout/orders", json=mixed, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 422 and resp.json["errors"][0]["message"] == "all items must share one currency"
    assert db.execute("SELECT stock FROM products WHERE id = %s", (plenty,)).fetchone()["stock"] == 10


def test_an_order_of_several_items_is_priced_in_request_order_in_one_statement(
    client: Any, add_product: Any, db: Any
) -> None:
    cheap, dear = add_product(price=150), add_product(price=1000)
    checkout = client.application.extensions["services"].checkout
    statements: list[str] = []
    real_execute = checkout.db.execute

    def counting_execute(sql: Any, params: Any) -> Any:
        statements.append(sql)
        return real_execute(sql, params)

    checkout.db.execute = counting_execute
    items = [{"product_id": dear, "quantity": 2}, {"product_id": cheap, "quantity": 3}]
    resp = client.post(
        "/api/checkout/orders",
        json={"email": "buyer@example.com", "items": items},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert resp.status_code == 202 and resp.json["total_cents"] == 2450 and resp.json["currency"] == "USD"
    assert len(statements) == 1
    row = db.execute("SELECT items, total_cents FROM orders WHERE id = %s", (resp.json["id"],)).fetchone()
    assert [(line["product_id"], line["quantity"], line["price_cents"]) for line in row["items"]] == [
        (dear, 2, 1000),
        (cheap, 3, 150),
    ]
    event = db.execute("SELECT payload FROM outbox WHERE aggregate_id = %s", (resp.json["id"],)).fetchone()["payload"]
    assert event == {
        "order_id": resp.json["id"],
        "email": "buyer@example.com",
        "items": row["items"],
        "total_cents": 2450,
    }


def test_lines_of_one_product_are_checked_against_its_stock_together(
    client: Any, add_product: Any, db: psycopg.Connection[Any]
) -> None:
    pid, other = add_product(stock=100), add_product(stock=100)
    body = {
        "email": "buyer@example.com",
        "items": [
            {"product_id": pid, "quantity": 60},
            {"product_id": other, "quantity": 1},
            {"product_id": pid, "quantity": 60},
        ],
    }
    resp = client.post("/api/checkout/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    # Refused at once, as one line of 120 is, naming the line where the product's total first goes over.
    assert resp.status_code == 422 and resp.json["type"] == "/problems/invalid-order"
    assert resp.json["errors"] == [
        {
            "field": "items[2].quantity",
            "in": "body",
            "message": f"only 100 in stock; the order's lines of product {pid} want 120 together",
        }
    ]
    orders = db.execute("SELECT count(*) AS n FROM orders WHERE items @> %s::jsonb", (f'[{{"product_id": {pid}}}]',))
    assert orders.fetchone() == {"n": 0}
    within = {**body, "items": [{"product_id": pid, "quantity": 50}, {"product_id": pid, "quantity": 50}]}
    placed = client.post("/api/checkout/orders", json=within, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert placed.status_code == 202


def test_an_order_the_worker_rejects_carries_its_reason(
    client: Any, make_settings: Any, add_product: Any, db: psycopg.Connection[Any], moto: Any
) -> None:
    pid = add_product(stock=5)
    placed = client.post("/api/checkout/orders", json=_order(pid, 4), headers={"Idempotency-Key": str(uuid.uuid4())})
    assert placed.status_code == 202
    order_id = placed.json["id"]
    pending = client.get(f"/api/checkout/orders/{order_id}").json
    assert (pending["status"], pending["reason"]) == ("PENDING", None)
    db.execute("UPDATE products SET stock = 1 WHERE id = %s", (pid,))  # sold elsewhere before the worker ran
    sqs = moto.client("sqs")
    queue, dead_letters = make_queues(sqs)
    send(sqs, queue, order_event(order_id, [(pid, 4)], email="buyer@example.com"))
    notifier = StubNotifier().start()
    settings = make_settings(
        queue_url=queue, dead_letter_queue_url=dead_letters, notification_url=notifier.url, worker_poll_seconds=1
    )
    try:
        with running_worker(settings):
            wait_for(lambda: client.get(f"/api/checkout/orders/{order_id}").json["status"] != "PENDING")
    finally:
        notifier.stop()
    rejected = client.get(f"/api/checkout/orders/{order_id}").json
    assert rejected["status"] == "REJECTED" and rejected["reason"] == f"product {pid}: not enough stock"
