from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import contract
from tests.app.gunicorn_support import gunicorn_process

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_lets_in_flight_requests_finish_and_stops_accepting(database: str, prefix: str) -> None:
    env = {
        **os.environ,
        contract.DB_NAME: database,
        contract.REDIS_KEY_PREFIX: prefix,
        contract.WEB_CONCURRENCY: "1",
        contract.GUNICORN_THREADS: "8",
        contract.LOG_LEVEL: "WARNING",
    }
    with gunicorn_process("tests.app.slow_app:application", env) as (base, proc):
        results: list[Any] = []

        def call() -> None:
            try:
                results.append(httpx.get(base + "/slow?s=2", timeout=10).status_code)
            except httpx.HTTPError as exc:
                results.append(exc)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.7)  # all four are in flight
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):
            httpx.get(base + contract.HEALTH_LIVE_PATH, timeout=1)  # no longer accepting
        for t in threads:
            t.join()
        assert results == [200, 200, 200, 200]
        assert proc.wait(contract.GRACEFUL_TIMEOUT_SECONDS) == 0
