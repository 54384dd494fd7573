"""`platformctl local`: the bundled app on this machine with one command.

`up` starts moto's server (SQS, S3, Secrets Manager), creates the stack's queue with its DLQ and redrive policy,
applies the migrations to the local PostgreSQL, seeds a catalog, and starts the API (gunicorn), the outbox
relay, the worker and a notification stub - each a child process configured only through the settings the
Fargate tasks use (`app.contract`); emulator endpoints and credentials are settings too. Ctrl-C or SIGTERM
stops them all (SIGTERM, then SIGKILL after the stop timeout) and nothing is left running. `status` shows what
runs and the queue depths, from the state file `up` writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from app import contract
from platformctl.stub_notifier import CONTROL_PATH

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = Path(tempfile.gettempdir()) / "platformctl-local"
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # moto's fixed ones
SEED_PRODUCTS = 50
START_ORDER = ("notifier", "api", "relay", "worker")


class LocalError(Exception):
    """The local runtime cannot start: a one-line reason."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalConfig:
    api_port: int = contract.API_PORT
    moto_port: int = 5055
    notifier_port: int = 8025
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_user: str = "postgres"
    db_name: str = "app"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "local:"
    queue_name: str = "orders"
    visibility_timeout: int = 120
    max_receive_count: int = contract.MAX_RECEIVE_COUNT
    state_dir: Path = STATE_DIR
    seed_products: int = SEED_PRODUCTS
    notifier_delay_ms: int = 0
    # Any other setting (by its contract name), e.g. WORKER_POLL_SECONDS for tests.
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, **config: Any) -> LocalConfig:
        """A runtime that can run beside another (a developer's `local up`, a test's): free ports throughout."""
        return cls(api_port=free_port(), moto_port=free_port(), notifier_port=free_port(), **config)


@dataclass
class State:
    pids: dict[str, int]
    urls: dict[str, str]
    env: dict[str, str]
    logs: str


