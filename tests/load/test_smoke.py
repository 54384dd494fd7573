"""The locust profile's smoke run against a real local runtime (moto, API, relay, worker, stub): every traffic
class runs, every route answers, and nothing fails that the shop does not answer on purpose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from load.profile import ROUTES
from load.run import figures, run_locust
from stack_config.schema import TRAFFIC_CLASSES


def test_a_smoke_run_exercises_every_class_without_failures(make_stack: Callable[..., Any]) -> None:
    # The rate limit (600 a minute per client) would throttle locust's users, who all come from 127.0.0.1.
    stack = make_stack(extra={"RATE_LIMIT_PER_MINUTE": "1000000"})
    for _ in range(20):
        stack.add_product(stock=10_000)
    run = run_locust(stack.runtime.api_url, smoke=True, timeout=60)
    summary = run.summary
    print("\n".join(figures(summary)))
    assert summary["failures"] == 0, summary["errors"]
    assert run.exit_code == 0, run.output
    assert all(summary["classes"][name] > 0 for name in TRAFFIC_CLASSES), summary["classes"]
    every_route = {route for routes in ROUTES.values() for route in routes}
    assert every_route <= set(summary["routes"]), sorted(every_route - set(summary["routes"]))
    # Each order placed was read back: the checkout class ran whole, not just its first request.
    orders = summary["routes"]["POST /api/checkout/orders"]["requests"]
    assert summary["routes"]["GET /api/checkout/orders/[id]"]["requests"] >= orders - 2 * 2  # users cut mid-task
    assert summary["rps"] > 0
