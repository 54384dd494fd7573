"""`app dlq redrive`: move dead-lettered messages back to the source queue once a fix is out.

SQS's own message-move task has no filter and no progress; this one sends each message (body and attributes;
the `message_id` inside keeps the worker's deduplication) to the source queue at a bounded rate, optionally
only those of one event type, and deletes it from the DLQ only after the source queue accepted it.

A dead-lettered order event has failed for good: `app dlq settle` compensates its order (the saga's
compensation, `app.worker.orders.compensate`: its stock released once, the order FAILED) and deletes it. A
redrive recognises an order event whose order is already settled (no longer PENDING) and deletes it without
sending it back: redriving a compensated message is a no-op, stock untouched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract
from app.cache import Cache
from app.catalog import Catalog
from app.data import Database
from app.events import Envelope, InvalidMessage, parse
from app.worker.messages import receive_count
from app.worker.orders import compensate

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger("app.dlq")
SQS_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)


class RedriveError(Exception):
    """Redrive cannot start (no queue, no DLQ): a one-line reason for the operator."""


@dataclass
class RedriveReport:
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    settled: int = 0  # order events whose order was already settled: deleted, not sent back


@dataclass
class SettleReport:
    compensated: int = 0
    settled: int = 0  # already settled before: deleted, nothing else done
    left: int = 0  # not an order event, or no such order: left in the DLQ


def dead_letter_queue_url(settings: Settings, sqs: Any) -> str:
    """The DLQ's URL: the setting, or the source queue's redrive policy."""
    if settings.dead_letter_queue_url:
        return settings.dead_letter_queue_url
    if not settings.queue_url:
        raise RedriveError(f"{contract.QUEUE_URL} is not set")
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=settings.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
        arn = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"]
        _, _, _, _, account, name = arn.split(":", 5)
        return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
    except KeyError:
        raise RedriveError(
            f"the queue has no redrive policy; set {contract.DEAD_LETTER_QUEUE_URL} to the DLQ's URL"
        ) from None
    except SQS_ERRORS as exc:
        raise RedriveError(f"cannot find the DLQ ({type(exc).__name__}: {exc})") from None


def event_type_of(message: dict[str, Any]) -> str:
    attr = message.get("MessageAttributes", {}).get("event_type", {}).get("StringValue")
    if attr:
        return str(attr)
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        return ""
    value = body.get("type") if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def approximate_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", "0"))


def redrive(
    settings: Settings,
    *,
    rate: float = 10.0,
    event_type: str | None = None,
    limit: int | None = None,
    on_progress: Callable[[RedriveReport], None] | None = None,
    empty_polls: int = 2,
) -> RedriveReport:
    """Move messages from the DLQ to the source queue at most `rate` per second; stop when the DLQ is drained."""
    if rate <= 0:
        raise RedriveError("--rate must be positive")
    sqs = aws.client("sqs", settings)
    dlq = dead_letter_queue_url(settings, sqs)
    report = RedriveReport()
    seen_skipped: set[str] = set()
    skipped_handles: list[str] = []
    empty = 0
    next_send = time.monotonic()
    while limit is None or report.moved < limit:
        resp = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10 if limit is None else max(1, min(10, limit - report.moved)),
            WaitTimeSeconds=1,
            VisibilityTimeout=30,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen_skipped]
        if not fresh:
            empty += 1
            if empty >= empty_polls:
                break
            continue
        empty = 0
        chosen = []
        for m in fresh:
            kind = event_type_of(m)
            if event_type and kind != event_type:
                seen_skipped.add(m["MessageId"])
                skipped_handles.append(m["ReceiptHandle"])
                report.skipped += 1
                continue
            chosen.append((m, kind))
        chosen = _drop_settled(settings, sqs, dlq, chosen, report)
        if not chosen:
            continue
        # Rate limit: one batch of n messages waits until n/rate seconds after the previous one.
        now = time.monotonic()
        if next_send > now:
            time.sleep(next_send - now)
        next_send = max(now, next_send) + len(chosen) / rate
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": {
                    k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
                    for k, v in m.get("MessageAttributes", {}).items()
                    if "StringValue" in v
                },
            }
            for i, (m, _) in enumerate(chosen)
        ]
        sent = sqs.send_message_batch(QueueUrl=settings.queue_url, Entries=entries)
        ok = {s["Id"] for s in sent.get("Successful", [])}
        report.failed += len(entries) - len(ok)
        done = [(m, kind) for i, (m, kind) in enumerate(chosen) if str(i) in ok]
        if done:
            deleted = sqs.delete_message_batch(
                QueueUrl=dlq,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, (m, _) in enumerate(done)],
            )
            for f in deleted.get("Failed", []):
                # Sent but still in the DLQ: a later redrive sends it again; the worker deduplicates.
                log.warning("dlq_delete_failed", code=f.get("Code"))
        for _, kind in done:
            report.moved += 1
            report.by_type[kind or "unknown"] = report.by_type.get(kind or "unknown", 0) + 1
        if on_progress is not None:
            on_progress(report)
    _release(sqs, dlq, skipped_handles)
    log.info("dlq_redriven", moved=report.moved, skipped=report.skipped, failed=report.failed)
    return report


def _event(message: dict[str, Any]) -> Envelope | None:
    try:
        return parse(message.get("Body", ""))
    except InvalidMessage:
        return None


@contextmanager
def _orders(settings: Settings) -> Iterator[Catalog]:
    """The orders' database and the product cache (compensation releases stock: its cached copies must go)."""
    cache = Cache(settings)
    db = Database(settings, cache.available_client)
    db.open()
    catalog = Catalog(db, cache)
    try:
        yield catalog
    finally:
        catalog.close()
        db.close()
        cache.close()


