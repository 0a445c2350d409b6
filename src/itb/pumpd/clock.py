"""The pump process's clock: real time, or accelerated (``--speed N``), kept across restarts.

Pump time is ``pump_anchor + speed × (wall − wall_anchor)``. The anchor is stored in the state
directory when the process starts. On a restart the pump time is first computed from the *old*
anchor (the pump kept running, at the old speed, while the process was down: the down time is
delivered), then a new anchor is written with the new speed. A wall clock that went backwards
never takes the pump clock back: pump time is at least the time in the memory image.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

from itb.errors import InputError
from itb.pumpd.state import ClockAnchor, StateDir
from itb.therapy import from_pump_s

MAX_SPEED = 1_000_000.0


class ClockError(InputError):
    """A clock setting out of range (``field``: ``reason``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)

    def __reduce__(self) -> tuple[type[ClockError], tuple[str, str]]:
        return (ClockError, (self.field, self.reason))


def check_speed(speed: float) -> float:
    if not (math.isfinite(speed) and 0.0 < speed <= MAX_SPEED):
        raise ClockError("speed", f"{speed:g}; allowed more than 0 up to {MAX_SPEED:g}")
    return speed


class PumpClock:
    """Maps the wall clock to pump time; ``now()`` never goes backwards."""

    def __init__(self, anchor: ClockAnchor, wall: Callable[[], float] = time.time) -> None:
        self.anchor = anchor
        self._wall = wall
        self._last_s = anchor.pump_anchor_s

    @property
    def speed(self) -> float:
        return self.anchor.speed

    def now_s(self) -> float:
        self._last_s = max(self._last_s, self.anchor.pump_s_at(self._wall()))
        return self._last_s

    def now(self) -> datetime:
        return from_pump_s(self.now_s())


def start_clock(
    state: StateDir,
    image_t_s: float,
    speed: float,
    wall: Callable[[], float] = time.time,
) -> tuple[PumpClock, float]:
    """Resume the pump clock for a (re)started process. Returns the clock and the pump seconds
    that passed while the process was down (0 on the first start)."""
    check_speed(speed)
    wall_now = wall()
    previous = state.clock_anchor()
    # first start: the pump time begins at its implant time; later, where the old anchor says
    resumed_s = image_t_s if previous is None else max(image_t_s, previous.pump_s_at(wall_now))
    anchor = ClockAnchor(wall_now, resumed_s, speed)
    state.write_clock_anchor(anchor)
    return PumpClock(anchor, wall), resumed_s - image_t_s
