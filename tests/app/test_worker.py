"""The worker against real PostgreSQL, Redis and moto's SQS (the worker on a thread of the test)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from app.cli import cli
from app.dlq import redrive
from app.events import InvalidMessage, parse
from app.notifications import NotificationFailed, NotificationRejected, Notifier
from app.observability import configure_logging
from app.settings import Settings
from app.worker import Action, Claim, Outcome, Result, Tracked, Worker, backoff_seconds
from platformctl.stub_notifier import StubNotifier
from tests.app.worker_support import depth, insert_order, make_queues, order_event, running_worker, send, wait_for


@pytest.fixture
def notifier() -> Iterator[StubNotifier]:
    stub = StubNotifier().start()
    yield stub
    stub.stop()


@pytest.fixture
def queues(moto: Any) -> tuple[str, str]:
    return make_queues(moto.client("sqs"), visibility=2)


@pytest.fixture
def worker_settings(
    make_settings: Callable[..., Settings], queues: tuple[str, str], notifier: StubNotifier
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "queue_url": queues[0],
            "dead_letter_queue_url": queues[1],
            "notification_url": notifier.url,
            "worker_poll_seconds": 1,
            "worker_retry_base_seconds": 0,
            "worker_in_flight": 10,
            **overrides,
        }
        return make_settings(**values)

    return make


def _status(db: Any, order_id: str) -> str:
    return str(db.execute("SELECT status FROM orders WHERE id = %s", (order_id,)).fetchone()["status"])


def _stock(db: Any, product_id: int) -> int:
    return int(db.execute("SELECT stock FROM products WHERE id = %s", (product_id,)).fetchone()["stock"])


def test_order_event_confirms_the_order_reserves_stock_and_notifies(
    worker_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, notifier: StubNotifier
) -> None:
    sqs = moto.client("sqs")
    pid = add_product(stock=10)
    order_id = insert_order(db, [(pid, 3)])
    send(sqs, queues[0], order_event(order_id, [(pid, 3)]))
    with running_worker(worker_settings()):
        wait_for(lambda: _status(db, order_id) != "PENDING")
        wait_for(lambda: depth(sqs, queues[0]) == (0, 0))
    assert _status(db, order_id) == "CONFIRMED"
    assert _stock(db, pid) == 7
    reserved = db.execute("SELECT quantity FROM stock_reservations WHERE order_id = %s", (order_id,)).fetchall()
    assert [r["quantity"] for r in reserved] == [3]
    assert notifier.received == 1


def test_short_stock_rejects_the_order_and_releases_what_was_reserved(
    worker_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any
) -> None:
    sqs = moto.client("sqs")
    plenty, scarce = add_product(stock=10), add_product(stock=1)
    order_id = insert_order(db, [(plenty, 4), (scarce, 2)])
    send(sqs, queues[0], order_event(order_id, [(plenty, 4), (scarce, 2)]))
    with running_worker(worker_settings()):
        wait_for(lambda: _status(db, order_id) != "PENDING")
    assert _status(db, order_id) == "REJECTED"
    assert (_stock(db, plenty), _stock(db, scarce)) == (10, 1)
    assert (
        db.execute("SELECT count(*) AS n FROM stock_reservations WHERE order_id = %s", (order_id,)).fetchone()["n"] == 0
    )
    reason = db.execute("SELECT reject_reason FROM orders WHERE id = %s", (order_id,)).fetchone()["reject_reason"]
    assert f"product {scarce}" in reason


def test_the_same_message_delivered_twice_and_after_a_redis_flush_has_one_effect(
    worker_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, prefix: str, notifier: StubNotifier
) -> None:
    sqs = moto.client("sqs")
    pid = add_product(stock=100)
    order_id = insert_order(db, [(pid, 5)])
    entry = order_event(order_id, [(pid, 5)])
    message_id = json.loads(entry["MessageBody"])["message_id"]
    settings = worker_settings()
    with running_worker(settings) as worker:
        send(sqs, queues[0], entry)
        send(sqs, queues[0], entry)
        wait_for(lambda: worker.stats.counts["processed"] + worker.stats.counts["duplicate"] == 2)
        before = worker.stats.counts["duplicate"]
        # Redis loses its keys: only the unique row in PostgreSQL is left to guard.
        r = redis.Redis(host="127.0.0.1", port=6379)
        r.delete(*r.keys(f"{prefix}worker:*"))
        # Someone set the order back to PENDING by hand: the message must still not apply twice.
        db.execute("UPDATE orders SET status = 'PENDING' WHERE id = %s", (order_id,))
        send(sqs, queues[0], entry)
        wait_for(lambda: worker.stats.counts["duplicate"] == before + 1)
        wait_for(lambda: depth(sqs, queues[0]) == (0, 0))
    assert _stock(db, pid) == 95
    assert (
        db.execute("SELECT count(*) AS n FROM processed_messages WHERE message_id = %s", (message_id,)).fetchone()["n"]
        == 1
    )
    assert notifier.received == 1


def test_malformed_and_always_failing_messages_reach_the_dlq_after_three_receives_and_redrive_brings_them_back(
    worker_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, capsys: Any
) -> None:
    sqs = moto.client("sqs")
    source, dlq = queues
    pid = add_product(stock=100)
    sqs.send_message(QueueUrl=source, MessageBody="{not json")
    missing_order = str(uuid.uuid4())
    send(sqs, source, order_event(missing_order, [(pid, 1)]))  # its order does not exist yet: always fails
    good = [insert_order(db, [(pid, 1)]) for _ in range(5)]
    for order_id in good:
        send(sqs, source, order_event(order_id, [(pid, 1)]))
    settings = worker_settings(log_level="INFO")
    configure_logging("INFO")
    with running_worker(settings) as worker:
        wait_for(lambda: depth(sqs, dlq)[0] == 2, timeout=40)
        wait_for(lambda: all(_status(db, o) == "CONFIRMED" for o in good))
    assert worker.stats.counts["invalid"] == 3
    assert worker.stats.counts["failed"] == 3
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    configure_logging("WARNING")
    assert any(e.get("event") == "message_invalid" and "not JSON" in e["reason"] for e in logs)

    # The fix is out (the order exists now): redrive only the order events.
    db.execute(
        "INSERT INTO orders (id, status, customer_email, items, total_cents, currency, correlation_id)"
        " VALUES (%s, 'PENDING', 'x@example.com', '[]', 100, 'USD', 'c')",
        (missing_order,),
    )
    report = redrive(settings, rate=50, event_type="order.placed")
    assert (report.moved, report.skipped) == (1, 1)
    assert depth(sqs, dlq) == (1, 0)  # the malformed one stays, visible, in the DLQ
    with running_worker(settings):
        wait_for(lambda: _status(db, missing_order) == "CONFIRMED")
    assert _stock(db, pid) == 94


def test_dlq_redrive_command_moves_messages_back_and_reports_bad_arguments_without_a_traceback(
    worker_settings: Any, queues: Any, moto: Any, monkeypatch: Any
) -> None:
    sqs = moto.client("sqs")
    source, dlq = queues
    for _ in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    settings = worker_settings()
    for name, value in {
        "QUEUE_URL": source,
        "DEAD_LETTER_QUEUE_URL": dlq,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(cli, ["dlq", "redrive", "--rate", "100"])
    assert result.exit_code == 0, result.output
    assert "moved 3" in result.output
    assert depth(sqs, source)[0] == 3
    bad = runner.invoke(cli, ["dlq", "redrive", "--rate", "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "")
    monkeypatch.setenv("QUEUE_URL", "")
    missing = runner.invoke(cli, ["dlq", "redrive"])
    assert missing.exit_code == 2 and "QUEUE_URL is not set" in missing.output


def test_provider_down_opens_the_breaker_delays_messages_without_losing_them_and_all_complete_after_recovery(
    worker_settings: Any, queues: Any, moto: Any, db: Any, add_product: Any, notifier: StubNotifier
) -> None:
    sqs = moto.client("sqs")
    source, dlq = queues
    port = notifier.port
    notifier.stop()  # the provider is down: connections are refused
    pid = add_product(stock=100)
    orders = [insert_order(db, [(pid, 1)]) for _ in range(8)]
    for order_id in orders:
        send(sqs, source, order_event(order_id, [(pid, 1)]))
    settings = worker_settings(breaker_reset_seconds=1.0, breaker_min_calls=3)
    with running_worker(settings) as worker:
        wait_for(lambda: worker.stats.counts["deferred"] >= 1, timeout=30)
        assert worker.notifier.breaker.state in {"open", "half_open"}
        assert all(_status(db, o) == "PENDING" for o in orders)
        back = StubNotifier(port=port).start()
        try:
            wait_for(lambda: all(_status(db, o) == "CONFIRMED" for o in orders), timeout=60)
        finally:
            back.stop()
    assert depth(sqs, dlq) == (0, 0)
    assert _stock(db, pid) == 92
    assert back.received == len(back.keys) == 8


class FlakySqs:
    """Records calls; unless `flaky` is off, the first DeleteMessageBatch reports its first entry as Failed."""

    def __init__(self, flaky: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.flaky = flaky

    def delete_message_batch(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete", [e["ReceiptHandle"] for e in kw["Entries"]]))
        deletes = [c for c in self.calls if c[0] == "delete"]
        if self.flaky and len(deletes) == 1:
            first = kw["Entries"][0]["Id"]
            return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"][1:]], "Failed": [{"Id": first, "Code": "X"}]}
        return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"]], "Failed": []}

    def change_message_visibility_batch(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("visibility", [(e["ReceiptHandle"], e["VisibilityTimeout"]) for e in kw["Entries"]]))
        return {"Successful": [], "Failed": []}

    def send_message_batch(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("send", [(e["MessageBody"], e["DelaySeconds"]) for e in kw["Entries"]]))
        return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"]], "Failed": []}


def _message(handle: str, receives: int = 1) -> dict[str, Any]:
    return {
        "ReceiptHandle": handle,
        "MessageId": handle,
        "Body": "",
        "Attributes": {"ApproximateReceiveCount": str(receives)},
    }


def test_a_partial_batch_deletes_successes_in_one_call_retries_its_failed_entries_and_backs_off_failures(
    worker_settings: Any,
) -> None:
    worker = Worker(worker_settings(worker_retry_base_seconds=4))
    fake = FlakySqs()
    worker.sqs = fake
    try:
        worker.settle(
            [
                Result(Outcome.PROCESSED, _message("a")),
                Result(Outcome.PROCESSED, _message("b")),
                Result(Outcome.FAILED, _message("c", receives=3)),
            ]
        )
    finally:
        worker.close()
    assert fake.calls[0] == ("delete", ["a", "b"])
    assert fake.calls[1] == ("delete", ["a"])  # the Failed entry, retried
    kind, entries = fake.calls[2]
    assert kind == "visibility" and entries[0][0] == "c"
    assert 8 <= entries[0][1] <= 16  # base 4 s doubled per receive: 16 s with jitter down to half


def test_a_deferred_message_is_resent_with_a_delay_and_deleted_and_counts_as_retried_as_a_busy_one_does(
    worker_settings: Any, capsys: Any
) -> None:
    worker = Worker(worker_settings(breaker_reset_seconds=10, worker_retry_base_seconds=4))
    fake = FlakySqs(flaky=False)
    worker.sqs = fake
    deferred = {**_message("deferred"), "Body": "the event"}
    configure_logging("INFO")
    capsys.readouterr()
    try:
        worker.settle(
            [
                Result(Outcome.DEFERRED, deferred),
                Result(Outcome.BUSY, _message("busy")),
                Result(Outcome.DUPLICATE, _message("copy")),
            ]
        )
    finally:
        worker.close()
        out = capsys.readouterr().out
        configure_logging("WARNING")
    (kind, [(body, delay)]), *rest = fake.calls
    assert (kind, body) == ("send", "the event") and 10 <= delay <= 15  # the breaker's reset, with jitter
    assert rest[0] == ("delete", ["copy", "deferred"])  # the copy is out: the original goes
    assert rest[1][0] == "visibility" and [h for h, _ in rest[1][1]] == ["busy"]
    [record] = [json.loads(line) for line in out.splitlines() if '"worker_batch"' in line]
    assert (record["MessagesRetried"], record["MessagesFailed"], record["DuplicatesSkipped"]) == (2, 0, 1)
    assert dict(worker.stats.counts) == {"deferred": 1, "busy": 1, "duplicate": 1}


def test_heartbeat_extends_the_visibility_of_a_long_job_until_its_job_timeout(worker_settings: Any) -> None:
    worker = Worker(worker_settings(job_timeout_seconds=5))
    fake = FlakySqs()
    worker.sqs = fake
    worker.visibility = 4
    now = time.monotonic()
    worker._tracked = {
        "soon": Tracked("soon", now - 3, now + 1),  # 1 s left: extend
        "fresh": Tracked("fresh", now, now + 4),  # plenty left
        "overdue": Tracked("overdue", now - 6, now + 1),  # past the job timeout: let it go
    }
    try:
        worker.heartbeat()
    finally:
        worker.close()
    assert fake.calls == [("visibility", [("soon", 4)])]


def test_a_message_is_claimed_once_then_reported_busy_until_done(worker_settings: Any) -> None:
    worker = Worker(worker_settings())
    try:
        claims = worker.claims
        mid, other, third = (str(uuid.uuid4()) for _ in range(3))
        assert claims.claim([mid], 30) == [Claim.GO]
        assert claims.claim([mid], 30) == [Claim.BUSY]  # another delivery holds it
        claims.mark_done([mid])
        assert claims.claim([mid, other, third], 30) == [Claim.DONE, Claim.GO, Claim.GO]
        claims.release([other, third])  # their processing failed: the next delivery may take them
        assert claims.claim([other, third], 30) == [Claim.GO, Claim.GO]
    finally:
        worker.close()


def test_a_batch_is_claimed_and_marked_done_together_and_a_copy_in_the_same_batch_is_busy(
    worker_settings: Any,
) -> None:
    worker = Worker(worker_settings())
    round_trips: list[int] = []
    real_call = worker.cache.call

    def counting_call(fn: Any) -> Any:
        round_trips.append(1)
        return real_call(fn)

    worker.cache.call = counting_call  # type: ignore[method-assign]
    try:
        claims = worker.claims
        a, b, c = (str(uuid.uuid4()) for _ in range(3))
        assert claims.claim([a, a, b], 30) == [Claim.GO, Claim.BUSY, Claim.GO]
        claims.mark_done([a, b])
        assert len(round_trips) == 2  # one pipelined call for the claims, one for the done marks
        assert claims.claim([a, b, c], 30) == [Claim.DONE, Claim.DONE, Claim.GO]
        assert claims.claim([], 30) == []
        claims.mark_done([])
        claims.release([])
        assert len(round_trips) == 3  # nothing to claim or mark: no call at all
    finally:
        worker.close()


@pytest.fixture
def provider() -> Iterator[tuple[str, list[int], list[dict[str, str]]]]:
    """A provider answering the queued statuses in turn (then 200); records each request's headers."""
    answers: list[int] = []
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({**dict(self.headers), "body": body.decode()})
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/notify", answers, seen
    server.shutdown()
    server.server_close()


