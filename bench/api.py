"""Benchmark the bundled API against the local stack (PostgreSQL, Redis), all on loopback.

Starts its own database and Redis key prefix and two gunicorns with the same configuration
(`app.gunicorn_conf`): the real API and a bare one-route Flask app. Load comes from a small asyncio
HTTP/1.1 keep-alive client in this process. Phases (the two GET phases interleaved, twice each):
  1. cached `GET /api/products/{id}` vs the bare endpoint at 32 connections: throughput ratio, p99 ratio;
  2. a Zipf(s=1.1) mix over 10,000 products on a cold cache: a warm-up half, then a measured half
     (cache hit ratio and database reads per request from the `X-Cache` header; each miss is one read);
  3. `POST /api/checkout/orders` at 16 connections: p99.
Ends with: `api: get_ratio=R p99_ratio=R hit_ratio=H order_p99_ms=M`.
After the GET and order phases, where their CPU went, per request, from /proc: the server's gunicorn workers, Redis,
PostgreSQL, this load client, and the time both cores sat idle; and how the phase's connections were
spread over the server's workers (a worker holding most of them is bound by its own GIL while the other idles).
Knobs (both servers alike): BENCH_WORKERS (2), BENCH_THREADS (8), BENCH_LOG_LEVEL (INFO: the real per-request
JSON/EMF log line is written, to /dev/null).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app import contract  # noqa: E402
from app.data import migrate  # noqa: E402
from app.settings import Settings  # noqa: E402

PRODUCTS = 10_000
GET_CONNS = 32
ORDER_CONNS = 16
PHASE_SECONDS = 6.0
ZIPF_WARMUP = 60_000
ZIPF_MEASURED = 20_000
ZIPF_S = 1.1
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


async def _conn_loop(
    port: int, requests: itertools.count | None, make: object, stop_at: float, limit: list[int], stats: Stats
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and limit[0] > 0:
            limit[0] -= 1
            payload: bytes = make()  # type: ignore[operator]
            t0 = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lname = name.lower()
                if lname == "content-length":
                    length = int(value)
                elif lname == "x-cache":
                    if value.strip() == "hit":
                        stats.hits += 1
                    else:
                        stats.misses += 1
            if length:
                await reader.readexactly(length)
            stats.latencies.append(time.perf_counter() - t0)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
    finally:
        writer.close()


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A process's command name and the fields of /proc/PID/stat after it; None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            head, _, rest = f.read().rpartition(")")
    except OSError:
        return None
    return head.partition("(")[2], rest.split()


def _ticks(pid: int) -> int:
    """User + system CPU ticks of one process (0 once it has gone)."""
    stat = _stat(pid)
    return int(stat[1][11]) + int(stat[1][12]) if stat else 0


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(entry)):
            found.append((int(entry), int(stat[1][1]), stat[0]))
    return found


def _idle_ticks() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return int(fields[3]) + int(fields[4])  # idle + iowait


def _connections_per_worker(port: int, workers: list[int]) -> list[int]:
    """Established connections to `port` held by each worker (socket inodes in /proc/net/tcp and fd links)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                inodes.add(cols[9])
    counts = []
    for pid in workers:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                n += link.startswith("socket:[") and link[8:-1] in inodes
        except OSError:
            pass
        counts.append(n)
    return sorted(counts)


