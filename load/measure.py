"""Measure the API's CPU per request of each traffic class and write `load/route_cpu.json`, which
`platformctl capacity` reads.

Starts the local runtime (`platformctl.local`, on free ports, its own database and Redis prefix, the rate
limit lifted), warms it with the whole mix, then runs each traffic class on its own and reads the CPU time
of the API's gunicorn workers from /proc over the run, less what they spend idle (measured first), divided by
the class's requests. The worker and relay's CPU per order is read over the checkout run. Figures depend on
the machine: rerun on a quiet one before sizing from them.

    .venv/bin/python -m load.measure [--seconds 15] [--users 10] [--output load/route_cpu.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis

from load.run import figures, run_locust
from platformctl import procstat
from platformctl.local import LocalConfig, LocalRuntime
from stack_config.schema import TRAFFIC_CLASSES

OUTPUT = Path(__file__).resolve().parent / "route_cpu.json"
IDLE_SECONDS = 3.0
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def cpu_seconds(pids: Callable[[], list[int]]) -> float:
    return sum(procstat.ticks(pid) for pid in pids()) * procstat.tick_seconds()


def decided(runtime: LocalRuntime, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(**PG, dbname=runtime.config.db_name, autocommit=True) as conn:  # type: ignore[arg-type]
        while time.monotonic() < deadline:
            if dead := runtime.dead():
                raise SystemExit(f"{dead[0]} exited (see {runtime.log_dir / (dead[0] + '.log')})")
            row = conn.execute("SELECT count(*) FROM orders WHERE status = 'PENDING'").fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.5)
    raise SystemExit(f"orders still pending after {timeout:.0f} s: the worker's CPU per order would be short")


def measured(runtime: LocalRuntime, seconds: float, users: int) -> dict[str, Any]:
    def api_workers() -> list[int]:
        return procstat.children(runtime.procs["api"].pid)

    def consumers() -> list[int]:
        return [runtime.procs[name].pid for name in ("worker", "relay")]

    warm = run_locust(runtime.api_url, smoke=True)
    print("warm-up, the whole mix:", *figures(warm.summary), sep="\n")
    # What each side burns with no requests (gunicorn's heartbeats, the relay's and worker's polls), per second.
    idle_start = cpu_seconds(api_workers), cpu_seconds(consumers)
    time.sleep(IDLE_SECONDS)
    idle_rate = (cpu_seconds(api_workers) - idle_start[0]) / IDLE_SECONDS
    consumers_idle_rate = (cpu_seconds(consumers) - idle_start[1]) / IDLE_SECONDS
    classes: dict[str, Any] = {}
    for name in TRAFFIC_CLASSES:
        before, consumed, began = cpu_seconds(api_workers), cpu_seconds(consumers), time.monotonic()
        run = run_locust(runtime.api_url, stages=f"2:{users},{seconds}:{users}", classes=[name])
        elapsed = time.monotonic() - began
        api_cpu = cpu_seconds(api_workers) - before - idle_rate * elapsed
        summary = run.summary
        print(f"{name}:", *figures(summary), sep="\n")
        classes[name] = {
            "api_cpu_ms_per_request": round(1000 * api_cpu / max(1, summary["requests"]), 3),
            "requests": summary["requests"],
            "failures": summary["failures"],
            "rps": summary["rps"],
            "p50_ms": summary["p50_ms"],
            "p95_ms": summary["p95_ms"],
            "routes": summary["routes"],
        }
        if name == "checkout":
            orders = summary["routes"].get("POST /api/checkout/orders", {}).get("requests", 0)
            # The relay and worker decide each order after it is placed: let them finish this run's first.
            decided(runtime)
            worker_ms = 1000 * (cpu_seconds(consumers) - consumed - consumers_idle_rate * (time.monotonic() - began))
            classes[name]["worker_cpu_ms"] = round(worker_ms, 1)
            classes[name]["worker_cpu_ms_per_order"] = round(worker_ms / max(1, orders), 3)
    idle = {"api": round(1000 * idle_rate, 3), "worker_and_relay": round(1000 * consumers_idle_rate, 3)}
    return {"idle_cpu_ms_per_second": idle, "classes": classes}


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.machine())
    cores = sum(1 for line in cpuinfo if line.startswith("processor"))
    return f"{model}, {cores} cores, Linux {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="Seconds each class runs at full users")
    parser.add_argument("--users", type=int, default=10, help="Locust users per run")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--note", default="", help="What else ran on the machine")
    args = parser.parse_args()
    db_name, prefix = f"load_{uuid.uuid4().hex[:10]}", f"load:{uuid.uuid4().hex[:8]}:"
    scratch = tempfile.mkdtemp(prefix="platformctl-load-")
    config = LocalConfig.on_free_ports(
        db_name=db_name,
        redis_key_prefix=prefix,
        state_dir=Path(scratch),
        extra={"RATE_LIMIT_PER_MINUTE": str(10**9)},
    )
    runtime = LocalRuntime(config, echo=print)
    try:
        runtime.up()
        result = measured(runtime, args.seconds, args.users)
    finally:
        runtime.stop()
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        with contextlib.closing(redis.Redis()) as r:
            keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                r.delete(*keys)
    document = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": machine(),
        "note": args.note,
        "how": f"{args.users} users per class for {args.seconds:g} s after a whole-mix warm-up; API: gunicorn"
        f" ({runtime.settings_env().get('WEB_CONCURRENCY')} workers) CPU time from /proc less its idle rate",
        **result,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
