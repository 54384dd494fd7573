"""The SQS worker (`app worker`): at-least-once delivery, exactly-once effects, graceful shutdown.

A receiver thread long-polls the queue (20 s, batches of up to 10) while fewer than `WORKER_IN_FLIGHT` messages
are in flight; each batch is processed on a thread pool, then settled with batch calls: successes deleted in
one `DeleteMessageBatch` (its `Failed` entries retried), failures made visible again after an exponential
backoff (`ChangeMessageVisibilityBatch`; after `maxReceiveCount` receives SQS moves them to the DLQ), and
messages that met an open notification breaker re-sent with a delay (a fresh copy, so an outage never
counts towards the DLQ) and deleted.

Exactly-once effects: the event's `message_id` is claimed in Redis with `SET NX` (fast path: a message marked
done is skipped without touching the database), and a row in `processed_messages` (unique message id) is
written in the same transaction as the effect, so a duplicate - also one after Redis lost its keys - finds the
row and changes nothing. A batch goes through its steps together (`process_batch`): one round trip per step.
A heartbeat extends the visibility of long jobs (up to `JOB_TIMEOUT_SECONDS`).
SIGTERM stops receiving, lets in-flight messages finish within the drain budget, releases the rest at once
(visibility 0) and exits before the task's stop timeout.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.types.json import Jsonb

from app import aws, contract
from app.cache import REDIS_UNAVAILABLE, Cache
from app.catalog import Catalog
from app.data import Database
from app.events import Envelope, InvalidMessage, message_id_hint, parse
from app.notifications import NotificationFailed, NotificationRejected, Notifier
from app.observability import correlation_id, metric_fields
from app.resilience import CircuitOpenError

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger("app.worker")
SQS_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
# The queue's attributes could not be read, or its VisibilityTimeout is not a number.
ATTRIBUTES_UNREADABLE: tuple[type[BaseException], ...] = (*SQS_ERRORS, ValueError)
BATCH = 10
MAX_DELAY_SECONDS = 900  # SQS's limit for both DelaySeconds and a backoff we would want
DONE = b"done"


class OrderNotFound(Exception):
    """The event names an order the database does not have (retried, then dead-lettered)."""


@dataclass
class Result:
    """How one message is settled: `delete` (done, duplicate), `retry` (backoff), `requeue` (breaker open)."""

    action: str
    outcome: str
    message: dict[str, Any]


@dataclass
class Delivery:
    """A received message on its way through its batch's steps; `result` is set once it is settled."""

    message: dict[str, Any]
    event: Envelope | None = None
    claimed: bool = False  # its idempotency claim is ours: marked done with the batch, or released
    decision: dict[str, Any] | None = None  # its row from step 1
    result: Result | None = None

    @property
    def message_id(self) -> str:
        return str(self.event.message_id) if self.event else ""

    @property
    def parsed(self) -> Envelope:
        """The event of a message past parsing (every one still pending after it)."""
        assert self.event is not None
        return self.event

    @property
    def decided(self) -> dict[str, Any]:
        """Its row from step 1, of a message past that step."""
        assert self.decision is not None
        return self.decision

    @property
    def status(self) -> str:
        """The decision: CONFIRMED, REJECTED or already-decided (by an earlier message for the order)."""
        return str(self.decision["outcome"]).removeprefix("notify:") if self.decision else ""


@dataclass
class Tracked:
    receipt: str
    started: float
    visible_until: float


@dataclass
class Stats:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **values: int) -> None:
        with self.lock:
            self.counts.update(values)


def backoff_seconds(base: float, receive_count: int) -> int:
    """Exponential backoff with jitter for a failed message's next visibility, in whole seconds (SQS's unit)."""
    ceiling = min(MAX_DELAY_SECONDS, base * 2 ** max(0, receive_count - 1))
    return min(MAX_DELAY_SECONDS, math.ceil(random.uniform(ceiling / 2, ceiling)))  # noqa: S311 - jitter


