"""CPU time and sockets of local processes, read from Linux's /proc (the benchmark and the load profile's
per-route CPU measurement both ask where a phase's CPU went)."""

from __future__ import annotations

import os


def stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A process's command name and the fields of /proc/PID/stat after it; None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            head, _, rest = f.read().rpartition(")")
    except OSError:
        return None
    return head.partition("(")[2], rest.split()


def ticks(pid: int) -> int:
    """User + system CPU ticks of one process (0 once it has gone)."""
    fields = stat(pid)
    return int(fields[1][11]) + int(fields[1][12]) if fields else 0


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat(entry)):
            found.append((int(entry), int(fields[1][1]), fields[0]))
    return found


def children(parent: int) -> list[int]:
    """The pids whose parent is `parent` (a gunicorn master's workers)."""
    return [pid for pid, ppid, _ in processes() if ppid == parent]


def idle_ticks() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return int(fields[3]) + int(fields[4])  # idle + iowait


def tick_seconds() -> float:
    """Seconds per clock tick (the unit of `ticks`)."""
    return 1.0 / os.sysconf("SC_CLK_TCK")


def connections_per_worker(port: int, workers: list[int]) -> list[int]:
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
