"""The shop's traffic mix as a locust profile: browse (product list and reads), session (sign in, who am I,
sign out) and checkout (an order with an Idempotency-Key, then reading it back).

The classes' request shares follow the config's default `capacity.mix` (80/15/5; each class's `weight`
divides its share by the requests one task makes, so requests, not users, follow the mix). The load
follows `--stages` (`SECONDS:USERS,...`, each stage ramping linearly to its user count), or `--smoke` (a few
users for a dozen seconds). `--summary-file` writes per-route figures as JSON when the run ends (see
`load.run`, which starts this file in its own process: locust patches the interpreter with gevent).

    locust -f load/locustfile.py --headless --host http://127.0.0.1:8080 --stages 30:10,60:40,120:40,30:0
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.env import Environment

from load.profile import (
    DEFAULT_STAGES,
    SMOKE_STAGES,
    SMOKE_USERS_PER_CLASS,
    Stages,
    mix_weights,
    parse_stages,
    summarise,
)

ZIPF_S = 1.1  # the benchmark's popularity skew (bench/api.py): a few products take most reads
EMAIL = "load@example.com"
WEIGHTS = mix_weights()
# Outcomes the shop answers on purpose under load (an order for more than the stock left): not failures.
expected: Counter[str] = Counter()
# Which product, page and pause: the traffic's randomness, not a secret.
rng = random.Random()  # noqa: S311
_products: list[int] = []
_products_lock = threading.Lock()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--stages", default=DEFAULT_STAGES, help="SECONDS:USERS,... each stage ramps to USERS")
    parser.add_argument("--smoke", action="store_true", default=False, help=f"A short run: {SMOKE_STAGES}")
    parser.add_argument("--summary-file", default="", help="Write per-route figures as JSON here at the end")


@events.init.add_listener
def _stages(environment: Environment, **_: Any) -> None:
    """Parse the stages once, refusing bad ones before any user starts; the smoke run holds every class."""
    options = environment.parsed_options
    if options is None:
        return
    try:
        options.parsed_stages = parse_stages(SMOKE_STAGES if options.smoke else options.stages)
    except ValueError as error:
        print(f"locust: {error}", file=sys.stderr)
        sys.exit(2)
    if options.smoke:
        for user in Shopper.__subclasses__():
            user.fixed_count = SMOKE_USERS_PER_CLASS


@events.quitting.add_listener
def _write_summary(environment: Environment, **_: Any) -> None:
    path = environment.parsed_options.summary_file if environment.parsed_options else ""
    if path:
        Path(path).write_text(json.dumps(summarise(environment.stats, expected), indent=2) + "\n")


class Shopper(FastHttpUser):
    abstract = True
    wait_time = between(0.2, 1.0)

    def products(self) -> list[int]:
        """The catalog's first 100 ids, in a fixed popularity order (shuffled: popularity is not correlated with id)."""
        with _products_lock:
            if not _products:
                body = self.client.get("/api/products?per_page=100", name="/api/products").json()
                ids = [int(item["id"]) for item in body["items"]]
                random.Random(7).shuffle(ids)  # noqa: S311 - a fixed popularity order
                _products.extend(ids)
        return _products

    def popular_product(self) -> int:
        ids = self.products()
        return rng.choices(ids, cum_weights=_zipf_cumulative(len(ids)))[0]


@functools.cache
def _zipf_cumulative(n: int) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**ZIPF_S) for rank in range(1, n + 1)))


class BrowseUser(Shopper):
    weight = WEIGHTS["browse"]

    @task(4)
    def product(self) -> None:
        self.client.get(f"/api/products/{self.popular_product()}", name="/api/products/[id]")

    @task(1)
    def product_list(self) -> None:
        page = rng.choice(("", "&category=books", "&category=games", "&category=tools"))
        self.client.get(f"/api/products?per_page=20{page}", name="/api/products")


class SessionUser(Shopper):
    weight = WEIGHTS["session"]
    token = ""

    def on_start(self) -> None:
        self.sign_in()

    def sign_in(self) -> None:
        resp = self.client.post("/api/user/sessions", json={"email": EMAIL, "name": "Load"})
        self.token = resp.json()["token"] if resp.status_code == 201 else ""

    @task(8)
    def me(self) -> None:
        self.client.get("/api/user/me", headers={"Authorization": f"Bearer {self.token}"})

    @task(1)
    def renew(self) -> None:
        self.client.delete("/api/user/sessions/current", headers={"Authorization": f"Bearer {self.token}"})
        self.sign_in()


class CheckoutUser(Shopper):
    weight = WEIGHTS["checkout"]

    @task
    def order(self) -> None:
        item = {"product_id": self.popular_product(), "quantity": 1}
        with self.client.post(
            "/api/checkout/orders",
            json={"email": EMAIL, "items": [item]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            catch_response=True,
        ) as resp:
            if resp.status_code == 202:
                order_id = resp.json()["id"]
            elif resp.status_code == 422 and "in stock" in (resp.text or ""):
                expected["checkout: out of stock (422)"] += 1
                resp.success()
                return
            else:
                resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
                return
        self.client.get(f"/api/checkout/orders/{order_id}", name="/api/checkout/orders/[id]")


class Ramp(LoadTestShape):
    """`--stages` (or `--smoke`'s): each stage ramps linearly from the last stage's users to its own."""

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        stages: Stages = options.parsed_stages if options is not None else parse_stages(DEFAULT_STAGES)
        return stages.users_at(self.get_run_time())
