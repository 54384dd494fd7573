"""Bulkheads end to end: a stalled dependency holds only its own compartment; catalog reads keep their latency.

Two stalls, each against the API served by real gunicorn (one process, its 8 threads) with the default
compartments:
- the notification provider (the stub told to stall): the worker holds at most its `notifications` compartment
  (16 of its 20 messages in flight) in provider calls and defers the rest at once, and nothing is lost once the
  provider answers again;
- the database writer (a test connection holds `LOCK TABLE outbox`, which every order's statement waits on): at
  most 6 of the API's 8 threads wait on it, further checkouts are answered 503 `dependency-saturated` with
  `Retry-After` at once, and catalog reads, on the other threads, keep their latency.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

from app import bulkhead
from app.settings import Settings
from platformctl.stub_notifier import StubNotifier
from tests.app.conftest import PG
from tests.app.gunicorn_support import served
from tests.app.worker_support import insert_order, make_queues, order_event, running_worker, send, wait_for

READS = 100
# Catalog reads under a stall may be this much slower than unstalled, at the median and the 95th percentile: the
# threads outside the stalled compartment also answer the shed requests (each within BULKHEAD_WAIT_MS).
MEDIAN_BOUND_MS = 25.0
P95_BOUND_MS = 75.0
# A shed checkout is answered within this: it waits for a slot at most BULKHEAD_WAIT_MS (200 ms), and not at all
# once the compartment is known to be stuck.
SHED_WITHIN_MS = 400.0


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples) * 1000, cuts[18] * 1000


def catalog_latency(base: str, product_ids: list[int]) -> tuple[float, float]:
    """p50 and p95 of READS catalog reads (product pages and the list, in turn), one at a time."""
    samples = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(READS):
            path = f"/api/products/{product_ids[i % len(product_ids)]}" if i % 4 else "/api/products?per_page=5"
            started = time.perf_counter()
            resp = client.get(path)
            samples.append(time.perf_counter() - started)
            assert resp.status_code == 200, (path, resp.status_code, resp.text)
    return percentiles(samples)


def within_bounds(baseline: tuple[float, float], stalled: tuple[float, float]) -> None:
    figures = f"unstalled p50/p95 {baseline[0]:.1f}/{baseline[1]:.1f} ms, stalled {stalled[0]:.1f}/{stalled[1]:.1f} ms"
    print(f"catalog reads: {figures}")
    assert stalled[0] <= baseline[0] + MEDIAN_BOUND_MS, figures
    assert stalled[1] <= baseline[1] + P95_BOUND_MS, figures


@pytest.fixture
def products(add_product: Callable[..., int]) -> list[int]:
    return [add_product(stock=1000, name=f"Widget {i}") for i in range(4)]


@pytest.fixture
def api(database: str, prefix: str, products: list[int]) -> Iterator[str]:
    # The reader is the same server under another pool, as Aurora's reader endpoint is another host.
    with served(database, prefix, DB_READER_HOST="127.0.0.1", RATE_LIMIT_PER_MINUTE="1000000") as base:
        catalog_latency(base, products)  # warm: connections, near cache, Redis entries
        yield base


@contextmanager
def stalled_provider(stub: StubNotifier, seconds: float) -> Iterator[None]:
    assert httpx.post(stub.control_url, json={"stall_seconds": seconds}).status_code == 200
    try:
        yield
    finally:
        httpx.post(stub.control_url, json={"stall_seconds": 0})


def test_a_stalled_provider_fills_only_its_compartment_and_the_rest_is_deferred_at_once(
    api: str, products: list[int], make_settings: Callable[..., Settings], moto: Any, db: Any
) -> None:
    baseline = catalog_latency(api, products)
    sqs = moto.client("sqs")
    queue, dlq = make_queues(sqs, visibility=30)
    orders = []
    for i in range(20):  # the worker's 20 in flight, all wanting the provider
        items = [(products[i % len(products)], 1)]
        orders.append(insert_order(db, items))
        send(sqs, queue, order_event(orders[-1], items))
    stub = StubNotifier().start()
    settings = make_settings(
        queue_url=queue, dead_letter_queue_url=dlq, notification_url=stub.url, worker_poll_seconds=1
    )
    assert (settings.worker_in_flight, settings.bulkhead_notifications) == (20, 16)
    shed_before = bulkhead.REJECTIONS[bulkhead.NOTIFICATIONS]
    try:
        with stalled_provider(stub, 30), running_worker(settings):
            started = time.monotonic()
            wait_for(lambda: bulkhead.REJECTIONS[bulkhead.NOTIFICATIONS] - shed_before >= 4, timeout=10, interval=0.01)
            shed_after = time.monotonic() - started
            # The provider holds exactly the compartment: 16 calls, the other 4 messages went back at once.
            wait_for(lambda: stub.control_state()["stalled"] == 16, timeout=2, interval=0.01)
            held = stub.control_state()["stalled"]
            stalled = catalog_latency(api, products)
            assert stub.control_state()["stalled"] <= 16
            print(f"provider stalled: {held} calls held, 4 shed {shed_after * 1000:.0f} ms after start")
        within_bounds(baseline, stalled)
        # Nothing lost: once the provider answers, every order is confirmed (the deferred ones from their copies).
        with running_worker(settings):
            wait_for(
                lambda: (
                    db.execute(
                        "SELECT count(*) AS n FROM orders WHERE id = ANY(%s::uuid[]) AND status = 'CONFIRMED'",
                        (orders,),
                    ).fetchone()["n"]
                    == len(orders)
                ),
                timeout=20,
            )
    finally:
        stub.stop()


@contextmanager
def stalled_writer(database: str) -> Iterator[None]:
    """Every order's statement waits: it inserts into the outbox, which this transaction holds locked."""
    with psycopg.connect(**PG, dbname=database) as conn:  # type: ignore[arg-type]
        conn.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def checkouts(base: str, product_id: int, stop: threading.Event) -> list[tuple[int, str, str, float]]:
    """Orders placed one after another until `stop`: (status, problem type, Retry-After, seconds) each."""
    answers = []
    with httpx.Client(base_url=base, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            resp = client.post(
                "/api/checkout/orders",
                json={"email": "a@example.com", "items": [{"product_id": product_id, "quantity": 1}]},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            kind = resp.json().get("type", "") if resp.status_code >= 400 else ""
            answers.append((resp.status_code, kind, resp.headers.get("Retry-After", ""), time.perf_counter() - started))
    return answers


def test_a_stalled_writer_sheds_checkouts_at_once_while_catalog_reads_keep_their_latency(
    api: str, products: list[int], database: str
) -> None:
    baseline = catalog_latency(api, products)
    stop = threading.Event()
    with stalled_writer(database), ThreadPoolExecutor(8) as pool:
        clients = [pool.submit(checkouts, api, products[0], stop) for _ in range(8)]
        time.sleep(0.3)  # the writer's compartment fills
        try:
            stalled = catalog_latency(api, products)
        finally:
            stop.set()
        answers = [a for c in clients for a in c.result()]
    shed = [a for a in answers if a[1] == "/problems/dependency-saturated"]
    assert shed, answers
    assert all(status == 503 and retry == "1" for status, _, retry, _ in shed)
    slowest_shed = max(seconds for *_, seconds in shed) * 1000
    print(f"writer stalled: {len(shed)} of {len(answers)} checkouts shed, slowest {slowest_shed:.0f} ms")
    assert slowest_shed < SHED_WITHIN_MS
    within_bounds(baseline, stalled)
    # The writer back, orders go through.
    resp = httpx.post(
        api + "/api/checkout/orders",
        json={"email": "a@example.com", "items": [{"product_id": products[0], "quantity": 1}]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert resp.status_code == 202, resp.text


def test_orders_at_the_benchmarks_concurrency_are_not_shed_when_nothing_stalls(api: str, products: list[int]) -> None:
    """16 connections on one process of 8 threads: 8 orders at once want the writer's 6 slots; the short wait
    for a slot absorbs that, so a healthy writer sheds nothing."""
    stop = threading.Event()
    with ThreadPoolExecutor(16) as pool:
        clients = [pool.submit(checkouts, api, products[i % len(products)], stop) for i in range(16)]
        time.sleep(2.0)
        stop.set()
        answers = [a for c in clients for a in c.result()]
    statuses = Counter((status, kind) for status, kind, *_ in answers)
    print(f"16 connections, nothing stalled: {dict(statuses)}")
    assert set(statuses) == {(202, "")}, statuses
