"""The notification stub's stall control: told to stall, it holds notifications; told 0, it lets them go."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from platformctl.stub_notifier import StubNotifier


@pytest.fixture
def stub() -> Iterator[StubNotifier]:
    notifier = StubNotifier().start()
    yield notifier
    notifier.stop()


def notify(stub: StubNotifier, key: str) -> float:
    started = time.perf_counter()
    assert httpx.post(stub.url, json={}, headers={"Idempotency-Key": key}, timeout=30).status_code == 200
    return time.perf_counter() - started


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_stall_holds_notifications_until_it_ends(stub: StubNotifier) -> None:
    assert notify(stub, "a") < 1
    resp = httpx.post(stub.control_url, json={"stall_seconds": 20})
    assert resp.json() == {"stall_seconds": 20, "stalled": 0}
    with ThreadPoolExecutor(3) as pool:
        held = [pool.submit(notify, stub, f"held-{i}") for i in range(3)]
        wait_for(lambda: httpx.get(stub.control_url).json()["stalled"] == 3)
        assert not any(f.done() for f in held)
        assert httpx.post(stub.control_url, json={"stall_seconds": 0}).json()["stall_seconds"] == 0
        assert all(f.result(5) < 10 for f in held)  # released at once, not after 20 s
    assert httpx.get(stub.url.replace("/notify", "/notifications")).json() == {"received": 4, "unique": 4}
    assert notify(stub, "b") < 1


def test_a_stall_ends_by_itself_after_its_seconds() -> None:
    stub = StubNotifier(stall=0.3).start()
    try:
        assert 0.25 < notify(stub, "x") < 2
    finally:
        stub.stop()


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"stall_seconds": -1}', b'{"stall_seconds": "x"}', b"nope"])
def test_a_bad_control_request_is_refused(stub: StubNotifier, body: bytes) -> None:
    resp = httpx.post(stub.control_url, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert httpx.get(stub.control_url).json()["stall_seconds"] == 0
