"""Benchmark the bundled API against the local stack (PostgreSQL, Redis), all on loopback.

Starts its own database and Redis key prefix and gunicorns with the same configuration (`app.gunicorn_conf`):
the real API, a bare one-route Flask app, and the peer (`bench/peer_app.py`: the same product read written
with Flask-Caching's RedisCache and Flask-Limiter's Redis storage). Load comes from a small asyncio HTTP/1.1
keep-alive client in this process. Every compared figure is the median of ROUNDS interleaved rounds, each
ratio taken within its round (this machine's speed moves two- to three-fold; no absolute times are judged):
  1. cached `GET /api/products/{id}` vs the bare endpoint vs the peer at 32 connections: throughput and p99
     ratios; the same for each worker class in BENCH_WORKER_CLASSES (API and bare alike), side by side;
  2. a Zipf(s=1.1) mix over 10,000 products on a cold cache (Redis and every near cache emptied): a warm-up,
     then a measured part (hit ratio from `X-Cache`, the near cache's share of hits from `X-Cache-Tier`);
  3. `POST /api/checkout/orders` at 16 connections vs the floor: the same order-writing statement
     (`app.checkout.PLACE_ORDER`) called directly from a psycopg pool by 16 threads of this process.
Ends with: `api: get_ratio=R p99_ratio=R peer_ratio=R order_ratio=R order_p99_ratio=R hit_ratio=H`.
After the GET and order phases, where their CPU went, per request, from /proc: the server's workers (`server`), Redis,
PostgreSQL, this load client, and the time both cores sat idle; and how the phase's connections were
spread over the server's workers (a worker holding most of them is bound by its own GIL while the other idles).
Knobs (every server alike): BENCH_WORKERS (2), BENCH_THREADS (8), BENCH_WORKER_CLASS (the configured one),
BENCH_WORKER_CLASSES (gthread,gevent: the side-by-side comparison; empty to skip), BENCH_ROUNDS (5: this
machine's speed moves within a run, and the order ratio's median of 3 rounds moved by 0.1 between runs),
BENCH_LOG_LEVEL (INFO: the real per-request JSON/EMF log line is written, to /dev/null), BENCH_ORDER_SERVERS (empty;
`granian`: the order phase also serves the API under granian's WSGI interface with the same workers and threads, for
comparison only: granian is not a dependency, `uv pip install granian` first).
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import importlib.util
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app import contract, gunicorn_conf  # noqa: E402
from app.cache import Cache  # noqa: E402
from app.catalog import canonical_json  # noqa: E402
from app.checkout import PLACE_ORDER  # noqa: E402
from app.data import migrate  # noqa: E402
from app.near_cache import NearCache  # noqa: E402
from app.settings import Settings  # noqa: E402
from platformctl.procstat import connections_per_worker, idle_ticks, processes, ticks  # noqa: E402

PRODUCTS = 10_000
GET_CONNS = 32
ORDER_CONNS = 16
ROUND_SECONDS = 3.0
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
    near: int = 0  # hits the near cache answered (`X-Cache-Tier: memory`)
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
                elif lname == "x-cache-tier" and value.strip() == "memory":
                    stats.near += 1
            if length:
                await reader.readexactly(length)
            stats.latencies.append(time.perf_counter() - t0)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
    finally:
        writer.close()


@dataclass
class CpuMeter:
    """Where a phase's CPU time goes, per request: the server's workers, Redis, PostgreSQL, this client, idle."""

    server: subprocess.Popen[bytes] | None
    port: int
    ticks: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    spread: list[list[int]] = field(default_factory=list)

    def _groups(self) -> dict[str, list[int]]:
        procs = processes()
        server = self.server.pid if self.server else -1
        return {
            "server": [pid for pid, ppid, _ in procs if ppid == server],  # its workers: gunicorn's or granian's
            "redis": [pid for pid, _, name in procs if name.startswith("redis-server")],
            "postgres": [pid for pid, _, name in procs if name.startswith("postgres")],
            "client": [os.getpid()],
        }

    def _snapshot(self, groups: dict[str, list[int]]) -> dict[str, int]:
        snap = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        snap["idle"] = idle_ticks()
        return snap

    def measure_call(self, run: Callable[[], Stats], seconds: float = 1.0) -> Stats:
        groups = self._groups()
        before = self._snapshot(groups)
        sample = threading.Timer(
            min(1.0, seconds / 2), lambda: self.spread.append(connections_per_worker(self.port, groups["server"]))
        )
        if self.server:
            sample.start()
        try:
            stats = run()
        finally:
            sample.cancel()
        after = self._snapshot(groups)
        for name, value in after.items():
            self.ticks[name] = self.ticks.get(name, 0) + value - before[name]
        self.requests += stats.count
        return stats

    def measure(self, make: object, conns: int, seconds: float, max_requests: int = 10**9) -> Stats:
        return self.measure_call(lambda: load(self.port, make, conns, seconds, max_requests), seconds)

    def report(self) -> str:
        tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
        per_request = " ".join(
            f"{name}={value * tick_us / max(1, self.requests):.0f}us" for name, value in self.ticks.items()
        )
        spread = f"; connections per worker: {self.spread}" if self.server else ""
        return f"cpu per request: {per_request}{spread}"


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


def _serve(cmd: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen[bytes]:
    """Start `cmd` and wait until `probe` answers 200 on `port`."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{' '.join(cmd)} did not start")


