"""AWS's own limits, in one place so the schema and the rules quote the same numbers."""

from __future__ import annotations

# The values CloudWatch Logs accepts for retentionInDays (0, never expire, is left out on purpose).
CLOUDWATCH_LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# RDS Enhanced Monitoring intervals in seconds (0 turns it off).
ENHANCED_MONITORING_INTERVALS: tuple[int, ...] = (0, 1, 5, 10, 15, 30, 60)


def _steps(low: int, high: int, step: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1, step))


# Fargate task sizes: CPU units to the memory sizes (MiB) Fargate accepts with them.
FARGATE_MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1024, 4096, 1024),
    1024: _steps(2048, 8192, 1024),
    2048: _steps(4096, 16384, 1024),
    4096: _steps(8192, 30720, 1024),
    8192: _steps(16384, 61440, 4096),
    16384: _steps(32768, 122880, 8192),
}
