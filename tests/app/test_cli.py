"""The long-running commands' exit: within the stop timeout, whatever a thread is still waiting on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# A process whose drain is over while one pool thread still waits on a call that takes `seconds`.
SCRIPT = """
import sys, threading, time
from app.cli import _leave_lingering_work
from app.observability import configure_logging
configure_logging("INFO")
threading.Thread(target=time.sleep, args=(float(sys.argv[1]),), name="message_0").start()
_leave_lingering_work("worker", 0.3)
print("exited normally", flush=True)
"""


@pytest.mark.parametrize(("seconds", "left"), [(30.0, True), (0.05, False)])
def test_a_thread_outlasting_the_drain_is_left_and_the_process_exits_in_time(seconds: float, left: bool) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(seconds)], check=False, cwd=REPO, capture_output=True, text=True, timeout=20
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    warned = [e for e in events if e.get("event") == "exiting_with_work_in_flight"]
    if left:
        assert took < 10 and warned and warned[0]["threads"] == ["message_0"] and warned[0]["process"] == "worker"
        assert "exited normally" not in done.stdout
    else:
        assert not warned and "exited normally" in done.stdout
