"""Run the locust profile headless in its own process (locust patches the interpreter it runs in with gevent)
and read back the summary it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
REPO = LOCUSTFILE.parent.parent
CLASS_USERS = {"browse": "BrowseUser", "session": "SessionUser", "checkout": "CheckoutUser"}


class LoadRunError(Exception):
    """Locust did not run to the end (bad options, a crash, or over its time)."""


@dataclass(frozen=True)
class LoadRun:
    exit_code: int  # locust's: 0, or 1 when any request failed
    summary: dict[str, Any]
    output: str


def run_locust(
    host: str,
    *,
    stages: str | None = None,
    smoke: bool = False,
    classes: Sequence[str] = (),
    timeout: float = 900,
) -> LoadRun:
    """The profile against `host`: `--smoke`, or `stages` (locust's default ramp when None), optionally only the
    given traffic classes (`browse`, `session`, `checkout`)."""
    with tempfile.TemporaryDirectory(prefix="locust-") as scratch:
        summary_file = Path(scratch) / "summary.json"
        argv = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            host,
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--summary-file",
            str(summary_file),
            *(["--smoke"] if smoke else []),
            *(["--stages", stages] if stages else []),
            *(CLASS_USERS[name] for name in classes),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        try:
            proc = subprocess.run(  # noqa: S603 - our interpreter, our locustfile
                argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise LoadRunError(f"locust ran over {timeout:.0f} s") from None
        output = proc.stdout + proc.stderr
        if proc.returncode not in {0, 1} or not summary_file.exists():
            raise LoadRunError(f"locust exited {proc.returncode}: {output.strip()[-2000:]}")
        return LoadRun(proc.returncode, json.loads(summary_file.read_text()), output)


def figures(summary: dict[str, Any]) -> list[str]:
    """The run as lines: totals, then requests, failures, p50/p95 and rps per route."""
    lines = [
        f"requests={summary['requests']} failures={summary['failures']} rps={summary['rps']}"
        f" p50={summary['p50_ms']}ms p95={summary['p95_ms']}ms classes={summary['classes']}"
        f" expected={summary['expected']}"
    ]
    for route, r in summary["routes"].items():
        lines.append(
            f"  {route:<38} requests={r['requests']:>6} failures={r['failures']:>3}"
            f" p50={r['p50_ms']:>4}ms p95={r['p95_ms']:>4}ms rps={r['rps']}"
        )
    return lines
