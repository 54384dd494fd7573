"""The outbox relay: publishes committed outbox rows to the SNS events topic in batches of 10.

The topic fans each event out to its subscribers: the orders queue (raw message delivery, so the worker gets
the event body and its message attributes as SQS message attributes; a filter policy on `event_type` admits
the events the worker handles) and any future one. `PublishBatch` takes at most 10 entries
(`contract.OUTBOX_BATCH_SIZE`); raw delivery to SQS passes at most 10 message attributes (we send 4).

Several relays can run at once: each batch is claimed with `FOR UPDATE SKIP LOCKED`, sent, and marked
published in the same transaction, so no row is published by two relays. It sleeps on PostgreSQL
`LISTEN outbox` (the insert trigger NOTIFYs) with a slow periodic sweep as a safety net. When SNS is down
the breaker opens, the transaction rolls back, rows wait, and they go out after recovery. Delivery is
at-least-once in the worst case (SNS accepted a batch and the commit then failed): every message carries
its UUID v4 `message_id` for consumers to deduplicate, the request's `correlation_id` and, when the request
had one, its W3C `traceparent`, so the consumer's span links to the request that caused it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.rows import dict_row

from app import aws, contract
from app.bulkhead import SQS, Bulkhead, CompartmentFull
from app.cache import Cache
from app.resilience import CircuitBreaker, CircuitOpenError

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger("app.outbox")
SQS_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
# SQS failed, its breaker is open or its compartment is full: the transaction rolls back and the rows wait.
SQS_UNAVAILABLE: tuple[type[BaseException], ...] = (CircuitOpenError, CompartmentFull, *SQS_ERRORS)
SWEEP_SECONDS = 5.0


class Relay:
    def __init__(self, settings: Settings, stop: threading.Event | None = None, cache: Cache | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        if not settings.events_topic_arn:
            raise ValueError(f"{contract.EVENTS_TOPIC_ARN} is not set: the relay publishes to the events topic")
        self.sns = aws.client("sns", settings)
        self.cache = cache or Cache(settings)
        self.breaker = CircuitBreaker("sqs", settings, self.cache.available_client, SQS_ERRORS)
        self.bulkhead = Bulkhead.for_dependency(SQS, settings)
        self.published = 0
        # A FIFO topic (it fans out to FIFO queues) orders by group and deduplicates by id, as a FIFO queue does.
        self._fifo = settings.events_topic_arn.endswith(".fifo")

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(**self.settings.conninfo(self.settings.db_writer_host), row_factory=dict_row)  # type: ignore[arg-type]

    def _entry(self, row: dict[str, Any]) -> dict[str, Any]:
        message_id = str(row["id"])
        body = {
            "message_id": message_id,
            "type": row["event_type"],
            "aggregate_id": row["aggregate_id"],
            "correlation_id": row["correlation_id"],
            "occurred_at": row["created_at"].isoformat(),
            "data": row["payload"],
        }
        entry: dict[str, Any] = {
            "Id": message_id,
            "Message": json.dumps(body, separators=(",", ":")),
            "MessageAttributes": {
                "message_id": {"DataType": "String", "StringValue": message_id},
                "correlation_id": {"DataType": "String", "StringValue": row["correlation_id"]},
                "event_type": {"DataType": "String", "StringValue": row["event_type"]},
            },
        }
        if row.get("traceparent"):
            # The worker links its span to the request that wrote the event (app.worker.Worker._span).
            entry["MessageAttributes"]["traceparent"] = {"DataType": "String", "StringValue": row["traceparent"]}
        if self._fifo:
            entry["MessageGroupId"] = row["aggregate_id"]
            entry["MessageDeduplicationId"] = message_id
        return entry

    def publish_batch(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """Publish up to 10 rows; returns how many were published. Raises on SNS failure (rows wait)."""
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, aggregate_id, event_type, payload, correlation_id, traceparent, created_at FROM outbox"
                " WHERE published_at IS NULL ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (contract.OUTBOX_BATCH_SIZE,),
            ).fetchall()
            if not rows:
                return 0
            entries = [self._entry(r) for r in rows]
            with self.bulkhead:
                resp = self.breaker.call(
                    lambda: self.sns.publish_batch(
                        TopicArn=self.settings.events_topic_arn, PublishBatchRequestEntries=entries
                    )
                )
            ok = [e["Id"] for e in resp.get("Successful", [])]
            for failed in resp.get("Failed", []):
                log.warning("outbox_entry_failed", message_id=failed.get("Id"), code=failed.get("Code"))
            if ok:
                conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY(%s::uuid[])", (ok,))
        self.published += len(ok)
        return len(ok)

    def drain(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        total = 0
        while not self.stop.is_set():
            n = self.publish_batch(conn)
            total += n
            if n < contract.OUTBOX_BATCH_SIZE:
                break
        return total

    def _purge_expired_keys(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        with conn.transaction():
            conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")

    def run(self) -> None:
        log.info("relay_started", topic_arn=self.settings.events_topic_arn)
        backoff = 0.5
        last_purge = 0.0
        while not self.stop.is_set():
            try:
                with self._connect() as work, self._connect() as listen:
                    listen.autocommit = True
                    listen.execute("LISTEN outbox")
                    pending, last_sweep = True, 0.0
                    while not self.stop.is_set():
                        if pending or time.monotonic() - last_sweep >= SWEEP_SECONDS:
                            try:
                                published = self.drain(work)
                                backoff = 0.5
                            except SQS_UNAVAILABLE as exc:
                                log.warning("relay_sqs_unavailable", error=type(exc).__name__, retry_in=backoff)
                                self.stop.wait(backoff)
                                backoff = min(backoff * 2, self.settings.breaker_reset_seconds)
                                continue
                            pending, last_sweep = False, time.monotonic()
                            if published:
                                log.info("outbox_published", count=published)
                        if time.monotonic() - last_purge > 3600:
                            self._purge_expired_keys(work)
                            last_purge = time.monotonic()
                        # Sleep until a NOTIFY arrives; wake every second only to honour a stop request.
                        pending = any(True for _ in listen.notifies(timeout=1.0, stop_after=1))
            except psycopg.OperationalError as exc:
                log.warning("relay_database_unavailable", error=str(exc).splitlines()[0] if str(exc) else "")
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        log.info("relay_stopped", published=self.published)
