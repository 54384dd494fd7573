"""Orders through the whole bundled app: API -> outbox -> relay -> SNS events topic -> SQS (moto; raw delivery, a
filter on the event type) -> worker -> PostgreSQL.

Every process is a real child process of the local runtime, started and stopped by the test.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from app import contract
from platformctl.local import MOTO_CREDENTIALS
from tests.e2e.conftest import wait_for


def _decided(stack: Any, expected: int) -> bool:
    s = stack.statuses()
    return s.get("CONFIRMED", 0) + s.get("REJECTED", 0) == expected


def _decided_count(stack: Any) -> int:
    s = stack.statuses()
    return s.get("CONFIRMED", 0) + s.get("REJECTED", 0)


def _drained(stack: Any) -> bool:
    d = stack.depths()
    return all(v == 0 for v in d["queue"].values()) and d["dead_letter_queue"]["visible"] == 0


def test_an_order_is_confirmed_and_short_stock_is_rejected_with_its_reservations_released(make_stack: Any) -> None:
    stack = make_stack()
    plenty, scarce = stack.add_product(stock=10), stack.add_product(stock=5)
    # Both orders pass checkout (stock is checked there, reserved only by the worker) while the worker is stopped.
    stack.runtime.terminate("worker")
    first = stack.order([(plenty, 1), (scarce, 3)])
    second = stack.order([(plenty, 1), (scarce, 3)])
    stack.runtime.start_service("worker")

    def status(order_id: str) -> str:
        return str(stack.http.get(f"/api/checkout/orders/{order_id}").json()["status"])

    wait_for(lambda: status(first) != "PENDING" and status(second) != "PENDING", 30, "both decided")
    assert sorted([status(first), status(second)]) == ["CONFIRMED", "REJECTED"]
    assert (stack.stock(plenty), stack.stock(scarce)) == (9, 2)  # the second order's reservation of `plenty` released
    assert stack.notifications() == {"received": 2, "unique": 2}
    wait_for(lambda: _drained(stack), 15, "queue drained")


def test_500_orders_with_the_worker_killed_twice_are_each_decided_exactly_once(make_stack: Any) -> None:
    stack = make_stack(extra={"WORKER_IN_FLIGHT": "30"})
    products = {stack.add_product(stock=90): 90 for _ in range(5)}  # 450 units for ~600 asked: some rejections
    rng = random.Random(8)
    plans = [[(rng.choice(list(products)), rng.randint(1, 2))] for _ in range(500)]
    runtime = stack.runtime

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(stack.order, plan) for plan in plans]
        kills = 0
        for threshold in (60, 250):
            wait_for(
                lambda t=threshold: sum(stack.statuses().get(k, 0) for k in ("CONFIRMED", "REJECTED")) >= t,
                90,
                f"{threshold} decided",
            )
            runtime.kill("worker")  # SIGKILL: in-flight messages and their transactions are simply cut off
            assert _decided_count(stack) < 500, "the kill must land while orders are still being processed"
            kills += 1
            time.sleep(0.5)
            runtime.start_service("worker")
        order_ids = [f.result() for f in futures]
    assert kills == 2 and len(set(order_ids)) == 500

    wait_for(lambda: _decided(stack, 500), 150, "all 500 decided")
    wait_for(lambda: _drained(stack), 30, "no message left in flight")
    db = stack.db
    assert sum(1 for e in stack.log("worker") if e.get("event") == "worker_started") == 3
    assert stack.statuses().keys() <= {"CONFIRMED", "REJECTED"}
    # Exactly once: one processed row per message, one reservation set per confirmed order, stock adds up.
    processed = db.execute("SELECT outcome, count(*) AS n FROM processed_messages GROUP BY outcome").fetchall()
    assert {r["outcome"]: r["n"] for r in processed} == {
        k: v for k, v in stack.statuses().items() if k in {"CONFIRMED", "REJECTED"}
    }
    confirmed: Counter[int] = Counter()
    for row in db.execute("SELECT items FROM orders WHERE status = 'CONFIRMED'").fetchall():
        for line in row["items"]:
            confirmed[line["product_id"]] += line["quantity"]
    reserved = {
        r["product_id"]: int(r["q"])
        for r in db.execute("SELECT product_id, sum(quantity) AS q FROM stock_reservations GROUP BY product_id")
    }
    for pid, initial in products.items():
        assert stack.stock(pid) == initial - confirmed[pid] == initial - reserved.get(pid, 0)
        assert stack.stock(pid) >= 0
    rejected = db.execute(
        "SELECT count(*) AS n FROM stock_reservations r JOIN orders o ON o.id = r.order_id"
        " WHERE o.status <> 'CONFIRMED'"
    ).fetchone()
    assert rejected["n"] == 0
    assert stack.notifications()["unique"] == 500


def test_sigterm_during_a_batch_exits_in_time_and_every_message_is_completed_or_redelivered(make_stack: Any) -> None:
    # A slow provider (1.5 s a call, 10 in flight) keeps messages in flight when SIGTERM arrives,
    # however busy the machine is.
    stack = make_stack(notifier_delay_ms=1500, extra={"WORKER_IN_FLIGHT": "10"})
    pid = stack.add_product(stock=1000)
    orders = [stack.order([(pid, 1)]) for _ in range(40)]
    # SIGTERM while a batch is being worked on: some orders done, others received and not yet deleted.
    wait_for(
        lambda: stack.statuses().get("CONFIRMED", 0) >= 1 and stack.depths()["queue"]["in_flight"] > 0,
        30,
        "a batch in flight",
    )
    took = stack.runtime.terminate("worker", timeout=contract.STOP_TIMEOUT_SECONDS)
    assert took < contract.GRACEFUL_TIMEOUT_SECONDS
    assert stack.runtime.procs["worker"].returncode == 0
    stopping = [e for e in stack.log("worker") if e.get("event") == "worker_stopping"]
    assert stopping and stopping[-1]["in_flight"] > 0
    stack.runtime.start_service("worker")
    wait_for(lambda: _decided(stack, len(orders)), 60, "all decided after restart")
    wait_for(lambda: _drained(stack), 30, "queue drained")
    assert stack.stock(pid) == 1000 - len(orders)
    assert stack.notifications()["unique"] == len(orders)


def test_with_the_provider_gone_for_good_an_order_is_compensated_never_left_pending_with_stock_held(
    make_stack: Any,
) -> None:
    # Orders wait on an open breaker for 2 s at most, then the saga settles them.
    stack = make_stack(extra={"NOTIFY_DEFER_LIMIT_SECONDS": "2"})
    sns = boto3.client(
        "sns",
        endpoint_url=stack.runtime.moto_url,
        region_name="us-east-1",
        aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=stack.runtime.topic_arn)["Subscriptions"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    assert attributes["FilterPolicy"] == contract.ORDER_EVENTS_FILTER_POLICY
    stack.runtime.terminate("notifier")
    pid = stack.add_product(stock=10)
    orders = [stack.order([(pid, 2)]) for _ in range(3)]

    def shown(order_id: str) -> dict[str, Any]:
        return dict(stack.http.get(f"/api/checkout/orders/{order_id}").json())

    wait_for(lambda: all(shown(o)["status"] == "FAILED" for o in orders), 90, "all compensated")
    assert all(shown(o)["reason"] for o in orders)
    assert stack.stock(pid) == 10
    assert stack.db.execute("SELECT count(*) AS n FROM stock_reservations").fetchone()["n"] == 0
    wait_for(lambda: _drained(stack), 30, "queue drained, nothing dead-lettered")
    assert sum(1 for e in stack.log("worker") if e.get("event") == "order_compensated") == 3


def test_local_runtime_stops_every_process_it_started(make_stack: Any) -> None:
    stack = make_stack()
    runtime = stack.runtime
    assert set(runtime.procs) == {"moto", "notifier", "api", "relay", "worker"}
    assert (runtime.config.state_dir / "state.json").exists()
    runtime.stop()
    assert all(p.poll() is not None for p in runtime.procs.values())
    assert not (runtime.config.state_dir / "state.json").exists()