class Worker:
    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        if not settings.queue_url:
            raise ValueError(f"{contract.QUEUE_URL} is not set: the worker needs the queue to consume")
        self.settings = settings
        self.stop = stop or threading.Event()
        self.sqs = aws.client("sqs", settings)
        # Long polls outlast the usual 3 s bound: the receiving client waits the poll plus that bound.
        poll_bound = settings.worker_poll_seconds + settings.outbound_timeout
        self.receiver = aws.client("sqs", settings.model_copy(update={"outbound_timeout": poll_bound}))
        self.cache = Cache(settings)
        # A steady consumer keeps its pool full: no message waits for a connection to be opened.
        self.db = Database(settings, self.cache.available_client, min_connections=settings.db_pool_max)
        self.catalog = Catalog(self.db, self.cache)
        self.notifier = Notifier(settings, self.cache.available_client)
        self.in_flight = settings.worker_in_flight
        self._slots = threading.Semaphore(self.in_flight)
        self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="message")
        self._batches = ThreadPoolExecutor(math.ceil(self.in_flight / BATCH) + 1, thread_name_prefix="batch")
        self._tracked: dict[str, Tracked] = {}
        self._tracked_lock = threading.Lock()
        self._pending_batches = 0
        self._idle = threading.Condition()
        self.stats = Stats()
        self.visibility = 30
        self._opened = False
        self._tracer: Any = None

    # --- the main loop -------------------------------------------------------------------------------------

    def open(self) -> None:
        """Get ready to consume (once): the database pool opened and filled, the queue's visibility read.

        A message received before the pool has its connections would wait for one to be made; if the
        database is slow to answer, the worker starts after the outbound bound anyway and the pool keeps
        connecting in the background.
        """
        if self._opened:
            return
        self._opened = True
        self.db.open(ready_within=self.settings.outbound_timeout)
        self.visibility = self._queue_visibility()

    def run(self, drain_seconds: float = contract.GRACEFUL_TIMEOUT_SECONDS - 3) -> None:
        """Consume until `stop` is set, then drain within `drain_seconds` and return."""
        self.open()
        log.info("worker_started", queue_url=self.settings.queue_url, in_flight=self.in_flight)
        receiver = threading.Thread(target=self._receive_loop, name="receiver", daemon=True)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        receiver.start()
        heartbeat.start()
        self.stop.wait()
        deadline = time.monotonic() + drain_seconds
        log.info("worker_stopping", in_flight=len(self._tracked))
        with self._idle:
            self._idle.wait_for(lambda: self._pending_batches == 0, timeout=max(0.0, deadline - time.monotonic()))
        self._release_all("shutdown")
        receiver.join(max(0.0, deadline - time.monotonic()))
        self._release_all("shutdown")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._batches.shutdown(wait=False, cancel_futures=True)
        self.close()
        log.info("worker_stopped", **dict(self.stats.counts))

    def close(self) -> None:
        self.notifier.close()
        self.db.close()
        self.cache.close()

    def _queue_visibility(self) -> int:
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.settings.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            return max(1, int(attrs.get("VisibilityTimeout", "30")))
        except ATTRIBUTES_UNREADABLE as exc:
            log.warning("queue_attributes_unavailable", error=type(exc).__name__)
            return 30

    def _take_slots(self) -> int:
        """Block until a whole batch's worth of slots is free (or stop), then take them.

        Receiving full batches keeps SQS calls (receive and delete) per message at their minimum; slots are
        taken one at a time so a partly busy pool is simply waited for.
        """
        want = min(BATCH, self.in_flight)
        taken = 0
        while taken < want:
            if self._slots.acquire(timeout=0.5):
                taken += 1
            elif self.stop.is_set():
                for _ in range(taken):
                    self._slots.release()
                return 0
        return taken

    def _receive_loop(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            taken = self._take_slots()
            if not taken:
                return
            wanted = taken
            if self.notifier.enabled and self.notifier.breaker.state == "open":
                # The provider is down: take one message at a time (it probes the breaker once reset).
                wanted = 1
                self.stop.wait(1.0)
            try:
                messages = self.receiver.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=self.settings.worker_poll_seconds,
                    AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                backoff = 0.5
            except SQS_ERRORS as exc:
                log.warning("receive_failed", error=type(exc).__name__, retry_in=backoff)
                messages = []
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            for _ in range(taken - len(messages)):
                self._slots.release()
            if not messages:
                continue
            now = time.monotonic()
            with self._tracked_lock:
                for m in messages:
                    self._tracked[m["ReceiptHandle"]] = Tracked(m["ReceiptHandle"], now, now + self.visibility)
            if self.stop.is_set():
                self._release(messages, "shutdown")
                for _ in messages:
                    self._slots.release()
                return
            with self._idle:
                self._pending_batches += 1
            self._batches.submit(self._handle_batch, messages)

    # --- one batch -----------------------------------------------------------------------------------------

    def _handle_batch(self, messages: list[dict[str, Any]]) -> None:
        try:
            try:
                results = self.process_batch(messages)
            finally:
                for _ in messages:
                    self._slots.release()
            self.settle(results)
        except Exception:
            log.exception("batch_failed", size=len(messages))
        finally:
            with self._tracked_lock:
                for m in messages:
                    self._tracked.pop(m["ReceiptHandle"], None)
            with self._idle:
                self._pending_batches -= 1
                self._idle.notify_all()

    def settle(self, results: list[Result]) -> None:
        """Delete successes in one batch call (retrying its Failed entries), back off failures, requeue deferrals."""
        requeue = [r.message for r in results if r.action == "requeue"]
        to_delete = [r.message for r in results if r.action == "delete"]
        to_delete += self._requeue(requeue)
        retry = [r.message for r in results if r.action == "retry"]
        self._delete(to_delete)
        if retry:
            self._change_visibility(
                [(m, backoff_seconds(self.settings.worker_retry_base_seconds, _receive_count(m))) for m in retry]
            )
        counts = Counter(r.outcome for r in results)
        self.stats.add(**counts)
        self._emit_metrics(results, counts)

    def _delete(self, messages: list[dict[str, Any]], attempts: int = 3) -> None:
        pending = {str(i): m for i, m in enumerate(messages)}
        for attempt in range(attempts):
            if not pending:
                return
            entries = [{"Id": i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in pending.items()]
            try:
                resp = self.sqs.delete_message_batch(QueueUrl=self.settings.queue_url, Entries=entries)
                failed = {f["Id"]: f for f in resp.get("Failed", [])}
            except SQS_ERRORS as exc:
                failed = {i: {"Code": type(exc).__name__} for i in pending}
            for i, f in failed.items():
                log.warning("delete_failed", message_id=pending[i]["MessageId"], code=f.get("Code"), attempt=attempt)
            pending = {i: m for i, m in pending.items() if i in failed}
            if pending:
                time.sleep(random.uniform(0.05, 0.2) * 2**attempt)  # noqa: S311 - jitter
        if pending:
            # Not lost: the message comes back after its visibility timeout and is skipped as a duplicate.
            log.error("delete_gave_up", message_ids=[m["MessageId"] for m in pending.values()])

    def _change_visibility(self, items: list[tuple[dict[str, Any], int]]) -> None:
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": delay}
                for i, (m, delay) in enumerate(chunk)
            ]
            try:
                resp = self.sqs.change_message_visibility_batch(QueueUrl=self.settings.queue_url, Entries=entries)
                for f in resp.get("Failed", []):
                    log.info("visibility_change_failed", code=f.get("Code"), id=f.get("Id"))
            except SQS_ERRORS as exc:
                log.warning("visibility_change_failed", error=type(exc).__name__, count=len(entries))

    def _requeue(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a delayed copy of each message; returns the originals whose copy was accepted (to delete)."""
        if not messages:
            return []
        if self.settings.queue_url.endswith(".fifo"):  # no per-message delay on FIFO queues
            self._change_visibility([(m, self._breaker_delay()) for m in messages])
            return []
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "DelaySeconds": self._breaker_delay(),
                "MessageAttributes": _string_attributes(m),
            }
            for i, m in enumerate(messages)
        ]
        try:
            resp = self.sqs.send_message_batch(QueueUrl=self.settings.queue_url, Entries=entries)
            ok = {s["Id"] for s in resp.get("Successful", [])}
        except SQS_ERRORS as exc:
            log.warning("requeue_failed", error=type(exc).__name__)
            ok = set()
        rest = [m for i, m in enumerate(messages) if str(i) not in ok]
        if rest:
            self._change_visibility([(m, self._breaker_delay()) for m in rest])
        return [m for i, m in enumerate(messages) if str(i) in ok]

    def _breaker_delay(self) -> int:
        base = max(1.0, self.settings.breaker_reset_seconds)
        return min(MAX_DELAY_SECONDS, math.ceil(base * random.uniform(1.0, 1.5)))  # noqa: S311 - jitter

    def _release(self, messages: list[dict[str, Any]], reason: str) -> None:
        """Make messages visible again at once (shutdown): another consumer takes them immediately."""
        if messages:
            log.info("messages_released", count=len(messages), reason=reason)
            self._change_visibility([(m, 0) for m in messages])

    def _release_all(self, reason: str) -> None:
        with self._tracked_lock:
            handles = list(self._tracked)
            self._tracked.clear()
        self._release([{"ReceiptHandle": h} for h in handles], reason)

    # --- the heartbeat -------------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = max(0.5, self.visibility / 3)
        while not self.stop.wait(interval):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Extend the visibility of messages still being processed before it runs out (up to the job timeout)."""
        now = time.monotonic()
        due: list[tuple[dict[str, Any], int]] = []
        with self._tracked_lock:
            for t in self._tracked.values():
                if now - t.started >= self.settings.job_timeout_seconds:
                    continue  # over its job timeout: let it become visible and be retried elsewhere
                if t.visible_until - now <= self.visibility / 2:
                    t.visible_until = now + self.visibility
                    due.append(({"ReceiptHandle": t.receipt}, self.visibility))
        if due:
            log.info("visibility_extended", count=len(due), seconds=self.visibility)
            self._change_visibility(due)

    # --- one batch's effect --------------------------------------------------------------------------------

    def process_batch(self, messages: list[dict[str, Any]]) -> list[Result]:
        """Process received messages together and say how to settle each (in their order).

        Every step is one round trip for the whole batch, whatever its size: the idempotency claims (Redis),
        step 1 (the database function `decide_orders`, migration 0005: per message its unique
        `processed_messages` row, the order's lock, the stock reservation - or the rejection, with a
        compensation releasing what was reserved - and the decision, recorded on the row as
        `notify:<STATUS>`), the cache invalidation of the stock it changed, step 3 (the orders' status and the
        rows' final outcome, one statement) and the done marks. Step 2, the provider calls, runs between 1 and
        3 on the pool, one call per message and outside any transaction (no lock is held while it runs).
        A redelivery after a failure in step 2 or 3 finds `notify:<STATUS>` and resumes there; after step 3 it
        is a duplicate. A message that fails a step is left for redelivery and does not hold up the others.
        """
        batch = [self._parse(m) for m in messages]
        self._claim_batch(batch)
        self._decide(batch)
        self._notify(batch)
        self._finish(batch)
        results = [d.result or Result("retry", "failed", d.message) for d in batch]
        ours = [(d.message_id, r.action) for d, r in zip(batch, results, strict=True) if d.claimed]
        self._mark_done_many([mid for mid, action in ours if action == "delete"])
        self._unclaim_many([mid for mid, action in ours if action != "delete"])  # the next delivery may take it
        return results

    def _parse(self, message: dict[str, Any]) -> Delivery:
        delivery = Delivery(message)
        body = message.get("Body", "")
        try:
            delivery.event = parse(body)
        except InvalidMessage as exc:
            with self._context(delivery):
                log.error(
                    "message_invalid",
                    message_id=message_id_hint(body),
                    receive_count=_receive_count(message),
                    reason=str(exc),
                )
            delivery.result = Result("retry", "invalid", message)
        return delivery

    def _claim_batch(self, batch: list[Delivery]) -> None:
        parsed = _pending(batch)
        for delivery, claim in zip(parsed, self._claim_many([d.message_id for d in parsed]), strict=True):
            delivery.claimed = claim == "go"
            if claim == "done":
                with self._context(delivery):
                    log.info("duplicate_skipped", message_id=delivery.message_id, guard="redis")
                delivery.result = Result("delete", "duplicate", delivery.message)
            elif claim == "busy":
                with self._context(delivery):
                    log.info("message_busy", message_id=delivery.message_id, reason="another delivery is processing it")
                delivery.result = Result("retry", "busy", delivery.message)

    def _decide(self, batch: list[Delivery]) -> None:
        """Step 1 for every claimed message, then one invalidation of the stock it reserved."""
        claimed = _pending(batch)
        if not claimed:
            return
        items = []
        for delivery in claimed:
            wanted: Counter[int] = Counter()
            for line in delivery.parsed.data.items:
                wanted[line.product_id] += line.quantity
            items.append([[p, wanted[p]] for p in sorted(wanted)])
        try:
            rows = self.db.execute(
                "SELECT message_id::text AS message_id, outcome, detail, email, reserved"
                " FROM decide_orders(%s::uuid[], %s::text[], %s::uuid[], %s)",
                (
                    [d.message_id for d in claimed],
                    [d.parsed.type for d in claimed],
                    [d.parsed.data.order_id for d in claimed],
                    Jsonb(items),
                ),
            )
        except Exception as exc:  # noqa: BLE001 - the batch is left for redelivery, the worker goes on
            for delivery in claimed:
                self._failed(delivery, exc, unexpected=not isinstance(exc, psycopg.Error))
            return
        decisions = {row["message_id"]: row for row in rows}
        reserved: set[int] = set()
        for delivery in claimed:
            row = decisions[delivery.message_id]
            reserved.update(row["reserved"])
            if row["outcome"] == "missing":
                self._failed(delivery, OrderNotFound(row["detail"]))
            elif row["outcome"] == "duplicate":
                with self._context(delivery):
                    log.info("duplicate_skipped", message_id=delivery.message_id, guard="database")
                delivery.result = Result("delete", "duplicate", delivery.message)
            else:
                delivery.decision = row
        if reserved:
            self.catalog.invalidate(sorted(reserved))  # stock changed in the committed step 1

    def _notify(self, batch: list[Delivery]) -> None:
        """Step 2: the provider calls, concurrently on the pool (an order decided before needs none)."""
        due = [d for d in _pending(batch) if d.status != "already-decided"]
        for future in [self._pool.submit(self._notify_one, d) for d in due]:
            future.result()

    def _notify_one(self, delivery: Delivery) -> None:
        event, status = delivery.parsed, delivery.status
        with self._context(delivery), self._span(event, delivery.message.get("MessageAttributes", {})):
            try:
                self.notifier.send(
                    delivery.message_id,
                    {
                        "type": f"order.{status.lower()}",
                        "order_id": str(event.data.order_id),
                        "email": delivery.decided["email"],
                        "reason": delivery.decided["detail"],
                    },
                )
            except CircuitOpenError:
                log.info("message_deferred", message_id=delivery.message_id, reason="notification breaker open")
                delivery.result = Result("requeue", "deferred", delivery.message)
            except (NotificationRejected, NotificationFailed) as exc:
                self._failed(delivery, exc)
            except Exception as exc:  # noqa: BLE001 - one message's failure is logged and retried, never the batch's
                self._failed(delivery, exc, unexpected=True)

    def _finish(self, batch: list[Delivery]) -> None:
        """Step 3 for every decided message: the orders' status and the rows' final outcome, one statement."""
        decided = _pending(batch)
        if not decided:
            return
        try:
            self.db.execute(
                "WITH f AS (SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[])"
                " AS f(message_id, order_id, status, reason)),"
                " decided AS (UPDATE orders o SET status = f.status, decided_at = now(), reject_reason = f.reason"
                " FROM f WHERE o.id = f.order_id AND o.status = 'PENDING' AND f.status <> 'already-decided')"
                " UPDATE processed_messages pm SET outcome = f.status FROM f WHERE pm.message_id = f.message_id",
                (
                    [d.message_id for d in decided],
                    [d.parsed.data.order_id for d in decided],
                    [d.status for d in decided],
                    [d.decided["detail"] for d in decided],
                ),
            )
        except Exception as exc:  # noqa: BLE001 - the batch is left for redelivery, the worker goes on
            for delivery in decided:
                self._failed(delivery, exc, unexpected=not isinstance(exc, psycopg.Error))
            return
        for delivery in decided:
            if delivery.status == "already-decided":
                with self._context(delivery):
                    log.info("duplicate_skipped", message_id=delivery.message_id, guard="database")
                delivery.result = Result("delete", "duplicate", delivery.message)
                continue
            with self._context(delivery):
                log.info(
                    "message_processed",
                    message_id=delivery.message_id,
                    order_id=str(delivery.parsed.data.order_id),
                    outcome=delivery.status,
                    queue_lag_ms=_lag_ms(delivery.message),
                )
            delivery.result = Result("delete", "processed", delivery.message)

    def _failed(self, delivery: Delivery, exc: BaseException, unexpected: bool = False) -> None:
        """Leave the message for redelivery (with a backoff; the DLQ after maxReceiveCount)."""
        with self._context(delivery):
            fields = {"message_id": delivery.message_id, "receive_count": _receive_count(delivery.message)}
            if unexpected:
                log.error("message_failed", **fields, exc_info=exc)
            else:
                detail = str(exc).splitlines()[0] if str(exc) else ""
                log.warning("message_failed", **fields, error=type(exc).__name__, detail=detail)
        delivery.result = Result("retry", "failed", delivery.message)

    @contextmanager
    def _context(self, delivery: Delivery) -> Iterator[None]:
        """The message's correlation id (its attribute, else its event's) and SQS id on every log line."""
        cid = delivery.message.get("MessageAttributes", {}).get("correlation_id", {}).get("StringValue", "")
        if not cid and delivery.event is not None:
            cid = delivery.event.correlation_id
        token = correlation_id.set(cid)
        try:
            with structlog.contextvars.bound_contextvars(sqs_message_id=delivery.message.get("MessageId", "")):
                yield
        finally:
            correlation_id.reset(token)

    @contextmanager
    def _span(self, event: Envelope, attrs: dict[str, Any]) -> Iterator[None]:
        """A consumer span linked to the API request that produced the message (its `traceparent`, if sent)."""
        from opentelemetry import trace  # noqa: PLC0415 - a no-op tracer unless tracing is configured
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

        links = []
        parent = attrs.get("traceparent", {}).get("StringValue")
        if parent:
            ctx = trace.get_current_span(TraceContextTextMapPropagator().extract({"traceparent": parent}))
            if ctx.get_span_context().is_valid:
                links.append(trace.Link(ctx.get_span_context()))
        if self._tracer is None:
            # A proxy until tracing is configured, then the real tracer: fetched once, not per message.
            self._tracer = trace.get_tracer("app.worker")
        with self._tracer.start_as_current_span(
            f"process {event.type}",
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "aws_sqs",
                "messaging.message.id": str(event.message_id),
                "app.correlation_id": event.correlation_id,
                "app.order_id": str(event.data.order_id),
            },
        ):
            yield

    # --- idempotency ---------------------------------------------------------------------------------------

    def _claim_key(self, mid: str) -> str:
        return self.cache.key("worker", "message", mid)

    def _claim_many(self, mids: list[str]) -> list[str]:
        """Per id: 'go' (claimed, or Redis unavailable: the database guard decides), 'done' or 'busy' (being
        processed); one pipelined round trip for them all.

        A claim expires just before the message's visibility timeout, so a message whose worker died is
        free again when SQS redelivers it.
        """
        if not mids:
            return []
        ttl = max(self.visibility - 1, 1)

        def claim(r: Any) -> list[bytes | None]:
            pipe = r.pipeline(transaction=False)
            for mid in mids:
                # SET NX GET (Redis 7.0+): the claim and, when it is taken, its holder's value in one atomic step.
                pipe.set(self._claim_key(mid), b"processing", nx=True, get=True, ex=ttl)
            return pipe.execute()  # type: ignore[no-any-return]

        try:
            previous = self.cache.call(claim)
        except REDIS_UNAVAILABLE:
            return ["go"] * len(mids)  # the fast path is down; the unique row still guards
        return ["go" if p is None else "done" if p == DONE else "busy" for p in previous]

    def _mark_done_many(self, mids: list[str]) -> None:
        if not mids:
            return

        def mark(r: Any) -> None:
            pipe = r.pipeline(transaction=False)
            for mid in mids:
                pipe.set(self._claim_key(mid), DONE, ex=contract.IDEMPOTENCY_KEY_TTL_SECONDS)
            pipe.execute()

        with suppress(*REDIS_UNAVAILABLE):
            self.cache.call(mark)

    def _unclaim_many(self, mids: list[str]) -> None:
        """Release claims whose processing failed: the next delivery may take them at once."""
        if not mids:
            return
        keys = [self._claim_key(mid) for mid in mids]
        with suppress(*REDIS_UNAVAILABLE):
            self.cache.call(lambda r: r.delete(*keys))

    # --- metrics -------------------------------------------------------------------------------------------

    def _emit_metrics(self, results: list[Result], counts: Counter[str]) -> None:
        lags = [_lag_ms(r.message) for r in results]
        breaker_open = 1 if self.notifier.enabled and self.notifier.breaker.state != "closed" else 0
        values = {
            contract.METRIC_MESSAGES_PROCESSED: counts.get("processed", 0),
            contract.METRIC_MESSAGES_FAILED: counts.get("failed", 0) + counts.get("invalid", 0),
            contract.METRIC_MESSAGES_RETRIED: sum(counts.get(k, 0) for k in ("failed", "invalid", "deferred", "busy")),
            contract.METRIC_DUPLICATES_SKIPPED: counts.get("duplicate", 0),
            contract.METRIC_QUEUE_LAG: max(lags) if lags else 0,
            contract.METRIC_NOTIFICATION_BREAKER_OPEN: breaker_open,
        }
        record = {
            "event": "worker_batch",
            "level": "info",
            "timestamp": datetime.now(UTC).isoformat(),
            **metric_fields(self.settings.metrics_namespace, values, {"Service": "worker"}),
        }
        structlog.get_logger("app.worker.metrics").info(**record)


def _pending(batch: list[Delivery]) -> list[Delivery]:
    return [d for d in batch if d.result is None]


def _receive_count(message: dict[str, Any]) -> int:
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    except ValueError:
        return 1


def _lag_ms(message: dict[str, Any]) -> int:
    try:
        sent = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
    except ValueError:
        return 0
    return max(0, int(time.time() * 1000) - sent) if sent else 0


def _string_attributes(message: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
        for name, value in message.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }


def new_message(event_type: str, data: dict[str, Any], correlation: str = "") -> dict[str, Any]:
    """An SQS `SendMessage` entry in the outbox relay's format (for tools and tests)."""
    mid = str(uuid.uuid4())
    body = {
        "message_id": mid,
        "type": event_type,
        "aggregate_id": str(data.get("order_id", mid)),
        "correlation_id": correlation,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": data,
    }
    return {
        "Id": mid,
        "MessageBody": json.dumps(body, separators=(",", ":")),
        "MessageAttributes": {
            "message_id": {"DataType": "String", "StringValue": mid},
            "correlation_id": {"DataType": "String", "StringValue": correlation or "-"},
            "event_type": {"DataType": "String", "StringValue": event_type},
        },
    }
