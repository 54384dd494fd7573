"""Order processing: a received batch of `order.placed` events decided, notified and finished together.

Every step is one round trip for the whole batch, whatever its size: the idempotency claims (Redis),
step 1 (the database function `decide_orders`, migration 0005: per message its unique `processed_messages`
row, the order's lock, the stock reservation - or the rejection, with a compensation releasing what was
reserved - and the decision, recorded on the row as `notify:<STATUS>`), the cache invalidation of the stock
it changed, step 3 (the orders' status and the rows' final outcome, one statement) and the done marks.
Step 2, the provider calls, runs between 1 and 3 on the pool, one call per message and outside any
transaction (no lock is held while it runs). A redelivery after a failure in step 2 or 3 finds
`notify:<STATUS>` and resumes there; after step 3 it is a duplicate. A message that fails a step is left for
redelivery and does not hold up the others.

The saga always settles: a message that fails for good is compensated (`compensate`, the database function
`compensate_orders`, migration 0009: its reserved stock released once, the order FAILED with the reason) and
deleted, never left PENDING with stock held. For good means: it failed on its last receive (ApproximateReceiveCount
at the queue's maxReceiveCount: the next failure would dead-letter it), or the notification breaker was open when
its order had already waited `NOTIFY_DEFER_LIMIT_SECONDS`, or it is found in the DLQ (`app.dlq`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from app import contract
from app.bulkhead import CompartmentFull
from app.catalog import Catalog
from app.data import Database
from app.events import Envelope, InvalidMessage, message_id_hint, parse
from app.notifications import NotificationFailed, NotificationRejected, Notifier
from app.observability import correlation_id
from app.resilience import CircuitOpenError
from app.worker.idempotency import Claim, Claims
from app.worker.messages import lag_ms, receive_count
from app.worker.results import Action, Outcome, Result

log = structlog.get_logger("app.worker")


class OrderNotFound(Exception):
    """The event names an order the database does not have (retried, then dead-lettered)."""


@dataclass
class Delivery:
    """A received message on its way through its batch's steps; `result` is set once it is settled."""

    message: dict[str, Any]
    event: Envelope | None = None
    claimed: bool = False  # its idempotency claim is ours: marked done with the batch, or released
    decision: dict[str, Any] | None = None  # its row from step 1
    result: Result | None = None
    error: str = ""  # why it failed, the reason of its compensation if it failed for good
    breaker_open: bool = False  # deferred because the notification breaker is open (not for local saturation)

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

    def settle(self, outcome: Outcome) -> None:
        self.result = Result(outcome, self.message)