def start_gunicorn(
    target: str, port: int, env: dict[str, str], worker_class: str, probe: str
) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).parent / "gunicorn")
    cmd = [exe, *contract.API_COMMAND[1:-1], "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}", target]
    return _serve(cmd, env, port, probe)


def start_granian(target: str, port: int, env: dict[str, str], probe: str) -> subprocess.Popen[bytes]:
    """The API under granian (Rust HTTP, WSGI interface), same workers and threads as gunicorn's."""
    workers, threads = env[contract.WEB_CONCURRENCY], env[contract.GUNICORN_THREADS]
    cmd = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", workers, "--blocking-threads", threads]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", target]
    return _serve(cmd, env, port, probe)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    meter: CpuMeter


def order_floor(pool: ConnectionPool[Any], product_ids: list[int], conns: int, seconds: float) -> Stats:
    """The orders' floor: `PLACE_ORDER` with the API's arguments, straight from a pool, `conns` threads."""
    stats, lock = Stats(), threading.Lock()
    stop_at = time.perf_counter() + seconds

    def run(seed: int) -> None:
        rng, latencies = random.Random(seed), []
        while time.perf_counter() < stop_at:
            items = [{"product_id": rng.choice(product_ids), "quantity": 1}]
            digest = hashlib.sha256(canonical_json({"email": "bench@example.com", "items": items}).encode())
            params = (
                *("checkout", str(uuid.uuid4()), digest.hexdigest(), contract.IDEMPOTENCY_KEY_TTL_SECONDS),
                *(uuid.uuid4(), uuid.uuid4(), "bench@example.com", [items[0]["product_id"]], [1]),
                *(uuid.uuid4().hex, None),
            )
            t0 = time.perf_counter()
            with pool.connection() as conn:
                conn.execute(PLACE_ORDER, params).fetchone()
            latencies.append(time.perf_counter() - t0)
        with lock:
            stats.latencies += latencies

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.elapsed = time.perf_counter() - start
    stats.statuses[200] = stats.count
    return stats


def _line(label: str, rounds: list[Stats]) -> str:
    rps = statistics.median(s.rps for s in rounds)
    p50 = statistics.median(s.p(0.5) for s in rounds)
    p99 = statistics.median(s.p(0.99) for s in rounds)
    statuses: dict[int, int] = {}
    for s in rounds:
        for k, v in s.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    return f"{label:34s}: {rps:8.0f} req/s  p50={p50:.2f} ms  p99={p99:.2f} ms  statuses={statuses}"


def _ratios(ours: list[Stats], base: list[Stats]) -> tuple[float, float]:
    """Medians over rounds of (throughput ratio, p99 ratio), each taken within its round."""
    return (
        statistics.median(a.rps / b.rps for a, b in zip(ours, base, strict=True)),
        statistics.median(a.p(0.99) / b.p(0.99) for a, b in zip(ours, base, strict=True)),
    )


