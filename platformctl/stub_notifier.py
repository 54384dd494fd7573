"""A notification provider stub for the local runtime and tests: accepts every POST at once.

It records each notification by its `Idempotency-Key` (a repeated key is counted once, as a real provider
that honours the header would) and answers `GET /notifications` with `{"received": N, "unique": M}`.
Run it with `python -m platformctl.stub_notifier --port 8025`.

It can be told to stall, to show what a slow provider does to the worker: `POST /control` with
`{"stall_seconds": 5}` holds every notification that arrives from then on that long before answering (`0` ends
the stall and lets the held ones go at once); `GET /control` says what it is doing (`stalled`: notifications held
right now). `--stall-seconds` starts it stalled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTROL_PATH = "/control"
MAX_STALL_SECONDS = 3600


class StubNotifier:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0, stall: float = 0.0) -> None:
        self.delay = delay
        self.received = 0
        self.keys: set[str] = set()
        self.lock = threading.Lock()
        self.stall_seconds = 0.0
        self.stalled = 0  # notifications the stall holds right now
        self._released = threading.Event()
        self.stall(stall)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The client may have given up waiting (a stall outlasting its timeout): nothing to answer then.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path == CONTROL_PATH:
                    self._control(body)
                    return
                stub.hold()
                if stub.delay:
                    time.sleep(stub.delay)
                with stub.lock:
                    stub.received += 1
                    stub.keys.add(self.headers.get("Idempotency-Key", ""))
                self._answer(200, {"accepted": True})

            def _control(self, body: bytes) -> None:
                try:
                    seconds = float(json.loads(body or b"{}")["stall_seconds"])
                    if not 0 <= seconds <= MAX_STALL_SECONDS:
                        raise ValueError(seconds)
                except (ValueError, KeyError, TypeError):
                    self._answer(400, {"error": f"want {{'stall_seconds': 0 to {MAX_STALL_SECONDS}}}"})
                    return
                stub.stall(seconds)
                self._answer(200, stub.control_state())

            def do_GET(self) -> None:
                if self.path == CONTROL_PATH:
                    self._answer(200, stub.control_state())
                    return
                with stub.lock:
                    self._answer(200, {"received": stub.received, "unique": len(stub.keys)})

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    def stall(self, seconds: float) -> None:
        """Hold each notification arriving from now on `seconds` before answering; 0 releases the held ones."""
        with self.lock:
            self.stall_seconds = seconds
            if not seconds:
                self._released.set()
                self._released = threading.Event()

    def hold(self) -> None:
        with self.lock:
            seconds, released = self.stall_seconds, self._released
            if not seconds:
                return
            self.stalled += 1
        try:
            released.wait(seconds)
        finally:
            with self.lock:
                self.stalled -= 1

    def control_state(self) -> dict[str, Any]:
        with self.lock:
            return {"stall_seconds": self.stall_seconds, "stalled": self.stalled}

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CONTROL_PATH}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def start(self) -> StubNotifier:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description="Notification provider stub")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--delay-ms", type=int, default=0, help="answer each POST after this many milliseconds")
    parser.add_argument(
        "--stall-seconds", type=float, default=0.0, help=f"start stalled (POST {CONTROL_PATH} changes it)"
    )
    args = parser.parse_args()
    stub = StubNotifier(port=args.port, delay=args.delay_ms / 1000, stall=args.stall_seconds).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(json.dumps({"event": "stub_notifier_started", "url": stub.url}), flush=True)
    done.wait()
    stub.stop()


if __name__ == "__main__":
    main()
