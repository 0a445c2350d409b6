"""One pump-year of a 10-step flexible program: the event-driven firmware against a fixed-tick
(1 s) loop of the same program, measured in the same run."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.therapy import FlexStep, flex, to_pump_s
from itb.units import UL_PER_ML

START = datetime(2027, 1, 4, 8)
TEN_STEPS = flex([FlexStep(i * 144, 20.0 + 3 * (i % 4)) for i in range(10)])


def event_driven_year() -> float:
    fw = Firmware.implant(
        pump_model("peristaltic-40"),
        START,
        serial="B",
        concentration_ug_per_ml=2000.0,
        volume_ml=40.0,
        program=TEN_STEPS,
    )
    t = START
    for _ in range(12):  # monthly refills keep it delivering all year
        t += timedelta(days=365.25 / 12)
        fw.refill(t, 40.0, 2000.0)
    return fw.delivered_ul


def fixed_tick(seconds: int) -> float:
    """The naive loop: every second, look up the rate and add rate × 1 s (quanta too)."""
    profile = TEN_STEPS.profile
    t = to_pump_s(START)
    acc_ul = 0.0
    delivered_ul = 0.0
    ul_per_ug = UL_PER_ML / 2000.0  # at 2000 µg/mL
    for _ in range(seconds):
        acc_ul += profile.rate_at(t) * ul_per_ug
        if acc_ul >= 0.25:
            acc_ul -= 0.25
            delivered_ul += 0.25
        t += 1.0
    return delivered_ul


def main() -> None:
    started = time.perf_counter()
    runs = 20
    for _ in range(runs):
        event_driven_year()
    event_s = (time.perf_counter() - started) / runs
    sample_s = 2_000_000  # about 23 days of 1 s ticks, scaled to a year
    started = time.perf_counter()
    fixed_tick(sample_s)
    tick_s = (time.perf_counter() - started) * (365.25 * 86400 / sample_s)
    print(
        f"one pump-year, 10-step flex program, monthly refills: {event_s * 1e3:.2f} ms event-driven"
    )
    print(
        f"the same year with a 1 s fixed tick ({sample_s:,} ticks measured, scaled): {tick_s:.1f} s"
    )
    print(f"ratio (fixed tick / event-driven): {tick_s / event_s:,.0f}x")
