"""What the locust profile and its readers share, without importing locust (which patches the interpreter
with gevent): the traffic classes and their routes, the load stages, the class weights that make the
request mix the config's, and the summary a run writes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stack_config.schema import TRAFFIC_CLASSES, TrafficMix

# Each class's routes as locust names them (ids folded into [id]).
ROUTES: dict[str, tuple[str, ...]] = {
    "browse": ("GET /api/products", "GET /api/products/[id]"),
    "session": ("POST /api/user/sessions", "GET /api/user/me", "DELETE /api/user/sessions/current"),
    "checkout": ("POST /api/checkout/orders", "GET /api/checkout/orders/[id]"),
}
# Requests one task of the class makes on average: browse one; session 8 reads to 1 renewal of two requests;
# checkout the order and its read.
REQUESTS_PER_TASK: dict[str, float] = {"browse": 1.0, "session": 10 / 9, "checkout": 2.0}
# Warm up, ramp, hold, ramp down: long enough at each step for target tracking (60 s scale-out cooldown).
DEFAULT_STAGES = "60:10,180:60,300:60,60:0"
SMOKE_USERS_PER_CLASS = 2
SMOKE_STAGES = f"2:{SMOKE_USERS_PER_CLASS * len(TRAFFIC_CLASSES)},10:{SMOKE_USERS_PER_CLASS * len(TRAFFIC_CLASSES)}"


def mix_weights(mix: TrafficMix | None = None) -> dict[str, int]:
    """Locust user weights whose requests, not users, follow `mix` (the config's default when None)."""
    shares = (mix or TrafficMix()).model_dump()
    return {name: max(1, round(10 * shares[name] / REQUESTS_PER_TASK[name])) for name in TRAFFIC_CLASSES}


@dataclass(frozen=True)
class Stage:
    seconds: float
    users: int


@dataclass(frozen=True)
class Stages:
    stages: tuple[Stage, ...]

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    def users_at(self, elapsed: float) -> tuple[int, float] | None:
        """(users, spawn rate) at `elapsed` seconds, each stage ramping linearly from the last one's users;
        None once every stage has run."""
        start, before = 0.0, 0
        for stage in self.stages:
            if elapsed < start + stage.seconds:
                progress = (elapsed - start) / stage.seconds
                users = round(before + (stage.users - before) * progress)
                # Fast enough to follow the ramp between two ticks (locust ticks about once a second).
                rate = max(1.0, 2 * abs(stage.users - before) / stage.seconds, float(users))
                return users, rate
            start, before = start + stage.seconds, stage.users
        return None


def parse_stages(spec: str) -> Stages:
    """`SECONDS:USERS,...` (e.g. `30:10,60:40`); ValueError naming the bad part."""
    stages = []
    for part in spec.split(","):
        seconds, sep, users = part.strip().partition(":")
        try:
            stage = Stage(float(seconds.removesuffix("s")), int(users))
        except ValueError:
            stage = None
        if not sep or stage is None or not math.isfinite(stage.seconds) or stage.seconds <= 0 or stage.users < 0:
            raise ValueError(f"--stages: {part.strip()!r} is not SECONDS:USERS (seconds > 0, users >= 0)")
        stages.append(stage)
    return Stages(tuple(stages))


def summarise(stats: Any, expected: Mapping[str, int]) -> dict[str, Any]:
    """Per-route figures of a locust run's `RequestStats` (requests, failures, p50/p95/p99 ms, rps), the
    requests of each traffic class, the expected outcomes that were not failures, and the failures."""
    routes = {}
    for entry in stats.entries.values():
        if not entry.num_requests and not entry.num_failures:
            continue
        routes[f"{entry.method} {entry.name}"] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "rps": round(entry.total_rps, 2),
        }
    total = stats.total
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": round(total.total_rps, 2),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "classes": {
            name: sum(routes[route]["requests"] for route in ROUTES[name] if route in routes) for name in ROUTES
        },
        "routes": dict(sorted(routes.items())),
        "expected": dict(expected),
        "errors": [
            {"route": f"{error.method} {error.name}", "error": str(error.error), "count": error.occurrences}
            for error in stats.errors.values()
        ],
    }
