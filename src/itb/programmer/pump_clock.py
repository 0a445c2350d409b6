"""The pump's clock against the world's: daylight saving, drift, and the zone a time is shown in.

Theory of operation
-------------------
The pump keeps one fixed-offset clock with no daylight saving (:mod:`itb.therapy`): the
programmer sets it to the patient's *standard* time (the zone's offset without its summer
hour). Flex steps are programmed and run on that clock. On the night the patient's zone moves
to summer time nothing happens in the pump: a step at 08:00 on the pump runs at 09:00 by the
patient's wall clock until winter time returns. We choose this over a pump that follows the
change because a jump forward would skip an hour of the schedule (up to an hour's dose
missing: withdrawal risk) and a jump back would run an hour twice (an hour's dose extra), and
because the daily total, the rolling 24 h and every lockout stay exact. The programmer shows
the shift (:func:`step_times_on`) so that a clinician who wants the 08:00 dose at 08:00 by the
wall clock in summer programs the steps an hour earlier, knowingly.

Drift: a pump's crystal drifts ([R]: tens of ppm, about a minute a month). At an
interrogation the programmer compares the pump's clock with the patient's standard time now
(:func:`check_clock`); beyond :data:`MAX_CLOCK_DRIFT_S` it says so in words and the clock is
to be set, logged by the pump. The clinic may sit in another zone than the patient: a time
from the pump is shown in the zone of whoever reads it, to the minute, the zone named
(:func:`pump_time_in_zone`).

Pure: the zones (``tzinfo``, e.g. ``zoneinfo.ZoneInfo``) and the present instant are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from itb.errors import InputError
from itb.therapy import Program, format_clock

# A pump clock further than this from the patient's standard time is corrected: a flex step
# five minutes early or late is within how a clinician reads "08:00"; more is not. [R]
MAX_CLOCK_DRIFT_S = 5 * 60.0


def _aware_utc(when: datetime, field: str) -> datetime:
    if when.tzinfo is None:
        raise InputError(field, "an instant with its UTC offset (the programmer's own clock)")
    return when.astimezone(UTC)


def standard_offset(zone: tzinfo, at_utc: datetime) -> timedelta:
    """The zone's offset from UTC without its summer hour, at ``at_utc``."""
    local = _aware_utc(at_utc, "at_utc").astimezone(zone)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None
    return offset - (dst or timedelta(0))


def pump_clock_for(now_utc: datetime, patient_zone: tzinfo) -> datetime:
    """What the pump's clock should read at ``now_utc``: the patient's standard time (naive)."""
    now = _aware_utc(now_utc, "now_utc")
    return (now + standard_offset(patient_zone, now)).replace(tzinfo=None)


def pump_time_in_zone(pump_time: datetime, patient_zone: tzinfo, zone: tzinfo) -> datetime:
    """A time read from the pump (naive, the patient's standard time) as an aware time in
    ``zone`` (the patient's wall clock, or the clinic's)."""
    if pump_time.tzinfo is not None:
        raise InputError("pump_time", "the pump's clock has no UTC offset")
    # the pump's offset is the standard offset in force around that time
    guess_utc = pump_time.replace(tzinfo=UTC)
    utc = guess_utc - standard_offset(patient_zone, guess_utc)
    return utc.astimezone(zone)


def minute_words(when: datetime) -> str:
    """``2027-03-28 09:00 CEST``: to the minute, the zone named."""
    return f"{when:%Y-%m-%d %H:%M} {when.tzname() or when.strftime('%z')}"


@dataclass(frozen=True, slots=True)
class ClockCheck:
    pump_time: datetime  # as the pump reported it
    expected: datetime  # the patient's standard time at that instant
    drift_s: float  # pump minus expected: positive, the pump is ahead
    needs_setting: bool
    words: str

    @property
    def drift_min(self) -> float:
        return round(self.drift_s / 60.0, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "pump_time": self.pump_time.isoformat(timespec="seconds"),
            "expected": self.expected.isoformat(timespec="seconds"),
            "drift_min": self.drift_min,
            "needs_setting": self.needs_setting,
            "words": self.words,
        }

    def program_words(self, program: Program) -> str | None:
        """What the drift does to ``program``: None when the clock is right or the program
        is one rate all day (a continuous rate has no step to move)."""
        if not self.needs_setting or program.is_continuous:
            return None
        minutes = abs(self.drift_s) / 60.0
        late = "early" if self.drift_s > 0 else "late"
        return (
            f"the pump's clock is {minutes:.0f} min {'ahead' if self.drift_s > 0 else 'behind'}: "
            f"each step of this schedule will run {minutes:.0f} min {late} by the patient's "
            "clock; set the pump's clock first"
        )


def check_clock(pump_time: datetime, now_utc: datetime, patient_zone: tzinfo) -> ClockCheck:
    """The pump's clock against the patient's standard time at ``now_utc`` (the programmer's
    clock at the interrogation), in words; ``needs_setting`` beyond :data:`MAX_CLOCK_DRIFT_S`."""
    return check_clock_against(pump_time, pump_clock_for(now_utc, patient_zone))


def check_clock_against(pump_time: datetime, expected: datetime) -> ClockCheck:
    """The pump's clock against ``expected``, what it should read (both naive, the patient's
    standard time): the clinic, whose own clock is that time, asks this directly."""
    drift_s = (pump_time - expected).total_seconds()
    minutes = abs(drift_s) / 60.0
    side = "ahead of" if drift_s > 0 else "behind"
    if abs(drift_s) <= MAX_CLOCK_DRIFT_S:
        words = f"pump clock within {MAX_CLOCK_DRIFT_S / 60:g} min of the patient's time"
        return ClockCheck(pump_time, expected, drift_s, False, words)
    words = (
        f"pump clock {minutes:.0f} min {side} the patient's standard time "
        f"({pump_time:%Y-%m-%d %H:%M} on the pump, {expected:%Y-%m-%d %H:%M} expected): "
        f"every flex step runs {minutes:.0f} min {'early' if drift_s > 0 else 'late'}; "
        "set the pump's clock"
    )
    return ClockCheck(pump_time, expected, drift_s, True, words)


@dataclass(frozen=True, slots=True)
class StepTime:
    pump_clock: str  # "08:00": what is programmed, on the pump's clock
    wall: datetime  # when it runs by the patient's wall clock (aware)
    rate_ug_per_h: float
    shift_min: int  # wall minus pump time of day: 60 in summer time, 0 in winter

    @property
    def words(self) -> str:
        said = f"{self.pump_clock} on the pump = {minute_words(self.wall)}"
        if self.shift_min:
            said += f" (the wall clock is {self.shift_min:+d} min from the pump: summer time)"
        return said


def step_times_on(program: Program, day: date, patient_zone: tzinfo) -> list[StepTime]:
    """When each of the program's steps of ``day`` (a pump-clock day) runs by the patient's
    wall clock: on the night of a daylight-saving change the steps keep the pump's clock, so
    by the wall clock they move by the zone's summer hour."""
    steps = program.week[day.weekday()]
    times = []
    for step in steps:
        pump_time = datetime.combine(day, datetime.min.time()) + timedelta(minutes=step.start_min)
        wall = pump_time_in_zone(pump_time, patient_zone, patient_zone)
        naive_wall = wall.replace(tzinfo=None)
        shift = round((naive_wall - pump_time).total_seconds() / 60.0)
        times.append(StepTime(format_clock(step.start_min), wall, step.rate_ug_per_h, shift))
    return times
