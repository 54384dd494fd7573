"""Domain events fan out through the events topic (moto's SNS -> SQS): raw delivery, attributes, the filter."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from app import contract
from app.cli import cli
from app.events import parse
from app.outbox import Relay
from tests.app.fanout_support import events_topic
from tests.app.test_outbox import _clear_outbox


def _outbox_row(db: Any, event_type: str, payload: dict[str, Any], traceparent: str | None = None) -> str:
    row_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, correlation_id, traceparent)"
        " VALUES (%s, 'order', %s, %s, %s, 'corr-fan', %s)",
        (row_id, payload.get("order_id", row_id), event_type, json.dumps(payload), traceparent),
    )
    return row_id


def test_an_order_event_reaches_the_orders_queue_raw_with_its_attributes_and_another_type_does_not(
    db: Any, make_settings: Any, queue_url: str, moto: Any
) -> None:
    _clear_outbox(db)
    order = {"order_id": str(uuid.uuid4()), "email": "f@example.com", "items": [{"product_id": 1, "quantity": 1}]}
    traced = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    placed = _outbox_row(db, "order.placed", {**order, "total_cents": 100}, traced)
    shipped = _outbox_row(db, "order.shipped", order)  # no subscriber of the orders queue wants it
    relay = Relay(make_settings(events_topic_arn=events_topic(moto, queue_url)))
    try:
        with _conn(relay) as conn:
            assert relay.publish_batch(conn) == 2  # both went out on the topic
    finally:
        relay.cache.close()
    sqs = moto.client("sqs")
    got = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2, MessageAttributeNames=["All"]
    ).get("Messages", [])
    assert len(got) == 1
    [message] = got
    # Raw delivery: the body is the event itself (no SNS envelope) and the worker's parser takes it as is.
    event = parse(message["Body"])
    assert str(event.message_id) == placed and event.type == "order.placed"
    attrs = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attrs == {
        "message_id": placed,
        "correlation_id": "corr-fan",
        "event_type": "order.placed",
        "traceparent": traced,
    }
    published = db.execute(
        "SELECT id::text FROM outbox WHERE id = ANY(%s::uuid[]) AND published_at IS NOT NULL", ([placed, shipped],)
    ).fetchall()
    assert len(published) == 2
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []


def test_the_filter_policy_admits_exactly_the_event_types_the_worker_parses() -> None:
    policy = json.loads(contract.ORDER_EVENTS_FILTER_POLICY)
    assert policy == {"event_type": list(contract.ORDER_EVENT_TYPES)}
    from app.events import Envelope  # noqa: PLC0415

    assert set(Envelope.model_fields["type"].annotation.__args__) == set(contract.ORDER_EVENT_TYPES)  # type: ignore[union-attr]


def test_a_fifo_topic_gets_group_and_deduplication_ids(make_settings: Any, db: Any, moto: Any) -> None:
    _clear_outbox(db)
    sqs, sns = moto.client("sqs"), moto.client("sns")
    queue = sqs.create_queue(QueueName=f"orders-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})
    topic = sns.create_topic(Name=f"events-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoTopic": "true"})
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    order_id = str(uuid.uuid4())
    row = _outbox_row(
        db, "order.placed", {"order_id": order_id, "email": "f@example.com", "items": [], "total_cents": 0}
    )
    relay = Relay(make_settings(events_topic_arn=topic["TopicArn"]))
    try:
        with _conn(relay) as conn:
            assert relay.publish_batch(conn) == 1
    finally:
        relay.cache.close()
    [message] = sqs.receive_message(QueueUrl=queue["QueueUrl"], WaitTimeSeconds=2, AttributeNames=["All"]).get(
        "Messages", []
    )
    assert message["Attributes"]["MessageGroupId"] == order_id
    assert message["Attributes"]["MessageDeduplicationId"] == row


def test_the_relay_without_a_topic_says_which_setting_is_missing(make_settings: Any, monkeypatch: Any) -> None:
    with pytest.raises(ValueError, match=contract.EVENTS_TOPIC_ARN):
        Relay(make_settings(queue_url="http://127.0.0.1:1/queue/orders"))
    monkeypatch.setenv(contract.EVENTS_TOPIC_ARN, "")
    result = CliRunner().invoke(cli, ["relay"])
    assert result.exit_code == 2
    assert f"{contract.EVENTS_TOPIC_ARN} is not set" in result.output and "Traceback" not in result.output


def _conn(relay: Relay) -> Any:
    return relay._connect()
