"""The bulkhead itself and each dependency's reaction to a full compartment (its fallback, or a 503)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import pytest
from structlog.testing import capture_logs

from app import bulkhead as bh
from app.bulkhead import Bulkhead, CompartmentFull
from app.cache import Cache
from app.data import Database
from app.notifications import Notifier
from app.settings import Settings
from app.worker.orders import Delivery, OrderProcessing
from app.worker.results import Outcome


@contextmanager
def full(bulkhead: Bulkhead) -> Iterator[None]:
    """Every slot of `bulkhead` held for the block."""
    with ExitStack() as stack:
        for _ in range(bulkhead.size):
            stack.enter_context(bulkhead)
        yield


def test_a_full_compartment_refuses_at_once_and_counts_the_shed_call() -> None:
    heads = Bulkhead("dep-a", 2, namespace="Test")
    before = bh.REJECTIONS["dep-a"]
    with heads, heads, capture_logs() as logs:
        assert heads.in_use == 2
        started = time.perf_counter()
        with pytest.raises(CompartmentFull) as exc, heads:
            pass
        assert time.perf_counter() - started < 0.01
    assert exc.value.dependency == "dep-a"
    assert heads.in_use == 0
    assert bh.REJECTIONS["dep-a"] == before + 1
    (record,) = [r for r in logs if r["event"] == "bulkhead_rejected"]
    assert record["Dependency"] == "dep-a" and record["BulkheadRejected"] == 1
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Test"


def test_a_slot_is_returned_when_the_call_raises() -> None:
    heads = Bulkhead("dep-b", 1)
    for _ in range(3):
        with pytest.raises(ZeroDivisionError), heads:
            1 / 0  # noqa: B018
    assert heads.in_use == 0


def test_a_busy_compartment_is_waited_for_and_a_stuck_one_sheds_at_once() -> None:
    heads = Bulkhead("dep-c", 1, wait_seconds=0.2)

    def hold(seconds: float) -> None:
        with heads:
            time.sleep(seconds)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(hold, 0.05)
        time.sleep(0.01)
        with heads:  # busy: the holder lets go within the wait
            pass
    with heads:  # stuck: nothing comes back
        started = time.perf_counter()
        with pytest.raises(CompartmentFull), heads:
            pass
        assert 0.15 < time.perf_counter() - started < 0.5  # the first caller waits the bound in vain
        started = time.perf_counter()
        for _ in range(5):
            with pytest.raises(CompartmentFull), heads:
                pass
        assert time.perf_counter() - started < 0.01  # the ones after it do not wait at all
    with heads:  # a slot came back: waiting is worth it again
        pass
    with ThreadPoolExecutor(1) as pool:
        pool.submit(hold, 0.05)
        time.sleep(0.01)
        with heads:
            pass


def test_never_more_calls_inside_than_slots() -> None:
    heads = Bulkhead("dep-d", 3)
    inside, peak, shed = 0, 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal inside, peak, shed
        try:
            with heads:
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.005)
                with lock:
                    inside -= 1
        except CompartmentFull:
            with lock:
                shed += 1

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda _: call(), range(120)))
    assert peak <= 3 and shed > 0 and heads.in_use == 0


@pytest.mark.parametrize(("size", "wait"), [(0, 0.0), (-1, 0.0), (1, -0.1)])
def test_a_nonsensical_size_or_wait_is_refused(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match="dep-e"):
        Bulkhead("dep-e", size, wait)


def test_sizes_come_from_the_settings(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        bulkhead_db_writer=3, bulkhead_db_reader=4, bulkhead_redis=5, bulkhead_sqs=2, bulkhead_notifications=7
    )
    sizes = {name: Bulkhead.for_dependency(name, settings).size for name in (bh.DB_WRITER, bh.DB_READER, bh.REDIS)}
    assert sizes == {bh.DB_WRITER: 3, bh.DB_READER: 4, bh.REDIS: 5}
    assert Bulkhead.for_dependency(bh.SQS, settings).size == 2
    assert Bulkhead.for_dependency(bh.NOTIFICATIONS, settings).size == 7


def test_redis_full_reads_as_a_miss_and_does_not_trip_its_breaker(settings: Settings) -> None:
    cache = Cache(settings)
    try:
        cache.set_json(cache.key("k"), {"v": 1}, 60)
        assert cache.get_json(cache.key("k")) == (True, {"v": 1})
        with full(cache.bulkhead):
            for _ in range(10):
                assert cache.get_json(cache.key("k")) == (False, None)  # the caller reads the database instead
        assert cache.breaker.state == "closed"
        assert cache.get_json(cache.key("k")) == (True, {"v": 1})
    finally:
        cache.close()


def test_database_compartments_shed_and_a_full_reader_does_not_spill_onto_the_writer(settings: Settings) -> None:
    db = Database(settings.model_copy(update={"db_reader_host": settings.db_writer_host}))
    db.open(ready_within=3)
    try:
        one = db.read(lambda conn: conn.execute("SELECT 1 AS one").fetchone())
        assert one == {"one": 1}
        with full(db.reader_bulkhead), pytest.raises(CompartmentFull, match="db-reader"):
            db.read(lambda conn: conn.execute("SELECT 1").fetchone())
        with full(db.writer_bulkhead):
            with pytest.raises(CompartmentFull, match="db-writer"):
                db.execute("SELECT 1", ())
            with pytest.raises(CompartmentFull, match="db-writer"):
                db.read(lambda conn: conn.execute("SELECT 1").fetchone(), fresh=True)
            assert db.read(lambda conn: conn.execute("SELECT 2 AS two").fetchone()) == {"two": 2}  # the reader
        assert db.reader_breaker.state == "closed"
    finally:
        db.close()


def test_a_full_provider_compartment_defers_the_message_without_calling(settings: Settings) -> None:
    notifier = Notifier(settings.model_copy(update={"notification_url": "http://127.0.0.1:9/notify"}))
    orders = OrderProcessing(mock.Mock(), mock.Mock(), notifier, mock.Mock(), mock.Mock())
    event = mock.Mock(message_id=uuid.uuid4(), correlation_id="c", data=mock.Mock(order_id=uuid.uuid4()))
    delivery = Delivery(
        {"MessageId": "m"}, event=event, decision={"outcome": "notify:CONFIRMED", "email": "e", "detail": None}
    )
    try:
        with full(notifier.bulkhead), mock.patch.object(notifier, "_post") as post:
            started = time.perf_counter()
            orders._notify_one(delivery)
            assert time.perf_counter() - started < 0.5
        post.assert_not_called()
        assert delivery.result is not None and delivery.result.outcome is Outcome.DEFERRED
    finally:
        notifier.close()


def test_a_full_compartment_answers_503_dependency_saturated(
    make_app: Callable[..., Any], add_product: Callable[..., int]
) -> None:
    app = make_app()
    svc = app.extensions["services"]
    client = app.test_client()
    order = {"email": "a@example.com", "items": [{"product_id": add_product(), "quantity": 1}]}
    with full(svc.db.writer_bulkhead):
        resp = client.post("/api/checkout/orders", json=order, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.content_type == "application/problem+json"
    body = resp.get_json()
    assert body["type"] == "/problems/dependency-saturated" and body["detail"] == "db-writer is saturated"
    assert client.get("/problems/dependency-saturated").status_code == 200
