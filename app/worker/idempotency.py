"""The worker's idempotency claims in Redis: the fast path of exactly-once effects.

An event's `message_id` is claimed with `SET NX` before it is processed, marked done once its effect is
committed, and released when processing failed. Redis is only the fast path: the database's unique
`processed_messages` row guards a duplicate when Redis has lost its keys or cannot be reached. Each
operation covers a whole batch in one pipelined round trip.
"""

from __future__ import annotations

from contextlib import suppress
from enum import StrEnum
from typing import Any

from app import contract
from app.cache import REDIS_UNAVAILABLE, Cache

DONE = b"done"


class Claim(StrEnum):
    GO = "go"  # ours now, or Redis is unavailable and the database guard decides
    DONE = "done"  # processed before: skip it without touching the database
    BUSY = "busy"  # another delivery is processing it


class Claims:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def key(self, message_id: str) -> str:
        return self.cache.key("worker", "message", message_id)

    def claim(self, message_ids: list[str], expire_seconds: int) -> list[Claim]:
        """Claim each id, in order; a second copy of an id in the same call finds it busy.

        A claim expires after `expire_seconds` (just before the message's visibility timeout), so a
        message whose worker died is free again when SQS redelivers it.
        """
        if not message_ids:
            return []

        def claim(r: Any) -> list[bytes | None]:
            pipe = r.pipeline(transaction=False)
            for mid in message_ids:
                # SET NX GET (Redis 7.0+): the claim and, when it is taken, its holder's value in one atomic step.
                pipe.set(self.key(mid), b"processing", nx=True, get=True, ex=expire_seconds)
            return pipe.execute()  # type: ignore[no-any-return]

        try:
            previous = self.cache.call(claim)
        except REDIS_UNAVAILABLE:
            return [Claim.GO] * len(message_ids)  # the fast path is down; the unique row still guards
        return [Claim.GO if p is None else Claim.DONE if p == DONE else Claim.BUSY for p in previous]

    def mark_done(self, message_ids: list[str]) -> None:
        """Record committed effects, kept as long as a duplicate may still arrive."""
        if not message_ids:
            return

        def mark(r: Any) -> None:
            pipe = r.pipeline(transaction=False)
            for mid in message_ids:
                pipe.set(self.key(mid), DONE, ex=contract.IDEMPOTENCY_KEY_TTL_SECONDS)
            pipe.execute()

        with suppress(*REDIS_UNAVAILABLE):
            self.cache.call(mark)

    def release(self, message_ids: list[str]) -> None:
        """Release claims whose processing failed: the next delivery may take them at once."""
        if not message_ids:
            return
        keys = [self.key(mid) for mid in message_ids]
        with suppress(*REDIS_UNAVAILABLE):
            self.cache.call(lambda r: r.delete(*keys))
