"""The pump's clock: its running time plus the correction a clinician set.

The firmware's ``t_s`` is its running time (the crystal's count since :data:`PUMP_EPOCH`): it
only moves forward and every duration the pump keeps (the rolling 24 h, the bolus lockout, the
battery) is measured on it. The pump's *clock*, what it shows and what the schedule's time of
day follows, is ``t_s + clock_offset_s``. Setting the clock changes the offset only: no time
passes, no dose is given or skipped by the setting itself, and a flex step programmed for
08:00 then runs at 08:00 on the corrected clock.

A correction is bounded (:data:`MAX_CLOCK_CORRECTION_S`): drift is minutes a month; a setting
further off is a wrong date or zone typed, and the pump refuses it.
"""

from __future__ import annotations

import math
from datetime import datetime

from itb.pump.checks import CommandRejected
from itb.therapy import RateProfile, from_pump_s, to_pump_s
from itb.units import SECONDS_PER_HOUR

# A crystal drifts tens of ppm, about a minute a month [R]; a setting more than this away from
# the pump's clock is a wrong day, zone or summer hour typed, not drift: refused.
MAX_CLOCK_CORRECTION_S = 2 * SECONDS_PER_HOUR


def clock_correction_s(clock_s: float, new_time: datetime) -> float:
    """How far ``new_time`` moves the pump's clock (reading ``clock_s``), seconds; refused
    beyond :data:`MAX_CLOCK_CORRECTION_S` either way."""
    correction_s = to_pump_s(new_time) - clock_s
    if not math.isfinite(correction_s) or abs(correction_s) > MAX_CLOCK_CORRECTION_S:
        limit_min = MAX_CLOCK_CORRECTION_S / 60
        raise CommandRejected(
            "new_time",
            f"{new_time:%Y-%m-%d %H:%M} is {abs(correction_s) / 60:.0f} min from the pump's "
            f"clock ({from_pump_s(clock_s):%Y-%m-%d %H:%M}); a correction is at most "
            f"{limit_min:g} min either way (check the date and the patient's time zone)",
        )
    return correction_s


def shifted_profile(profile: RateProfile, offset_s: float) -> RateProfile:
    """``profile`` as the running time sees it when the clock reads running time +
    ``offset_s``: its rate at running time ``t`` is ``profile``'s at ``t + offset_s``."""
    if offset_s == 0.0:
        return profile
    phase_s = offset_s % profile.period_s
    pieces = list(profile.segments(phase_s, phase_s + profile.period_s))
    starts = [start - phase_s for start, _, _ in pieces]
    starts[0] = 0.0
    return RateProfile(starts, [rate for _, _, rate in pieces], profile.period_s)
