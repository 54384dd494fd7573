"""Checkout: orders written with their outbox event in one transaction, behind an Idempotency-Key.

Idempotency follows the IETF draft "The Idempotency-Key HTTP Header Field": keys live in PostgreSQL for
24 hours (published policy, `contract.IDEMPOTENCY_KEY_TTL_SECONDS`); the same key and body replays the stored
response (with `Idempotent-Replayed: true`); the same key with another body is 422; a request arriving while
the first one is still in flight is 409 with `Retry-After`. The key, the order and its outbox row are written
in one transaction (one statement, one commit), so a stored response always means a committed order and vice
versa.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app import contract
from app.catalog import MAX_ID, canonical_json
from app.problems import Problem
from app.types import EMAIL, WHOLE

if TYPE_CHECKING:
    import psycopg

    from app.data import Database

IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"
# The stored response comes back as the JSON text the API sends: parsed only when it is a rejection to read.
PLACE_ORDER = (
    "SELECT outcome, status_code, body::text AS body, body->>'id' AS order_id"
    " FROM place_order(%s::text, %s::text, %s::text, %s::integer, %s::uuid, %s::uuid, %s::text,"
    " %s::bigint[], %s::integer[], %s::text, %s::text)"
)


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    product_id: Annotated[int, Field(ge=1, le=MAX_ID), WHOLE]
    quantity: Annotated[int, Field(ge=1, le=100), WHOLE]


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    email: str = Field(pattern=EMAIL, max_length=254)
    items: list[OrderItem] = Field(min_length=1, max_length=50)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: str  # the response body, JSON text as stored with the key
    order_id: str | None  # the placed order's id; None for a rejection
    replayed: bool = False

    def rejection(self) -> dict[str, Any]:
        """The stored problem's members (title, detail, errors) of a rejected order."""
        return json.loads(self.body)  # type: ignore[no-any-return]


class Checkout:
    def __init__(self, db: Database) -> None:
        self.db = db

    def place(
        self, scope: str, key: str, order: OrderIn, correlation_id: str, traceparent: str | None = None
    ) -> Outcome:
        """One statement, one commit: the database function `place_order` (migration 0008) takes the key's
        lock, looks the key up, prices the items and writes the order, its outbox event and the stored
        response together - or stores the rejection of an invalid order, which a replay then gets too.

        `traceparent`: the W3C trace context of the request, stored with the outbox event for the consumer.

        The key's lock is a transaction-scoped advisory lock taken with `try`: a second request with the same
        key while the first is in flight gets 409 at once instead of waiting; if the first request's task dies,
        its transaction rolls back and the lock goes with it, so no key is ever stuck "in flight".
        """
        request_hash = hashlib.sha256(canonical_json(order.model_dump()).encode()).hexdigest()
        # The order's and its event's random ids from one read of the OS's CSPRNG: uuid4() reads it once per id,
        # and each read is a system call that lets go of the GIL, a context switch on a busy worker.
        random_bytes = os.urandom(32)
        order_id, event_id = (uuid.UUID(bytes=random_bytes[i : i + 16], version=4) for i in (0, 16))
        (row,) = self.db.execute(
            PLACE_ORDER,
            (
                *(scope, key, request_hash, contract.IDEMPOTENCY_KEY_TTL_SECONDS, order_id, event_id),
                *(order.email, [i.product_id for i in order.items], [i.quantity for i in order.items]),
                *(correlation_id, traceparent),
            ),
        )
        if row["outcome"] == "in-flight":
            raise Problem(
                409,
                "Request in progress",
                "'Idempotency-Key' header: a request with this key is still being processed",
                headers={"Retry-After": "1"},
                kind="idempotency-in-flight",
            )
        if row["outcome"] == "reused":
            raise Problem.for_field(
                422,
                "Idempotency-Key reused",
                "Idempotency-Key",
                "header",
                "already used with a different request body",
                kind="idempotency-key-reused",
            )
        return Outcome(row["status_code"], row["body"], row["order_id"], replayed=row["outcome"] == "replayed")

    def get(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        def query(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, Any] | None:
            return conn.execute(
                "SELECT id, status, customer_email AS email, items, total_cents, currency, created_at,"
                " reject_reason AS reason"
                " FROM orders WHERE id = %s",
                (order_id,),
            ).fetchone()

        row = self.db.read(query, fresh=True)  # read-your-writes: the writer
        if row is None:
            return None
        return {**row, "id": str(row["id"]), "created_at": row["created_at"].isoformat()}
