"""The consumer loop: receive, keep visible, settle, and drain on shutdown.

A receiver thread long-polls the queue (20 s, batches of up to 10) while fewer than `WORKER_IN_FLIGHT` messages
are in flight; each batch goes to order processing on a thread pool, then is settled with batch calls:
successes deleted in one `DeleteMessageBatch` (its `Failed` entries retried), failures made visible again after
an exponential backoff (`ChangeMessageVisibilityBatch`; after `maxReceiveCount` receives SQS moves them to the
DLQ), and messages that met an open notification breaker re-sent with a delay (a fresh copy, so an outage never
counts towards the DLQ) and deleted. A heartbeat extends the visibility of long jobs (up to
`JOB_TIMEOUT_SECONDS`). SIGTERM stops receiving, lets in-flight messages finish within the drain budget,
releases the rest at once (visibility 0) and exits before the task's stop timeout.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract
from app.cache import Cache
from app.catalog import Catalog
from app.data import Database
from app.notifications import Notifier
from app.observability import metric_fields
from app.worker.idempotency import Claims
from app.worker.messages import lag_ms, receive_count, string_attributes
from app.worker.orders import OrderProcessing
from app.worker.results import Action, Outcome, Result

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger("app.worker")
SQS_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
# The queue's attributes could not be read, its VisibilityTimeout is not a number, or its redrive policy is
# malformed.
ATTRIBUTES_UNREADABLE: tuple[type[BaseException], ...] = (*SQS_ERRORS, ValueError, KeyError)
BATCH = 10
MAX_DELAY_SECONDS = 900  # SQS's limit for both DelaySeconds and a backoff we would want


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
        self.notifier = Notifier(settings, self.cache.available_client, stopping=self.stop)
        self.claims = Claims(self.cache)
        self.in_flight = settings.worker_in_flight
        self._slots = threading.Semaphore(self.in_flight)
        self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="message")
        self._batches = ThreadPoolExecutor(math.ceil(self.in_flight / BATCH) + 1, thread_name_prefix="batch")
        self.orders = OrderProcessing(self.db, Catalog(self.db, self.cache), self.notifier, self.claims, self._pool)
        self.orders.defer_limit_seconds = settings.notify_defer_limit_seconds
        # Kept for callers that open a message's consumer span by hand (the request-to-worker trace test).
        self._span = self.orders.span
        self._tracked: dict[str, Tracked] = {}
        self._tracked_lock = threading.Lock()
        self._pending_batches = 0
        self._idle = threading.Condition()
        self.stats = Stats()
        self.visibility = 30
        self._opened = False

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

    def process_batch(self, messages: list[dict[str, Any]]) -> list[Result]:
        """Process received messages together and say how to settle each (in their order)."""
        # A claim runs out just before the message is visible again, so a dead worker's messages are free.
        return self.orders.process(messages, claim_seconds=max(self.visibility - 1, 1))

    def _queue_visibility(self) -> int:
        """The queue's visibility timeout; also tells order processing the receive that is a message's last."""
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.settings.queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
            )["Attributes"]
            if "RedrivePolicy" in attrs:
                self.orders.max_receives = int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])
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
        by_action = {action: [r.message for r in results if r.action is action] for action in Action}
        to_delete = by_action[Action.DELETE] + self._requeue(by_action[Action.REQUEUE])
        self._delete(to_delete)
        if by_action[Action.RETRY]:
            base = self.settings.worker_retry_base_seconds
            self._change_visibility([(m, backoff_seconds(base, receive_count(m))) for m in by_action[Action.RETRY]])
        counts = Counter(r.outcome.value for r in results)
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
                "MessageAttributes": string_attributes(m),
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

    # --- metrics -------------------------------------------------------------------------------------------

    def _emit_metrics(self, results: list[Result], counts: Counter[str]) -> None:
        lags = [lag_ms(r.message) for r in results]
        breaker_open = 1 if self.notifier.enabled and self.notifier.breaker.state != "closed" else 0
        values = {
            contract.METRIC_MESSAGES_PROCESSED: counts.get(Outcome.PROCESSED, 0),
            contract.METRIC_MESSAGES_FAILED: sum(
                counts.get(outcome, 0) for outcome in (Outcome.FAILED, Outcome.INVALID, Outcome.COMPENSATED)
            ),
            # Every message left for another delivery: backed off, or re-sent while the breaker is open.
            contract.METRIC_MESSAGES_RETRIED: sum(
                counts.get(outcome, 0) for outcome in Outcome if outcome.action is not Action.DELETE
            ),
            contract.METRIC_DUPLICATES_SKIPPED: counts.get(Outcome.DUPLICATE, 0),
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
