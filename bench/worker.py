"""Benchmark the SQS worker against the local runtime (moto's server, PostgreSQL, Redis), all on loopback.

Starts `platformctl local`'s runtime on free ports with a database and Redis prefix of its own. Phases:
  1. throughput: the same SQS endpoint drained of N order events twice each, alternately, by a bare
     receive-and-delete loop (one thread: receive 10, delete them in one batch call) and by the real worker
     (one receiver thread, like the bare loop; idempotency claims, the database transactions and the provider
     stub - answering at once - on; connected before its clock starts, as the bare loop's client is, and timed
     to the last order's `decided_at`): ratio = the median over the rounds of worker msgs/s / bare msgs/s (each
     round's two runs are seconds apart, so a burst of load elsewhere on the machine moves one round, not the
     median);
  2. end-to-end latency: orders POSTed to the API at a steady rate, through the outbox relay, SQS and the
     worker (processes of the runtime) to CONFIRMED; latency = the order's `decided_at` - the POST's start.
Ends with: `worker: ratio=R msgs_per_s=N e2e_p50_ms=M e2e_p99_ms=M`.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.observability import configure_logging  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.worker import Worker, new_message  # noqa: E402
from platformctl.local import LocalConfig, LocalRuntime, free_port  # noqa: E402

# moto's receive scans the whole queue: small backlogs keep the emulator, not the code, from dominating.
MESSAGES = 200
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))
PRODUCTS = 50
E2E_RATE = 25  # orders per second
E2E_SECONDS = 8
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def fill(sqs: Any, queue_url: str, db: Any, product_ids: list[int], n: int) -> list[str]:
    """n PENDING orders (one item of a product picked in turn) and their events on the queue."""
    orders = [
        (str(uuid.uuid4()), [{"product_id": product_ids[i % len(product_ids)], "quantity": 1, "price_cents": 100}])
        for i in range(n)
    ]
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO orders (id, status, customer_email, items, total_cents, currency, correlation_id)"
            " VALUES (%s, 'PENDING', 'bench@example.com', %s, 100, 'USD', 'bench')",
            [(o, json.dumps(lines)) for o, lines in orders],
        )
    entries = [
        new_message("order.placed", {"order_id": o, "email": "bench@example.com", "items": lines, "total_cents": 100})
        for o, lines in orders
    ]
    order_ids = [o for o, _ in orders]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda chunk: sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk),
                [entries[i : i + 10] for i in range(0, len(entries), 10)],
            )
        )
    return order_ids


def visible(sqs: Any, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def bare_loop(sqs: Any, queue_url: str, n: int) -> float:
    """Receive and delete n messages, one thread, batches of 10; messages per second."""
    done = 0
    start = time.perf_counter()
    while done < n:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not msgs:
            continue
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
        )
        done += len(msgs)
    return n / (time.perf_counter() - start)


def worker_run(settings: Settings, db: Any, order_ids: list[str]) -> float:
    """The real worker (on a thread of this process) drains the queue; messages per second until all decided."""
    stop = threading.Event()
    worker = Worker(settings, stop)
    worker.open()  # connected before the clock starts, as the bare loop's client is
    thread = threading.Thread(target=worker.run, kwargs={"drain_seconds": 10}, daemon=True)
    start = time.time()
    thread.start()
    try:
        while True:
            row = db.execute(
                "SELECT count(*), extract(epoch FROM max(decided_at)) FROM orders"
                " WHERE id = ANY(%s::uuid[]) AND status <> 'PENDING'",
                (order_ids,),
            ).fetchone()
            if row[0] >= len(order_ids):
                break
            if time.time() - start > 90:
                raise RuntimeError(f"worker did not finish: {row[0]}/{len(order_ids)}")
            time.sleep(0.05)
        elapsed = float(row[1]) - start  # until the last order was decided, not until this poll saw it
    finally:
        stop.set()
        thread.join(20)
    return len(order_ids) / elapsed


def e2e_latency(runtime: LocalRuntime, db: Any, product_id: int) -> list[float]:
    sent: dict[str, float] = {}
    lock = threading.Lock()

    def post(client: httpx.Client) -> None:
        t0 = time.time()
        resp = client.post(
            "/api/checkout/orders",
            json={"email": "bench@example.com", "items": [{"product_id": product_id, "quantity": 1}]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if resp.status_code == 202:
            with lock:
                sent[resp.json()["id"]] = t0

    with httpx.Client(base_url=runtime.api_url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        start = time.perf_counter()
        for i in range(E2E_RATE * E2E_SECONDS):
            pause = start + i / E2E_RATE - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(post, client)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = db.execute(
            "SELECT id::text AS id, decided_at FROM orders WHERE id = ANY(%s::uuid[]) AND decided_at IS NOT NULL",
            (list(sent),),
        ).fetchall()
        if len(rows) == len(sent):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"only {len(rows)}/{len(sent)} orders decided")
    return sorted((r[1].timestamp() - sent[r[0]]) * 1000 for r in rows)


def pct(data: list[float], q: float) -> float:
    return data[min(len(data) - 1, int(q * len(data)))]


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the runtime's processes on SIGTERM too
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    configure_logging("WARNING")
    db_name = f"bench_worker_{uuid.uuid4().hex[:8]}"
    prefix = f"benchw:{uuid.uuid4().hex[:8]}:"
    state = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    config = LocalConfig(
        api_port=free_port(),
        moto_port=free_port(),
        notifier_port=free_port(),
        db_name=db_name,
        redis_key_prefix=prefix,
        visibility_timeout=30,
        state_dir=state,
        seed_products=0,
        extra={"LOG_LEVEL": "WARNING", "WORKER_POLL_SECONDS": "20"},
    )
    runtime = LocalRuntime(config, echo=lambda line: print(line, file=sys.stderr))
    runtime.up()
    try:
        runtime.terminate("worker")  # phase 1 runs the worker in this process
        sqs = boto3.client("sqs", endpoint_url=runtime.moto_url, region_name="us-east-1")
        db = psycopg.connect(**PG, dbname=db_name, autocommit=True)  # type: ignore[arg-type]
        product_ids = [
            int(r[0])
            for r in db.execute(
                "INSERT INTO products (sku, name, price_cents, stock)"
                " SELECT 'BENCH-' || n, 'Bench', 100, 1000000000 FROM generate_series(1, %s) n RETURNING id",
                (PRODUCTS,),
            ).fetchall()
        ]
        settings = Settings(
            db_name=db_name,
            redis_key_prefix=prefix,
            queue_url=runtime.queue_url,
            aws_endpoint_url=runtime.moto_url,
            notification_url=runtime.notifier_url,
            worker_poll_seconds=1,
            worker_in_flight=int(os.environ.get("BENCH_IN_FLIGHT", "20")),
            log_level="WARNING",
        )
        bare_rates, worker_rates = [], []
        for round_ in range(ROUNDS):
            fill(sqs, runtime.queue_url, db, product_ids, MESSAGES)
            bare_rates.append(bare_loop(sqs, runtime.queue_url, MESSAGES))
            ids = fill(sqs, runtime.queue_url, db, product_ids, MESSAGES)
            worker_rates.append(worker_run(settings, db, ids))
            print(
                f"round {round_ + 1}: bare={bare_rates[-1]:.0f} msg/s worker={worker_rates[-1]:.0f} msg/s"
                f" ratio={worker_rates[-1] / bare_rates[-1]:.2f}",
                file=sys.stderr,
            )
        ratio = statistics.median(w / b for w, b in zip(worker_rates, bare_rates, strict=True))
        work = statistics.median(worker_rates)
        runtime.start_service("worker")
        time.sleep(3)  # the worker's imports and first poll
        latencies = e2e_latency(runtime, db, product_ids[0])
        print(
            f"e2e: {len(latencies)} orders at {E2E_RATE}/s; p50={pct(latencies, 0.5):.0f} ms"
            f" p99={pct(latencies, 0.99):.0f} ms; left in queue: {visible(sqs, runtime.queue_url)}",
            file=sys.stderr,
        )
        db.close()
    finally:
        runtime.stop()
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        r = redis.Redis(host="127.0.0.1", port=6379)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)
    print(
        f"worker: ratio={ratio:.2f} msgs_per_s={work:.0f}"
        f" e2e_p50_ms={pct(latencies, 0.5):.0f} e2e_p99_ms={pct(latencies, 0.99):.0f}"
    )


if __name__ == "__main__":
    main()
