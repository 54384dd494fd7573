"""The API served by real gunicorn with the image's own configuration, for tests of what only a server does."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app import contract
from tests.app.conftest import ADMIN, free_port

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def served(database: str, prefix: str, app: str = contract.API_COMMAND[-1], **settings: str) -> Iterator[str]:
    """gunicorn running `contract.API_COMMAND` (config included; `app`: another WSGI app under the same command)
    on a free loopback port, `settings` as environment variables; yields its base URL."""
    env = {
        **os.environ,
        contract.DB_NAME: database,
        contract.DB_USER: contract.DB_APP_USER,
        contract.REDIS_KEY_PREFIX: prefix,
        contract.ADMIN_TOKEN: ADMIN,
        contract.WEB_CONCURRENCY: "1",
        contract.LOG_LEVEL: "ERROR",
        **settings,
    }
    with gunicorn_process(app, env) as (base, _):
        yield base


@contextmanager
def gunicorn_process(app: str, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """gunicorn as the image runs it (`contract.API_COMMAND`'s config) serving `app` on a free loopback port, once it
    answers its health path; yields its base URL and process, and stops it unless the test already has."""
    port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(os.sys.executable).parent)) or "gunicorn"  # type: ignore[attr-defined]
    cmd = [gunicorn, *contract.API_COMMAND[1:-1], "--bind", f"127.0.0.1:{port}", app]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + contract.HEALTH_LIVE_PATH, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(contract.GRACEFUL_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
