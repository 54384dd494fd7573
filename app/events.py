"""The events the outbox relay publishes and the worker consumes, validated with pydantic.

The body is what `app.outbox.Relay` writes: `message_id` (UUID v4, the consumer's deduplication key), `type`,
`aggregate_id`, `correlation_id`, `occurred_at` and `data`. The API names the order event `order.placed`;
`order.created` (the issue's name) is accepted as the same event.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app import contract

ORDER_EVENT_TYPES: frozenset[str] = frozenset(contract.ORDER_EVENT_TYPES)


class InvalidMessage(Exception):
    """A message that can never be processed: its body is not a valid event."""


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    product_id: int = Field(ge=1, le=2**63 - 1)
    quantity: int = Field(ge=1, le=10_000)
    price_cents: int | None = Field(default=None, ge=0)


class OrderPlaced(BaseModel):
    model_config = ConfigDict(extra="ignore")
    order_id: uuid.UUID
    email: str = Field(min_length=3, max_length=254)
    items: list[OrderLine] = Field(min_length=1, max_length=50)
    total_cents: int = Field(ge=0)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message_id: uuid.UUID
    type: Literal["order.placed", "order.created"]
    aggregate_id: str = Field(min_length=1, max_length=200)
    correlation_id: str = Field(default="", max_length=200)
    occurred_at: datetime
    data: OrderPlaced

    @field_validator("message_id")
    @classmethod
    def _v4(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 4:
            raise ValueError("must be a UUID version 4")
        return value


def parse(body: str) -> Envelope:
    """The event in an SQS message body; raises InvalidMessage with a one-line reason."""
    try:
        raw: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"body is not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(raw, dict):
        raise InvalidMessage("body is not a JSON object")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidMessage(f"'{where}': {first['msg']} ({exc.error_count()} error(s))") from None


def message_id_hint(body: str) -> str:
    """The body's message_id if it can be read at all (for logging a malformed message)."""
    try:
        raw = json.loads(body)
    except ValueError:
        return ""
    value = raw.get("message_id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else ""