class OrderProcessing:
    """The batch steps over the database, the stock cache, the provider and the idempotency claims."""

    def __init__(
        self, db: Database, catalog: Catalog, notifier: Notifier, claims: Claims, pool: ThreadPoolExecutor
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.notifier = notifier
        self.claims = claims
        self._pool = pool  # step 2's provider calls, one per message
        self._tracer: Any = None
        # The queue's maxReceiveCount (read by the consumer from its redrive policy): a failure on that receive
        # is the message's last before the DLQ.
        self.max_receives = contract.MAX_RECEIVE_COUNT
        self.defer_limit_seconds: float = contract.NOTIFY_DEFER_LIMIT_SECONDS_DEFAULT

    def process(self, messages: list[dict[str, Any]], claim_seconds: int) -> list[Result]:
        """Process received messages together and say how to settle each (in their order).

        `claim_seconds` bounds each idempotency claim: it should run out before the message is visible again.
        """
        batch = [self._parse(m) for m in messages]
        self._claim(batch, claim_seconds)
        self._decide(batch)
        self._notify(batch)
        self._finish(batch)
        self._compensate(batch)
        results = [d.result or Result(Outcome.FAILED, d.message) for d in batch]
        ours = [(d.message_id, r.action) for d, r in zip(batch, results, strict=True) if d.claimed]
        self.claims.mark_done([mid for mid, action in ours if action is Action.DELETE])
        # Released, not left to expire: the next delivery may take it at once.
        self.claims.release([mid for mid, action in ours if action is not Action.DELETE])
        return results

    def _parse(self, message: dict[str, Any]) -> Delivery:
        delivery = Delivery(message)
        body = message.get("Body", "")
        try:
            delivery.event = parse(body)
        except InvalidMessage as exc:
            with self.context(delivery):
                log.error(
                    "message_invalid",
                    message_id=message_id_hint(body),
                    receive_count=receive_count(message),
                    reason=str(exc),
                )
            delivery.settle(Outcome.INVALID)
        return delivery

    def _claim(self, batch: list[Delivery], claim_seconds: int) -> None:
        parsed = _pending(batch)
        claims = self.claims.claim([d.message_id for d in parsed], claim_seconds)
        for delivery, claim in zip(parsed, claims, strict=True):
            delivery.claimed = claim is Claim.GO
            if claim is Claim.DONE:
                self._duplicate(delivery, guard="redis")
            elif claim is Claim.BUSY:
                with self.context(delivery):
                    log.info("message_busy", message_id=delivery.message_id, reason="another delivery is processing it")
                delivery.settle(Outcome.BUSY)

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
                self._duplicate(delivery, guard="database")
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
        with self.context(delivery), self.span(event, delivery.message.get("MessageAttributes", {})):
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
                delivery.error, delivery.breaker_open = "notification breaker open", True
                delivery.settle(Outcome.DEFERRED)
            except CompartmentFull:
                # Shed at once, the thread freed: a delayed copy (as for an open breaker), since a receive spent
                # on this process's own saturation must not count towards the DLQ or the saga's last receive.
                log.info("message_deferred", message_id=delivery.message_id, reason="notifications compartment full")
                delivery.error = "notifications compartment full"
                delivery.settle(Outcome.DEFERRED)
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
                self._duplicate(delivery, guard="database")
                continue
            with self.context(delivery):
                log.info(
                    "message_processed",
                    message_id=delivery.message_id,
                    order_id=str(delivery.parsed.data.order_id),
                    outcome=delivery.status,
                    queue_lag_ms=lag_ms(delivery.message),
                )
            delivery.settle(Outcome.PROCESSED)

    def _compensate(self, batch: list[Delivery]) -> None:
        """The messages that failed for good: their orders compensated (one statement), then deleted."""
        due = [d for d in batch if d.event is not None and self._failed_for_good(d)]
        if not due:
            return
        try:
            rows = compensate(self.db, [(d.parsed, d.error) for d in due])
        except Exception as exc:  # noqa: BLE001 - left as they were: retried, or dead-lettered and settled there
            log.warning("compensation_failed", error=type(exc).__name__, count=len(due))
            return
        released: set[int] = set()
        for delivery in due:
            row = rows[delivery.message_id]
            released.update(row["released"])
            if row["outcome"] == "missing":
                continue  # no order to settle: it goes on to the DLQ
            with self.context(delivery):
                log.warning(
                    "order_compensated" if row["outcome"] == "compensated" else "duplicate_skipped",
                    message_id=delivery.message_id,
                    order_id=str(delivery.parsed.data.order_id),
                    reason=delivery.error,
                    released=row["released"],
                )
            delivery.settle(Outcome.COMPENSATED if row["outcome"] == "compensated" else Outcome.DUPLICATE)
        if released:
            self.catalog.invalidate(sorted(released))

    def _failed_for_good(self, delivery: Delivery) -> bool:
        outcome = delivery.result.outcome if delivery.result else None
        if outcome is Outcome.FAILED:
            count = receive_count(delivery.message)
            if count < self.max_receives:
                return False
            delivery.error = f"{delivery.error or 'failed'} (receive {count} of {self.max_receives}: retries spent)"
            return True
        if outcome is Outcome.DEFERRED and delivery.breaker_open:
            waited = (datetime.now(UTC) - delivery.parsed.occurred_at).total_seconds()
            if waited < self.defer_limit_seconds:
                return False
            delivery.error = f"notification breaker open; the order waited {waited:.0f} s, over its limit"
            return True
        return False

    def _duplicate(self, delivery: Delivery, guard: str) -> None:
        with self.context(delivery):
            log.info("duplicate_skipped", message_id=delivery.message_id, guard=guard)
        delivery.settle(Outcome.DUPLICATE)

    def _failed(self, delivery: Delivery, exc: BaseException, unexpected: bool = False) -> None:
        """Leave the message for redelivery (with a backoff; the DLQ after maxReceiveCount)."""
        with self.context(delivery):
            fields = {"message_id": delivery.message_id, "receive_count": receive_count(delivery.message)}
            if unexpected:
                log.error("message_failed", **fields, exc_info=exc)
            else:
                detail = str(exc).splitlines()[0] if str(exc) else ""
                log.warning("message_failed", **fields, error=type(exc).__name__, detail=detail)
        delivery.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        delivery.settle(Outcome.FAILED)

    @contextmanager
    def context(self, delivery: Delivery) -> Iterator[None]:
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
    def span(self, event: Envelope, attrs: dict[str, Any]) -> Iterator[None]:
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


def compensate(db: Any, failed: Sequence[tuple[Envelope, str]]) -> dict[str, dict[str, Any]]:
    """Compensate the orders of events that failed for good, with their reasons (one `compensate_orders` call).

    `db` is an `app.data.Database` or a psycopg connection in autocommit (tests). Returns each message id's row:
    `outcome` ('compensated', 'settled' - nothing done, 'missing') and the product ids `released`.
    """
    rows = db.execute(
        "SELECT message_id::text AS message_id, outcome, released FROM compensate_orders(%s::uuid[], %s::text[],"
        " %s::uuid[], %s::text[])",
        (
            [e.message_id for e, _ in failed],
            [e.type for e, _ in failed],
            [e.data.order_id for e, _ in failed],
            [reason[:500] for _, reason in failed],
        ),
    )
    return {row["message_id"]: row for row in (rows if isinstance(rows, list) else rows.fetchall())}


def _pending(batch: list[Delivery]) -> list[Delivery]:
    return [d for d in batch if d.result is None]