def _delete(sqs: Any, dlq: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        deleted = sqs.delete_message_batch(
            QueueUrl=dlq, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
        )
        for f in deleted.get("Failed", []):
            # Still in the DLQ: the next run finds it settled again and tries the delete again.
            log.warning("dlq_delete_failed", code=f.get("Code"))


def _drop_settled(
    settings: Settings, sqs: Any, dlq: str, chosen: list[tuple[dict[str, Any], str]], report: RedriveReport
) -> list[tuple[dict[str, Any], str]]:
    """Delete the order events whose order is settled (not PENDING) from the DLQ; the rest go back."""
    orders = {m["MessageId"]: event.data.order_id for m, _ in chosen if (event := _event(m)) is not None}
    if not orders:
        return chosen
    with _orders(settings) as catalog:
        settled = {
            row["id"]
            for row in catalog.db.execute(
                "SELECT id FROM orders WHERE id = ANY(%s::uuid[]) AND status <> 'PENDING'", (list(orders.values()),)
            )
        }
    done = [m for m, _ in chosen if orders.get(m["MessageId"]) in settled]
    if done:
        _delete(sqs, dlq, done)
        report.settled += len(done)
        log.info("dlq_settled_skipped", count=len(done), reason="their orders are settled: nothing to redo")
    return [(m, kind) for m, kind in chosen if orders.get(m["MessageId"]) not in settled]


def settle(settings: Settings, *, empty_polls: int = 2) -> SettleReport:
    """Compensate the order of every order event in the DLQ and delete it; leave every other message there."""
    sqs = aws.client("sqs", settings)
    dlq = dead_letter_queue_url(settings, sqs)
    report = SettleReport()
    left: list[str] = []
    seen: set[str] = set()
    empty = 0
    with _orders(settings) as catalog:
        while empty < empty_polls:
            messages = sqs.receive_message(
                QueueUrl=dlq,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=30,
                AttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            seen.update(m["MessageId"] for m in messages)
            empty = 0 if fresh else empty + 1
            events = [(m, event) for m in fresh if (event := _event(m)) is not None]
            left += [m["ReceiptHandle"] for m in fresh if _event(m) is None]
            if not events:
                continue
            rows = compensate(
                catalog.db, [(event, f"dead-lettered (receive {receive_count(m)} in the DLQ)") for m, event in events]
            )
            released = sorted({pid for row in rows.values() for pid in row["released"]})
            if released:
                catalog.invalidate(released)
            done = []
            for m, event in events:
                outcome = rows[str(event.message_id)]["outcome"]
                if outcome == "missing":
                    left.append(m["ReceiptHandle"])
                    continue
                report.compensated += outcome == "compensated"
                report.settled += outcome == "settled"
                done.append(m)
            _delete(sqs, dlq, done)
    report.left = len(left)
    _release(sqs, dlq, left)
    log.info("dlq_settled", compensated=report.compensated, settled=report.settled, left=report.left)
    return report


def _release(sqs: Any, dlq: str, handles: list[str]) -> None:
    """Messages the filter left behind stay in the DLQ, visible again at once."""
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=dlq,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )
        except SQS_ERRORS as exc:
            log.warning("dlq_release_failed", error=type(exc).__name__)
