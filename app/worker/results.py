"""How a received message is settled: its outcome, and the one action on the queue that outcome calls for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    """What the consumer does with a message once its batch is through."""

    DELETE = "delete"  # its effect is committed (or was, by an earlier delivery)
    RETRY = "retry"  # visible again after a backoff; SQS moves it to the DLQ after maxReceiveCount receives
    REQUEUE = "requeue"  # a delayed copy sent and the original deleted, so an outage never counts towards the DLQ


class Outcome(StrEnum):
    """Why a message is settled as it is; the worker's counts and metrics are kept by outcome."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # the Redis claim or the database's unique row says it was done before
    FAILED = "failed"
    INVALID = "invalid"  # not a well-formed event: retried like a failure, so it reaches the DLQ to be looked at
    BUSY = "busy"  # another delivery of it holds the claim
    DEFERRED = "deferred"  # the notification breaker is open
    COMPENSATED = "compensated"  # failed for good: its order's stock released and the order FAILED (the saga settled)

    @property
    def action(self) -> Action:
        # An outcome decides the action, so a result can never pair them inconsistently.
        return _ACTIONS[self]


_ACTIONS = {
    Outcome.PROCESSED: Action.DELETE,
    Outcome.DUPLICATE: Action.DELETE,
    Outcome.FAILED: Action.RETRY,
    Outcome.INVALID: Action.RETRY,
    Outcome.BUSY: Action.RETRY,
    Outcome.DEFERRED: Action.REQUEUE,
    Outcome.COMPENSATED: Action.DELETE,
}


@dataclass(frozen=True)
class Result:
    """How one received message (as `ReceiveMessage` returned it) is settled."""

    outcome: Outcome
    message: dict[str, Any]

    @property
    def action(self) -> Action:
        return self.outcome.action