class LocalRuntime:
    def __init__(self, config: LocalConfig, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self.echo = echo
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.queue_url = ""
        self.dlq_url = ""
        self.topic_arn = ""
        self.log_dir = config.state_dir / "logs"
        # Only the runtime that wrote the state file removes it: a refused second `up` must leave the running one's.
        self._wrote_state = False

    # --- settings ------------------------------------------------------------------------------------------

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.config.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.api_port}"

    @property
    def notifier_url(self) -> str:
        return f"http://127.0.0.1:{self.config.notifier_port}/notify"

    def settings_env(self) -> dict[str, str]:
        """The app's environment, under the same names the ECS task definitions use."""
        c = self.config
        env = {
            contract.DB_WRITER_HOST: c.db_host,
            contract.DB_PORT: str(c.db_port),
            contract.DB_NAME: c.db_name,
            contract.DB_USER: c.db_user,
            # Local PostgreSQL takes a password (or trusts loopback); the Fargate tasks sign in with IAM tokens.
            contract.DB_LOGIN: contract.DB_LOGIN_PASSWORD,
            contract.DB_SSLMODE: "prefer",
            contract.REDIS_URL: c.redis_url,
            contract.REDIS_KEY_PREFIX: c.redis_key_prefix,
            contract.QUEUE_URL: self.queue_url,
            contract.DEAD_LETTER_QUEUE_URL: self.dlq_url,
            contract.EVENTS_TOPIC_ARN: self.topic_arn,
            contract.AWS_REGION: "us-east-1",
            contract.AWS_ENDPOINT_URL: self.moto_url,
            contract.NOTIFICATION_URL: self.notifier_url,
            contract.NOTIFICATION_API_KEY: "local-notification-key",
            contract.ADMIN_TOKEN: "local-admin-token",
            contract.PORT: str(c.api_port),
            contract.WEB_CONCURRENCY: "2",
            contract.LOG_LEVEL: "INFO",
            contract.OTEL_EXPORTER_OTLP_ENDPOINT: "",
            **MOTO_CREDENTIALS,
            **c.extra,
        }
        unknown = set(c.extra) - contract.SETTING_NAMES
        if unknown:
            raise LocalError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return env

    def _child_env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in contract.SETTING_NAMES}
        env.update(self.settings_env())
        env[contract.OTEL_SERVICE_NAME] = f"local-{service}"
        env["PYTHONPATH"] = str(REPO)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # --- steps ---------------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv, env=self._child_env(name), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )
        self.procs[name] = proc
        return proc

    def start_moto(self) -> None:
        if port_open(self.config.moto_port):
            raise LocalError(f"port {self.config.moto_port} is in use (is `platformctl local up` already running?)")
        self._spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.config.moto_port)])
        self._wait(lambda: port_open(self.config.moto_port), "moto's server", 20)

    def _sqs(self, service: Literal["sqs", "sns"] = "sqs") -> Any:
        import boto3  # noqa: PLC0415 - only for the local runtime

        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def create_queues(self) -> None:
        c = self.config
        sqs = self._sqs()
        self.dlq_url = sqs.create_queue(
            QueueName=f"{c.queue_name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(
            QueueName=c.queue_name,
            Attributes={
                "VisibilityTimeout": str(c.visibility_timeout),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(c.max_receive_count)}),
            },
        )["QueueUrl"]
        # The events topic fans out to the queue as the stack's does (components/messaging.py): raw delivery, and
        # only the event types the worker handles.
        sns = self._sqs("sns")
        self.topic_arn = sns.create_topic(Name=f"{c.queue_name}-events")["TopicArn"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn["QueueArn"],
            Attributes={
                "RawMessageDelivery": "true",
                "FilterPolicy": contract.ORDER_EVENTS_FILTER_POLICY,
                "FilterPolicyScope": "MessageAttributes",
            },
        )

    def migrate_and_seed(self) -> int:
        import psycopg  # noqa: PLC0415

        from app.data import migrate  # noqa: PLC0415
        from app.settings import Settings  # noqa: PLC0415

        c = self.config
        admin = {"host": c.db_host, "port": c.db_port, "user": c.db_user, "dbname": "postgres", "autocommit": True}
        try:
            with psycopg.connect(**admin, connect_timeout=3) as conn:  # type: ignore[arg-type]
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (c.db_name,)).fetchone() is None:
                    conn.execute(f'CREATE DATABASE "{c.db_name}"')
        except psycopg.OperationalError as exc:
            raise LocalError(f"PostgreSQL at {c.db_host}:{c.db_port} is not reachable: {exc}") from None
        target: dict[str, Any] = {"db_writer_host": c.db_host, "db_port": c.db_port, "db_user": c.db_user}
        migrate(Settings(**target, db_name=c.db_name))
        with psycopg.connect(**{**admin, "dbname": c.db_name}) as conn:  # type: ignore[arg-type]
            count = conn.execute("SELECT count(*) FROM products").fetchone()
            if count is not None and count[0] == 0 and c.seed_products:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO products (sku, name, category, price_cents, stock) VALUES (%s, %s, %s, %s, %s)"
                        " ON CONFLICT (sku) DO NOTHING",
                        [
                            (f"SKU-{n:05d}", f"Product {n}", ("books", "games", "tools")[n % 3], 500 + n * 10, 100)
                            for n in range(1, c.seed_products + 1)
                        ],
                    )
            final = conn.execute("SELECT count(*) FROM products").fetchone()
        return int(final[0]) if final else 0

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        py = sys.executable
        argv = {
            "notifier": [
                py,
                "-m",
                "platformctl.stub_notifier",
                "--port",
                str(self.config.notifier_port),
                "--delay-ms",
                str(self.config.notifier_delay_ms),
            ],
            "api": [
                py,
                "-m",
                *contract.API_COMMAND[:-1],
                "--bind",
                f"127.0.0.1:{self.config.api_port}",
                contract.API_COMMAND[-1],
            ],
            "relay": [py, "-m", "app.cli", *contract.RELAY_COMMAND[1:]],
            "worker": [py, "-m", "app.cli", *contract.WORKER_COMMAND[1:]],
        }[name]
        return self._spawn(name, argv)

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise LocalError(f"{dead[0]} exited early (see {self.log_dir / (dead[0] + '.log')})")
            time.sleep(0.1)
        raise LocalError(f"{what} did not become ready within {timeout:.0f} s")

    def api_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.api_url + contract.HEALTH_READY_PATH, timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    def up(self) -> None:
        """Start everything; on any failure stop what was started and raise LocalError."""
        running = read_state(self.config.state_dir)
        if running is not None and any(pid_alive(pid) for pid in running.pids.values()):
            raise LocalError(f"already running (API at {running.urls.get('api', '?')}); see `platformctl local status`")
        try:
            for port, what in ((self.config.api_port, "API"), (self.config.notifier_port, "notification stub")):
                if port_open(port):
                    raise LocalError(f"port {port} for the {what} is in use")
            self.start_moto()
            self.create_queues()
            products = self.migrate_and_seed()
            self.echo(f"database {self.config.db_name}: migrated, {products} products")
            for name in START_ORDER:
                self.start_service(name)
            self._wait(lambda: port_open(self.config.notifier_port), "the notification stub", 15)
            self._wait(self.api_ready, "the API", 30)
            self.write_state()
        except BaseException:
            self.stop()
            raise

    def urls(self) -> dict[str, str]:
        return {
            "api": self.api_url,
            "openapi": self.api_url + contract.OPENAPI_PATH,
            "moto": self.moto_url,
            "queue": self.queue_url,
            "dead_letter_queue": self.dlq_url,
            "events_topic": self.topic_arn,
            "notifications": self.notifier_url,
            # POST {"stall_seconds": N} makes the stub a slow provider (the worker's bulkhead sheds the excess).
            "notifications_control": f"http://127.0.0.1:{self.config.notifier_port}{CONTROL_PATH}",
        }

    def write_state(self) -> None:
        state = State(
            pids={n: p.pid for n, p in self.procs.items()},
            urls=self.urls(),
            env=self.settings_env(),
            logs=str(self.log_dir),
        )
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        (self.config.state_dir / "state.json").write_text(json.dumps(asdict(state), indent=2))
        self._wrote_state = True

    def kill(self, name: str) -> None:
        """SIGKILL one service (fault tests)."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def terminate(self, name: str, timeout: float = contract.STOP_TIMEOUT_SECONDS) -> float:
        """SIGTERM one service, SIGKILL it after `timeout`; returns how long it took to exit."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return 0.0
        start = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        return time.monotonic() - start

    def stop(self) -> None:
        """Stop every child (producers first, moto last) in parallel per tier; nothing is left running."""
        tiers = [["api"], ["relay", "worker", "notifier"], ["moto"]]
        for tier in tiers:
            threads = [threading.Thread(target=self.terminate, args=(n,)) for n in tier if n in self.procs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        if self._wrote_state:
            with contextlib.suppress(FileNotFoundError):
                (self.config.state_dir / "state.json").unlink()
            self._wrote_state = False

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]