@dataclass
class CpuMeter:
    """Where a phase's CPU time goes, per request: the server's workers, Redis, PostgreSQL, this client, idle."""

    server: subprocess.Popen[bytes]
    port: int
    ticks: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    spread: list[list[int]] = field(default_factory=list)

    def _groups(self) -> dict[str, list[int]]:
        procs = _processes()
        return {
            "gunicorn": [pid for pid, ppid, _ in procs if ppid == self.server.pid],
            "redis": [pid for pid, _, name in procs if name.startswith("redis-server")],
            "postgres": [pid for pid, _, name in procs if name.startswith("postgres")],
            "client": [os.getpid()],
        }

    def _snapshot(self, groups: dict[str, list[int]]) -> dict[str, int]:
        snap = {name: sum(_ticks(pid) for pid in pids) for name, pids in groups.items()}
        snap["idle"] = _idle_ticks()
        return snap

    def measure(self, make: object, conns: int, seconds: float, max_requests: int = 10**9) -> Stats:
        groups = self._groups()
        before = self._snapshot(groups)
        sample = threading.Timer(
            min(1.0, seconds / 2), lambda: self.spread.append(_connections_per_worker(self.port, groups["gunicorn"]))
        )
        sample.start()
        try:
            stats = load(self.port, make, conns, seconds, max_requests)
        finally:
            sample.cancel()
        after = self._snapshot(groups)
        for name, value in after.items():
            self.ticks[name] = self.ticks.get(name, 0) + value - before[name]
        self.requests += stats.count
        return stats

    def report(self) -> str:
        tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
        per_request = " ".join(
            f"{name}={value * tick_us / max(1, self.requests):.0f}us" for name, value in self.ticks.items()
        )
        return f"cpu per request: {per_request}; connections per worker: {self.spread}"


def load(port: int, make: object, conns: int, seconds: float, max_requests: int = 10**9) -> Stats:
    stats = Stats()
    limit = [max_requests]

    async def main() -> None:
        stop_at = time.perf_counter() + seconds
        start = time.perf_counter()
        await asyncio.gather(*(_conn_loop(port, None, make, stop_at, limit, stats) for _ in range(conns)))
        stats.elapsed = time.perf_counter() - start

    asyncio.run(main())
    return stats


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def start_gunicorn(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).parent / "gunicorn")
    cmd = [exe, *contract.API_COMMAND[1:-1], "--bind", f"127.0.0.1:{port}", target]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    path = "/bare" if "bare" in target else contract.HEALTH_LIVE_PATH
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gunicorn {target} did not start")


