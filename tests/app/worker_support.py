"""Helpers shared by the worker's tests: queues with a DLQ, orders, a worker on a thread."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app.settings import Settings
from app.worker import Worker, new_message


def make_queues(sqs: Any, visibility: int = 2, max_receive: int = 3) -> tuple[str, str]:
    """A source queue and its DLQ (redrive policy: `max_receive` receives)."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive)}),
        },
    )["QueueUrl"]
    return str(url), str(dlq)


def insert_order(db: Any, items: list[tuple[int, int]], email: str = "c@example.com") -> str:
    order_id = uuid.uuid4()
    lines = [{"product_id": p, "quantity": q, "price_cents": 100} for p, q in items]
    db.execute(
        "INSERT INTO orders (id, status, customer_email, items, total_cents, currency, correlation_id)"
        " VALUES (%s, 'PENDING', %s, %s, %s, 'USD', 'corr-test')",
        (order_id, email, json.dumps(lines), 100 * sum(q for _, q in items)),
    )
    return str(order_id)


def order_event(order_id: str, items: list[tuple[int, int]], email: str = "c@example.com") -> dict[str, Any]:
    lines = [{"product_id": p, "quantity": q, "price_cents": 100} for p, q in items]
    data = {"order_id": order_id, "email": email, "items": lines, "total_cents": 100 * sum(q for _, q in items)}
    return new_message("order.placed", data, correlation=f"corr-{order_id[:8]}")


def send(sqs: Any, queue_url: str, entry: dict[str, Any]) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=entry["MessageBody"], MessageAttributes=entry["MessageAttributes"])


@contextmanager
def running_worker(settings: Settings) -> Iterator[Worker]:
    stop = threading.Event()
    worker = Worker(settings, stop)
    thread = threading.Thread(target=worker.run, kwargs={"drain_seconds": 10}, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the worker did not stop"


def wait_for(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight + delayed) messages of a queue."""
    a = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]) + int(
        a["ApproximateNumberOfMessagesDelayed"]
    )