def main() -> None:
    t_start = time.monotonic()
    db_name = f"bench_api_{uuid.uuid4().hex[:10]}"
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    r = redis.Redis()
    servers: list[Server] = []
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    main_class = os.environ.get("BENCH_WORKER_CLASS", gunicorn_conf.worker_class)
    classes = [c for c in os.environ.get("BENCH_WORKER_CLASSES", "gthread,gevent").split(",") if c]
    order_servers = [s for s in os.environ.get("BENCH_ORDER_SERVERS", "").split(",") if s]
    if "granian" in order_servers and importlib.util.find_spec("granian") is None:
        print("BENCH_ORDER_SERVERS: granian is not installed here (`uv pip install granian`); skipped")
        order_servers.remove("granian")
    unknown = sorted(set(order_servers) - {"granian"})
    if unknown:
        sys.exit(f"BENCH_ORDER_SERVERS: unknown server(s) {', '.join(unknown)}; allowed: granian")
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{db_name}"')
    floor_pool: ConnectionPool[Any] | None = None
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
        live, product = contract.HEALTH_LIVE_PATH, f"/api/products/{first_id}"

        def serve(name: str, target: str, worker_class: str, probe: str) -> Server:
            port = free_port()
            proc = start_gunicorn(target, port, env, worker_class, probe)
            server = Server(name, proc, port, CpuMeter(proc, port))
            servers.append(server)
            return server

        api = {c: serve(f"api {c}", "app.wsgi:application", c, live) for c in dict.fromkeys([main_class, *classes])}
        bare = {c: serve(f"bare {c}", "app.http.factory:bare_app()", c, "/bare") for c in api}
        peer = serve(f"peer {main_class}", "bench.peer_app:create_app()", main_class, product)

        # Phase 1: cached product vs bare vs peer, interleaved rounds.
        hot = [first_id + i for i in range(100)]
        hot_cycle = itertools.cycle(hot)
        bare_req = get("/bare")

        def hot_req() -> bytes:
            return get(f"/api/products/{next(hot_cycle)}")

        for server in (*api.values(), peer):
            load(server.port, hot_req, GET_CONNS, 1.0)  # fills both cache tiers of every worker
        for server in bare.values():
            load(server.port, lambda: bare_req, GET_CONNS, 1.0)
        got: dict[str, list[Stats]] = {s.name: [] for s in servers}
        for _ in range(rounds):
            order = [(bare[main_class], bare_req), (api[main_class], None), (peer, None)]
            order += [
                (s, None if s in api.values() else bare_req)
                for c in classes
                if c != main_class
                for s in (bare[c], api[c])
            ]
            for server, fixed in order:
                make = hot_req if fixed is None else (lambda b=fixed: b)
                got[server.name].append(server.meter.measure(make, GET_CONNS, ROUND_SECONDS))
        cached, base, peers = got[api[main_class].name], got[bare[main_class].name], got[peer.name]
        get_ratio, p99_ratio = _ratios(cached, base)
        peer_ratio = statistics.median(a.rps / b.rps for a, b in zip(cached, peers, strict=True))
        print(f"GET phase: medians of {rounds} interleaved rounds of {ROUND_SECONDS:.0f} s, {GET_CONNS} connections")
        print(_line(f"bare   GET /bare ({main_class})", base))
        print(_line(f"cached GET /api/products/id ({main_class})", cached) + f" hits={sum(s.hits for s in cached)}")
        print(_line(f"peer   GET /api/products/id ({main_class})", peers))
        for server in (bare[main_class], api[main_class], peer):
            print(f"  {server.name}:", server.meter.report())
        for c in classes:
            ratio, p99 = _ratios(got[api[c].name], got[bare[c].name])
            rps = statistics.median(s.rps for s in got[api[c].name])
            print(f"worker class {c:8s}: get_ratio={ratio:.2f} p99_ratio={p99:.2f} cached {rps:.0f} req/s")

        # Phase 2: Zipf mix on a cold cache: Redis's product entries gone, every near cache told so.
        for key in r.scan_iter(match=f"{prefix}product:*", count=1000):
            r.delete(key)
        channel = NearCache(Cache(Settings(redis_key_prefix=prefix))).channel
        all_ids = [first_id + i for i in range(PRODUCTS)]
        for i in range(0, PRODUCTS, 1000):
            r.publish(channel, NearCache.message(all_ids[i : i + 1000]))
        weights = [1.0 / (k**ZIPF_S) for k in range(1, PRODUCTS + 1)]
        cum = list(itertools.accumulate(weights))
        rng = random.Random(7)
        shuffled = list(range(PRODUCTS))
        rng.shuffle(shuffled)  # popularity is not correlated with id

        def zipf_req() -> bytes:
            rank = bisect.bisect_left(cum, rng.random() * cum[-1])
            return get(f"/api/products/{first_id + shuffled[rank]}")

        port = api[main_class].port
        warm = load(port, zipf_req, GET_CONNS, 60, ZIPF_WARMUP)
        measured = load(port, zipf_req, GET_CONNS, 30, ZIPF_MEASURED)
        hit_ratio = measured.hits / max(1, measured.hits + measured.misses)
        near_share = measured.near / max(1, measured.hits)
        cold = (warm.hits + measured.hits) / max(1, warm.hits + warm.misses + measured.hits + measured.misses)
        print(
            f"zipf s={ZIPF_S} over {PRODUCTS} products: warm-up {warm.count} req (hit ratio"
            f" {warm.hits / max(1, warm.count):.3f}), measured {measured.count} req: hit ratio {hit_ratio:.4f}"
            f" (near cache's share of hits {near_share:.3f}), db reads/request"
            f" {measured.misses / max(1, measured.count):.4f}; whole run from cold {cold:.4f}; {measured.rps:.0f} req/s"
        )

        # Phase 3: orders vs the floor, interleaved rounds.
        def order_req() -> bytes:
            body = json.dumps(
                {"email": "bench@example.com", "items": [{"product_id": rng.choice(all_ids), "quantity": 1}]}
            ).encode()
            return (
                f"POST /api/checkout/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body

        conninfo = Settings(db_name=db_name).conninfo("127.0.0.1")
        floor_pool = ConnectionPool(
            kwargs={**conninfo, "autocommit": True, "row_factory": dict_row},
            min_size=ORDER_CONNS,
            max_size=ORDER_CONNS,
            open=True,
        )
        floor_pool.wait()
        others: list[tuple[Server, list[Stats]]] = []
        for name in order_servers:
            other_port = free_port()
            proc = start_granian("app.wsgi:application", other_port, env, live)
            servers.append(Server(name, proc, other_port, CpuMeter(proc, other_port)))
            others.append((servers[-1], []))
            load(other_port, order_req, ORDER_CONNS, 1.0)  # warm-up
        load(port, order_req, ORDER_CONNS, 1.0)  # warm-up
        order_floor(floor_pool, all_ids, ORDER_CONNS, 1.0)
        orders, floors = [], []
        floor_meter, order_meter = CpuMeter(None, 0), CpuMeter(api[main_class].proc, port)
        for _ in range(rounds):
            floors.append(
                floor_meter.measure_call(lambda: order_floor(floor_pool, all_ids, ORDER_CONNS, ROUND_SECONDS))
            )
            orders.append(order_meter.measure(order_req, ORDER_CONNS, ROUND_SECONDS))
            for other, other_rounds in others:
                other_rounds.append(other.meter.measure(order_req, ORDER_CONNS, ROUND_SECONDS))
        order_ratio, order_p99_ratio = _ratios(orders, floors)
        for other, other_rounds in others:
            ratio, p99 = _ratios(other_rounds, floors)
            print(f"server {other.name}: order_ratio={ratio:.2f} order_p99_ratio={p99:.2f}; {other.meter.report()}")
        print(_line(f"POST /api/checkout/orders @{ORDER_CONNS}", orders))
        print(_line(f"floor: place_order from a pool @{ORDER_CONNS}", floors))
        print("  orders:", order_meter.report())
        print("  floor:", floor_meter.report())
        print(
            "targets: get_ratio>=0.6 (goal 0.75) p99_ratio<=2 (goal 1.5) peer_ratio>=2 order_ratio>=0.5"
            f" order_p99_ratio<=3 hit_ratio>=0.95; took {time.monotonic() - t_start:.0f} s"
        )
        print(
            f"api: get_ratio={get_ratio:.2f} p99_ratio={p99_ratio:.2f} peer_ratio={peer_ratio:.2f}"
            f" order_ratio={order_ratio:.2f} order_p99_ratio={order_p99_ratio:.2f} hit_ratio={hit_ratio:.3f}"
        )
    finally:
        if floor_pool is not None:
            floor_pool.close()
        for server in servers:
            server.proc.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.proc.wait(30)
            except subprocess.TimeoutExpired:
                server.proc.kill()
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i : i + 1000])
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
