"""The tests' clock: the clinic's and the pumps' time, moved by the test."""

from __future__ import annotations

from datetime import datetime, timedelta

T0 = datetime(2026, 11, 25, 12, 0)


class ManualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)
