"""Checkout: orders written with their outbox event in one transaction, behind an Idempotency-Key.

Idempotency follows the IETF draft "The Idempotency-Key HTTP Header Field": keys live in PostgreSQL for
24 hours (published policy, `contract.IDEMPOTENCY_KEY_TTL_SECONDS`); the same key and body replays the stored
response (with `Idempotent-Replayed: true`); the same key with another body is 422; a request arriving while
the first one is still in flight is 409 with `Retry-After`. The key, the order and its outbox row are written
in one transaction (one commit), so a stored response always means a committed order and vice versa.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from app import contract
from app.catalog import canonical_json
from app.problems import Problem
from app.types import Text

if TYPE_CHECKING:
    import psycopg

    from app.data import Database

IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"
KEY_TTL = contract.IDEMPOTENCY_KEY_TTL_SECONDS
STORE_KEY = (
    "INSERT INTO idempotency_keys (key, scope, request_hash, status_code, response_body, expires_at)"
    " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))"
    " ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
    " status_code = EXCLUDED.status_code, response_body = EXCLUDED.response_body,"
    " created_at = now(), expires_at = EXCLUDED.expires_at"
)
PLACE_ORDER = (
    "WITH placed AS ("  # noqa: S608 - constant SQL text, values are parameters
    "  INSERT INTO orders (id, status, customer_email, items, total_cents, currency, correlation_id)"
    "  VALUES (%s, 'PENDING', %s, %s, %s, %s, %s)"
    "), event AS ("
    "  INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, correlation_id, traceparent)"
    "  VALUES (%s, 'order', %s, 'order.placed', %s, %s, %s)"
    ") " + STORE_KEY
)


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    product_id: int = Field(ge=1, le=2**63 - 1)
    quantity: int = Field(ge=1, le=100)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    email: Text = Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$", max_length=254)
    items: list[OrderItem] = Field(min_length=1, max_length=50)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


class Checkout:
    def __init__(self, db: Database) -> None:
        self.db = db

    def place(
        self, scope: str, key: str, order: OrderIn, correlation_id: str, traceparent: str | None = None
    ) -> Outcome:
        """One transaction, one commit: key lock, key lookup, order + outbox row + stored response.

        `traceparent`: the W3C trace context of the request, stored with the outbox event for the consumer.

        The key is locked with a transaction-scoped advisory lock taken with `try`: a second request with the
        same key while the first is in flight gets 409 at once instead of waiting; if the first request's task
        dies, its transaction rolls back and the lock goes with it, so no key is ever stuck "in flight".
        """
        request_hash = hashlib.sha256(canonical_json(order.model_dump()).encode()).hexdigest()
        with self.db.transaction() as conn:
            locked = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0)) AS ok", (f"{scope}:{key}",)
            ).fetchone()
            if not locked or not locked["ok"]:
                raise Problem(
                    409,
                    "Request in progress",
                    "'Idempotency-Key' header: a request with this key is still being processed",
                    headers={"Retry-After": "1"},
                    kind="idempotency-in-flight",
                )
            row = conn.execute(
                "SELECT request_hash, status_code, response_body FROM idempotency_keys"
                " WHERE scope = %s AND key = %s AND expires_at > now()",
                (scope, key),
            ).fetchone()
            if row is not None:
                if row["request_hash"] != request_hash:
                    raise Problem(
                        422,
                        "Idempotency-Key reused",
                        "'Idempotency-Key' header: this key was already used with a different request body",
                        errors=[{"field": "Idempotency-Key", "in": "header", "message": "reused with another body"}],
                        kind="idempotency-key-reused",
                    )
                return Outcome(row["status_code"], row["response_body"], replayed=True)
            try:
                lines, total, currency = self._price(conn, order)
            except Problem as problem:
                # A deterministic rejection of this body (nothing was written): stored, so a replay gets it too.
                body = {
                    "title": problem.title,
                    "status": problem.status,
                    "detail": problem.detail,
                    "errors": problem.errors,
                }
                conn.execute(STORE_KEY, (key, scope, request_hash, problem.status, json.dumps(body), KEY_TTL))
                return Outcome(problem.status, body)
            order_id = uuid.uuid4()
            body = {"id": str(order_id), "status": "PENDING", "total_cents": total, "currency": currency}
            event = {"order_id": str(order_id), "email": order.email, "items": lines, "total_cents": total}
            # The order, its outbox event and the stored response: one statement, one round trip.
            conn.execute(
                PLACE_ORDER,
                (
                    *(order_id, order.email, json.dumps(lines), total, currency, correlation_id),
                    *(uuid.uuid4(), str(order_id), json.dumps(event), correlation_id, traceparent),
                    *(key, scope, request_hash, 202, json.dumps(body), KEY_TTL),
                ),
            )
        return Outcome(202, body)

    @staticmethod
    def _price(conn: Any, order: OrderIn) -> tuple[list[dict[str, int]], int, str]:
        """Validate the items against the catalog (on the writer); (lines, total, currency) or a Problem."""
        ids = sorted({i.product_id for i in order.items})
        rows = conn.execute(
            "SELECT id, price_cents, currency, stock FROM products WHERE id = ANY(%s)", (ids,)
        ).fetchall()
        products = {r["id"]: r for r in rows}
        total, currencies, lines = 0, set(), []
        for n, item in enumerate(order.items):
            p = products.get(item.product_id)
            if p is None:
                raise _item_problem(n, "product_id", f"product {item.product_id} does not exist")
            if item.quantity > p["stock"]:
                raise _item_problem(n, "quantity", f"only {p['stock']} in stock")
            currencies.add(p["currency"])
            total += p["price_cents"] * item.quantity
            lines.append({"product_id": item.product_id, "quantity": item.quantity, "price_cents": p["price_cents"]})
        if len(currencies) > 1:
            raise _item_problem(0, "product_id", "all items must share one currency")
        return lines, total, currencies.pop()

    def get(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        def query(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, Any] | None:
            return conn.execute(
                "SELECT id, status, customer_email AS email, items, total_cents, currency, created_at"
                " FROM orders WHERE id = %s",
                (order_id,),
            ).fetchone()

        row = self.db.read(query, fresh=True)  # read-your-writes: the writer
        if row is None:
            return None
        return {**row, "id": str(row["id"]), "created_at": row["created_at"].isoformat()}


def _item_problem(index: int, field: str, message: str) -> Problem:
    name = f"items[{index}].{field}"
    return Problem(
        422, "Invalid order", f"'{name}': {message}", errors=[{"field": name, "in": "body", "message": message}]
    )
