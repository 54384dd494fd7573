"""SQS messages as the worker receives and the outbox relay sends them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any


def receive_count(message: dict[str, Any]) -> int:
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    except ValueError:
        return 1


def lag_ms(message: dict[str, Any]) -> int:
    """Milliseconds since the message was sent (0 when SQS did not say)."""
    try:
        sent = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
    except ValueError:
        return 0
    return max(0, int(time.time() * 1000) - sent) if sent else 0


def string_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """A received message's string attributes in `SendMessage`'s form (for a copy of it)."""
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
