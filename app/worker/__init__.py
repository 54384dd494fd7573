"""The SQS worker (`app worker`): at-least-once delivery, exactly-once effects, graceful shutdown.

Split by job:
- `consumer` - the loop (`Worker`): receive, heartbeat, settle by batch calls, drain on SIGTERM, metrics;
- `idempotency` - the Redis claims that make a duplicate cheap to skip;
- `orders` - order processing: a batch decided (`decide_orders`), notified and finished, one round trip a step;
- `results` - how a message is settled (`Result`: an `Outcome`, whose `Action` it implies);
- `messages` - SQS message helpers, and `new_message` in the outbox relay's format.

Exactly-once effects: the event's `message_id` is claimed in Redis with `SET NX` (fast path: a message marked
done is skipped without touching the database), and a row in `processed_messages` (unique message id) is
written in the same transaction as the effect, so a duplicate - also one after Redis lost its keys - finds the
row and changes nothing.
"""

from app.worker.consumer import Stats, Tracked, Worker, backoff_seconds
from app.worker.idempotency import Claim, Claims
from app.worker.messages import new_message
from app.worker.orders import OrderNotFound, OrderProcessing
from app.worker.results import Action, Outcome, Result

__all__ = [
    "Action",
    "Claim",
    "Claims",
    "OrderNotFound",
    "OrderProcessing",
    "Outcome",
    "Result",
    "Stats",
    "Tracked",
    "Worker",
    "backoff_seconds",
    "new_message",
]
