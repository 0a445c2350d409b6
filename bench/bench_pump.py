"""One pump-year of a 10-step flexible program: the event-driven firmware against a fixed-tick
(1 s) loop of the same program, measured in the same run.

Two fixed-tick baselines: the naive Python loop (a rate look-up and a stroke check per second,
timed on a sample and scaled to the year) and the same year vectorised with NumPy the way a
competent engineer would write it (the week's per-second rates tabulated once, then a cumulative
sum and the stroke count at every tick, a week at a time, over the whole year). The honest
ratio is the one against NumPy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.therapy import FlexStep, flex, to_pump_s
from itb.units import SECONDS_PER_DAY, UL_PER_ML

START = datetime(2027, 1, 4, 8)
TEN_STEPS = flex([FlexStep(i * 144, 20.0 + 3 * (i % 4)) for i in range(10)])
CONCENTRATION_UG_PER_ML = 2000.0
QUANTUM_UL = 0.25
YEAR_S = round(365.25 * SECONDS_PER_DAY)
ROUNDS = 5  # interleaved rounds: the event-driven year (median of 20 runs), then NumPy once
EVENT_RUNS = 20
PYTHON_SAMPLE_S = 2_000_000  # about 23 days of 1 s ticks, scaled to a year


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
    """The naive loop: every second, look up the rate and add rate x 1 s (quanta too)."""
    profile = TEN_STEPS.profile
    t = to_pump_s(START)
    acc_ul = 0.0
    delivered_ul = 0.0
    ul_per_ug = UL_PER_ML / CONCENTRATION_UG_PER_ML
    for _ in range(seconds):
        acc_ul += profile.rate_at(t) * ul_per_ug
        if acc_ul >= QUANTUM_UL:
            acc_ul -= QUANTUM_UL
            delivered_ul += QUANTUM_UL
        t += 1.0
    return delivered_ul


def week_ul_per_tick() -> np.ndarray:
    """The volume of each 1 s tick over one period of the program, from the pump's start."""
    profile = TEN_STEPS.profile
    t0 = to_pump_s(START)
    period_s = round(profile.period_s)
    rates = np.empty(period_s)
    for start, end, rate in profile.segments(t0, t0 + period_s):
        rates[round(start - t0) : round(end - t0)] = rate
    result: np.ndarray = rates * (UL_PER_ML / CONCENTRATION_UG_PER_ML)
    return result


def fixed_tick_numpy(seconds: int) -> float:
    """The same ticks vectorised: the stroke count at every second, a period at a time."""
    per_tick = week_ul_per_tick()
    period_s = per_tick.size
    carried_ul = 0.0  # pumped but not yet a whole stroke, carried from one period to the next
    delivered_ul = 0.0
    done = 0
    while done < seconds:
        n = min(period_s, seconds - done)
        pumped_ul = carried_ul + np.cumsum(per_tick[:n])
        strokes = np.floor(pumped_ul / QUANTUM_UL)  # the strokes counted by each tick's end
        delivered_ul += float(strokes[-1]) * QUANTUM_UL
        carried_ul = float(pumped_ul[-1]) - float(strokes[-1]) * QUANTUM_UL
        done += n
    return delivered_ul


def main() -> None:
    event_times, numpy_times = [], []
    for _ in range(ROUNDS):  # interleaved, so that a busy machine slows both alike
        event_times.append(statistics.median(_timed(event_driven_year) for _ in range(EVENT_RUNS)))
        numpy_times.append(_timed(lambda: fixed_tick_numpy(YEAR_S)))
    event_s, numpy_s = statistics.median(event_times), statistics.median(numpy_times)
    python_s = _timed(lambda: fixed_tick(PYTHON_SAMPLE_S)) * (YEAR_S / PYTHON_SAMPLE_S)
    event_ml = event_driven_year() / UL_PER_ML
    numpy_ml = fixed_tick_numpy(YEAR_S) / UL_PER_ML
    print(
        f"one pump-year ({YEAR_S:,} s), 10-step flex program, {CONCENTRATION_UG_PER_ML:g} µg/mL, "
        f"{QUANTUM_UL:g} µL strokes; medians of {ROUNDS} interleaved rounds"
    )
    print(
        f"event-driven firmware (monthly refills):     {event_s * 1e3:8.2f} ms ({event_ml:.2f} mL)"
    )
    print(
        f"fixed 1 s tick, NumPy-vectorised (baseline):  {numpy_s * 1e3:8.2f} ms ({numpy_ml:.2f} mL)"
    )
    print(
        f"fixed 1 s tick, plain Python loop:           {python_s * 1e3:8.0f} ms "
        f"({PYTHON_SAMPLE_S:,} ticks measured, scaled to the year)"
    )
    print(f"ratio NumPy tick / event-driven: {numpy_s / event_s:,.0f}x")
    print(f"ratio Python tick / event-driven: {python_s / event_s:,.0f}x")


def _timed(work: Callable[[], float]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
