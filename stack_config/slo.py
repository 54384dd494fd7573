"""The SRE workbook's multi-window, multi-burn-rate alerting, as arithmetic on an objective.

Each pair consumes a share of the window's error budget within its long window: 2 % in an hour pages,
10 % in three days opens a ticket. The burn rate follows from the SLO window (14.4 for 2 % of 30 days in
one hour); the alarm threshold on the bad-event ratio is that burn rate times the budget (1 - objective).
The short window (a twelfth of the long one) must breach too, so a burst that has stopped stops alerting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HOUR = 3600
Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnRateWindow:
    severity: Severity
    budget_share: float  # of the whole window's error budget, spent within `long_seconds`
    long_seconds: int
    short_seconds: int

    @property
    def label(self) -> str:
        return f"{self.severity}-{_duration(self.long_seconds)}"

    def burn_rate(self, window_days: int) -> float:
        """How many times faster than "exactly on budget" the budget burns when this pair fires."""
        # Rounded: 0.02 x 720 h / 1 h is 14.4, not 14.399999999999999, in the alarm and on the dashboard.
        return round(self.budget_share * window_days * 24 * HOUR / self.long_seconds, 9)

    def threshold(self, objective_percent: float, window_days: int) -> float:
        """The bad-event ratio above which both windows alarm (99.9 % over 30 days, 1 h: 14.4 x 0.001)."""
        return round(self.burn_rate(window_days) * error_budget(objective_percent), 12)


# The workbook's table (Alerting on SLOs, "Multiwindow, Multi-Burn-Rate Alerts"), for a 30-day window:
# 14.4x over 1 h / 5 min and 6x over 6 h / 30 min page; 3x over 1 d / 2 h and 1x over 3 d / 6 h open a ticket.
BURN_RATE_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("page", 0.02, HOUR, 5 * 60),
    BurnRateWindow("page", 0.05, 6 * HOUR, 30 * 60),
    BurnRateWindow("ticket", 0.10, 24 * HOUR, 2 * HOUR),
    BurnRateWindow("ticket", 0.10, 72 * HOUR, 6 * HOUR),
)


def error_budget(objective_percent: float) -> float:
    """The share of events allowed to be bad: 0.001 for 99.9 %."""
    return round(1 - objective_percent / 100, 12)


def _duration(seconds: int) -> str:
    return f"{seconds // (24 * HOUR)}d" if seconds % (24 * HOUR) == 0 else f"{seconds // HOUR}h"