def test_notifier_retries_5xx_and_refused_connections_and_gives_up_on_other_4xx(
    make_settings: Callable[..., Settings], provider: Any
) -> None:
    url, answers, seen = provider
    notifier = Notifier(make_settings(notification_url=url, notification_api_key="k-123", breaker_min_calls=100))
    try:
        answers.extend([503, 429])
        notifier.send("mid-1", {"type": "order.confirmed"})
        assert len(seen) == 3
        assert {h["Idempotency-Key"] for h in seen} == {"mid-1"}
        assert seen[-1]["Authorization"] == "Bearer k-123"
        assert json.loads(seen[-1]["body"]) == {"type": "order.confirmed"}
        answers.extend([500, 500, 500])
        with pytest.raises(NotificationFailed):
            notifier.send("mid-2", {})
        answers.append(404)
        seen.clear()
        with pytest.raises(NotificationRejected):
            notifier.send("mid-3", {})
        assert len(seen) == 1  # permanent: not retried
    finally:
        notifier.close()
    down = Notifier(make_settings(notification_url="http://127.0.0.1:9/notify", breaker_min_calls=100))
    try:
        with pytest.raises(NotificationFailed, match="unreachable"):
            down.send("mid-4", {})
    finally:
        down.close()


def test_backoff_grows_per_receive_with_jitter_and_stays_within_sqs_limits() -> None:
    for receives, low, high in [(1, 1, 2), (2, 2, 4), (3, 4, 8)]:
        values = {backoff_seconds(2, receives) for _ in range(50)}
        assert min(values) >= low and max(values) <= high
    assert backoff_seconds(600, 5) == 900 or 450 <= backoff_seconds(600, 5) <= 900


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "body is not JSON"),
        ("[1]", "body is not a JSON object"),
        ('{"message_id": "x"}', "'message_id'"),
        (
            json.dumps(
                {
                    "message_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                    "type": "order.placed",
                    "aggregate_id": "a",
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "data": {"order_id": str(uuid.uuid4()), "email": "a@b.c", "items": [], "total_cents": 0},
                }
            ),
            "'message_id': Value error, must be a UUID version 4",
        ),
    ],
)
def test_a_malformed_message_gets_a_one_line_reason(body: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as exc:
        parse(body)
    assert reason in str(exc.value)
    assert "\n" not in str(exc.value)


def test_worker_command_without_a_queue_exits_with_a_clear_error(monkeypatch: Any) -> None:
    monkeypatch.setenv("QUEUE_URL", "")
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "QUEUE_URL is not set" in result.output and "Traceback" not in result.output


def _received(entry: dict[str, Any]) -> dict[str, Any]:
    """An SQS `ReceiveMessage` result for a sent entry, as the worker sees it."""
    return {
        "MessageId": entry["Id"],
        "ReceiptHandle": f"handle-{entry['Id']}",
        "Body": entry["MessageBody"],
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": entry["MessageAttributes"],
    }


def test_a_batch_is_decided_and_finished_in_one_statement_each_and_a_failing_message_holds_up_no_other(
    worker_settings: Any, db: Any, add_product: Any, notifier: StubNotifier
) -> None:
    plenty, scarce = add_product(stock=10), add_product(stock=1)
    confirmed = insert_order(db, [(plenty, 2), (scarce, 1)])
    rejected = insert_order(db, [(plenty, 3), (scarce, 5)])
    missing = str(uuid.uuid4())  # its order was never written: retried, then dead-lettered
    messages = [
        _received(order_event(confirmed, [(scarce, 1), (plenty, 2)])),  # items out of id order
        _received(order_event(missing, [(plenty, 1)])),
        _received(order_event(rejected, [(plenty, 3), (scarce, 5)])),
        {**_received(order_event(confirmed, [(plenty, 1)])), "Body": "{not json"},
    ]
    worker = Worker(worker_settings())
    statements: list[str] = []
    real_execute = worker.db.execute

    def counting_execute(sql: Any, params: Any = None) -> Any:
        statements.append(sql)
        return real_execute(sql, params)

    worker.db.execute = counting_execute  # type: ignore[method-assign]
    try:
        worker.open()
        results = worker.process_batch(messages)
        again = worker.process_batch(messages[:1])
        # The missing order's message wrote nothing and its claim is released: a redelivery may decide it.
        released = worker.claims.claim([json.loads(messages[1]["Body"])["message_id"]], 30)
    finally:
        worker.close()
    assert [(r.action, r.outcome) for r in results] == [
        (Action.DELETE, Outcome.PROCESSED),
        (Action.RETRY, Outcome.FAILED),
        (Action.DELETE, Outcome.PROCESSED),
        (Action.RETRY, Outcome.INVALID),
    ]
    assert [r.message["MessageId"] for r in results] == [m["MessageId"] for m in messages]
    assert len(statements) == 2  # the batch's step 1 and step 3; the second delivery only asks Redis
    assert [(r.action, r.outcome) for r in again] == [(Action.DELETE, Outcome.DUPLICATE)]
    assert (_status(db, confirmed), _status(db, rejected)) == ("CONFIRMED", "REJECTED")
    assert (_stock(db, plenty), _stock(db, scarce)) == (8, 0)
    assert notifier.received == 2
    ids = [json.loads(m["Body"])["message_id"] for m in messages[:3]]
    rows = db.execute(
        "SELECT message_id::text AS id FROM processed_messages WHERE message_id = ANY(%s::uuid[])", (ids,)
    )
    assert sorted(r["id"] for r in rows) == sorted([ids[0], ids[2]])
    assert released == [Claim.GO]


def test_concurrent_batches_over_the_same_products_in_opposite_orders_do_not_deadlock(
    worker_settings: Any, db: Any, add_product: Any
) -> None:
    products = [add_product(stock=1000) for _ in range(4)]
    worker = Worker(worker_settings(notification_url="", db_pool_max=4))
    try:
        worker.open()
        for _ in range(5):  # each run locks the same rows from both ends at once
            batches = [
                [_received(order_event(insert_order(db, [(p, 1)]), [(p, 1)])) for p in line]
                for line in (products, list(reversed(products)))
            ]
            with ThreadPoolExecutor(2) as pool:
                outcomes = list(pool.map(worker.process_batch, batches))
            # A deadlock would fail one of the batches (PostgreSQL aborts a transaction of the cycle).
            assert [r.outcome for results in outcomes for r in results] == [Outcome.PROCESSED] * 8
    finally:
        worker.close()
    assert [_stock(db, p) for p in products] == [990] * 4
