"""/proc readings the benchmark and the load measurement share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from platformctl import procstat


def test_cpu_ticks_grow_with_work_and_are_zero_once_gone() -> None:
    before = procstat.ticks(os.getpid())
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert procstat.ticks(os.getpid()) > before
    assert procstat.ticks(2**22 + 1) == 0  # above pid_max's default: no such process
    assert 0 < procstat.tick_seconds() <= 0.01


def test_children_are_found_by_parent() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in procstat.children(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_connections_per_worker_counts_established_sockets() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as _client:
            accepted, _ = server.accept()
            with accepted:
                # This process holds both ends; only the accepted one is a connection *to* the port.
                assert procstat.connections_per_worker(port, [os.getpid()]) == [1]