def run_until_signalled(runtime: LocalRuntime) -> int:
    """`local up`: start, print the URLs, wait for Ctrl-C/SIGTERM (or a child's death), stop everything."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runtime.up()
        for name, url in runtime.urls().items():
            runtime.echo(f"{name:>18}: {url}")
        runtime.echo(f"{'logs':>18}: {runtime.log_dir}")
        runtime.echo("running; Ctrl-C stops everything")
        code = 0
        while not stop.wait(1.0):
            dead = runtime.dead()
            if dead:
                runtime.echo(f"{dead[0]} exited unexpectedly (see {runtime.log_dir / (dead[0] + '.log')}); stopping")
                code = 1
                break
        return code
    finally:
        runtime.echo("stopping...")
        runtime.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.echo("stopped")


def read_state(state_dir: Path = STATE_DIR) -> State | None:
    try:
        raw = json.loads((state_dir / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return State(**raw)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def queue_depths(env: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Visible, in-flight and delayed messages of the queue and its DLQ."""
    import boto3  # noqa: PLC0415

    sqs = boto3.client(
        "sqs",
        endpoint_url=env[contract.AWS_ENDPOINT_URL],
        region_name=env.get(contract.AWS_REGION, "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )
    depths: dict[str, dict[str, int]] = {}
    for label, key in (("queue", contract.QUEUE_URL), ("dead_letter_queue", contract.DEAD_LETTER_QUEUE_URL)):
        attrs = sqs.get_queue_attributes(
            QueueUrl=env[key],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        depths[label] = {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
        }
    return depths