def main() -> None:
    t_start = time.monotonic()
    db_name = f"bench_api_{uuid.uuid4().hex[:10]}"
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    r = redis.Redis()
    procs: list[subprocess.Popen[bytes]] = []
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        migrate(Settings(db_name=db_name))
        with psycopg.connect(**PG, dbname=db_name, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO products (sku, name, category, price_cents, stock)"
                " SELECT 'SKU-' || g, 'Product ' || g, 'cat-' || (g %% 20), 100 + g %% 5000, 1000000000"
                " FROM generate_series(1, %s) AS g",
                (PRODUCTS,),
            )
            conn.execute("ANALYZE products")
            first_id = conn.execute("SELECT min(id) FROM products").fetchone()[0]  # type: ignore[index]
        env = {
            **os.environ,
            contract.DB_NAME: db_name,
            contract.REDIS_KEY_PREFIX: prefix,
            contract.RATE_LIMIT_PER_MINUTE: str(10**9),
            contract.WEB_CONCURRENCY: os.environ.get("BENCH_WORKERS", "2"),
            contract.GUNICORN_THREADS: os.environ.get("BENCH_THREADS", "8"),
            contract.LOG_LEVEL: os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        }
        api_port, bare_port = free_port(), free_port()
        procs.append(start_gunicorn("app.wsgi:application", api_port, env))
        procs.append(start_gunicorn("app.http.factory:bare_app()", bare_port, env))

        # Phase 1: cached product vs bare, interleaved.
        hot = [first_id + i for i in range(100)]
        for pid in hot:
            httpx.get(f"http://127.0.0.1:{api_port}/api/products/{pid}")
        hot_cycle = itertools.cycle(hot)
        bare_req = get("/bare")
        load(bare_port, lambda: bare_req, GET_CONNS, 1.0)  # warm-up
        load(api_port, lambda: get(f"/api/products/{next(hot_cycle)}"), GET_CONNS, 1.0)
        bare, cached = Stats(), Stats()
        api_cpu, bare_cpu = CpuMeter(procs[0], api_port), CpuMeter(procs[1], bare_port)
        for _ in range(2):
            for target, meter, make in (
                (bare, bare_cpu, lambda: bare_req),
                (cached, api_cpu, lambda: get(f"/api/products/{next(hot_cycle)}")),
            ):
                s = meter.measure(make, GET_CONNS, PHASE_SECONDS / 2)
                target.latencies += s.latencies
                target.elapsed += s.elapsed
                for k, v in s.statuses.items():
                    target.statuses[k] = target.statuses.get(k, 0) + v
                target.hits += s.hits
        get_ratio = cached.rps / bare.rps
        p99_ratio = cached.p(0.99) / bare.p(0.99)
        print(
            f"bare   GET /bare            : {bare.rps:8.0f} req/s  p50={bare.p(0.5):.2f} ms  p99={bare.p(0.99):.2f} ms"
            f"  statuses={bare.statuses}"
        )
        print(
            f"cached GET /api/products/id : {cached.rps:8.0f} req/s  p50={cached.p(0.5):.2f} ms"
            f"  p99={cached.p(0.99):.2f} ms  statuses={cached.statuses} hits={cached.hits}"
        )
        print("  bare:", bare_cpu.report())
        print("  cached:", api_cpu.report())

        # Phase 2: Zipf mix on a cold cache.
        for key in r.scan_iter(match=f"{prefix}product:*", count=1000):
            r.delete(key)
        weights = [1.0 / (k**ZIPF_S) for k in range(1, PRODUCTS + 1)]
        cum = list(itertools.accumulate(weights))
        rng = random.Random(7)
        order = list(range(PRODUCTS))
        rng.shuffle(order)  # popularity is not correlated with id

        def zipf_req() -> bytes:
            rank = bisect.bisect_left(cum, rng.random() * cum[-1])
            return get(f"/api/products/{first_id + order[rank]}")

        warm = load(api_port, zipf_req, GET_CONNS, 60, ZIPF_WARMUP)
        measured = load(api_port, zipf_req, GET_CONNS, 30, ZIPF_MEASURED)
        hit_ratio = measured.hits / max(1, measured.hits + measured.misses)
        cold = (warm.hits + measured.hits) / max(1, warm.hits + warm.misses + measured.hits + measured.misses)
        warm_ratio = warm.hits / max(1, warm.count)
        reads = measured.misses / max(1, measured.count)
        print(
            f"zipf s={ZIPF_S} over {PRODUCTS} products: warm-up {warm.count} req (hit ratio {warm_ratio:.3f}),"
            f" measured {measured.count} req: hit ratio {hit_ratio:.4f}, db reads/request {reads:.4f};"
            f" whole run from cold {cold:.4f}; {measured.rps:.0f} req/s"
        )

        # Phase 3: orders.
        def order_req() -> bytes:
            body = json.dumps(
                {
                    "email": "bench@example.com",
                    "items": [{"product_id": first_id + rng.randrange(PRODUCTS), "quantity": 1}],
                }
            ).encode()
            return (
                f"POST /api/checkout/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body

        load(api_port, order_req, ORDER_CONNS, 1.0)  # warm-up
        order_cpu = CpuMeter(procs[0], api_port)
        orders = order_cpu.measure(order_req, ORDER_CONNS, PHASE_SECONDS)
        print(
            f"POST /api/checkout/orders @{ORDER_CONNS}: {orders.rps:.0f} req/s  p50={orders.p(0.5):.2f} ms"
            f"  p99={orders.p(0.99):.2f} ms  statuses={orders.statuses}"
        )
        print("  orders:", order_cpu.report())
        print(
            "targets: get_ratio>=0.6 p99_ratio<=2 hit_ratio>=0.95 order_p99_ms<50;"
            f" took {time.monotonic() - t_start:.0f} s"
        )
        print(
            f"api: get_ratio={get_ratio:.2f} p99_ratio={p99_ratio:.2f} hit_ratio={hit_ratio:.3f}"
            f" order_p99_ms={orders.p(0.99):.1f}"
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i : i + 1000])
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
