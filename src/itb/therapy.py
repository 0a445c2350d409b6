"""Therapy programs and their compilation into rate segments.

A program is what the clinician prescribes, in µg: a simple continuous rate, or a flexible
schedule of steps (each a start time after midnight and a rate in µg/h, up to 24 steps a day,
optionally different for each day of the week), with optional periodic boluses on top.
It compiles to a :class:`RateProfile`, a weekly periodic piecewise-constant rate in µg/s, which
the firmware integrates exactly and the pharmacology reads as rate segments.

Daily dose, hourly maximum and volume per day are derived from the profile, never stored.

Pump time is seconds since :data:`PUMP_EPOCH`, a Monday midnight on the pump's fixed-offset
clock (no daylight saving), so that the weekday and the time of day are plain arithmetic.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from itb.errors import InputError
from itb.units import (
    HOURS_PER_DAY,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    SECONDS_PER_MINUTE,
    SECONDS_PER_WEEK,
)

PUMP_EPOCH = datetime(2000, 1, 3)  # a Monday, 00:00 on the pump's clock
MAX_STEPS_PER_DAY = 24  # at least the 13 a SynchroMed II allows (S12 S13)
MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ProgramError(InputError):
    """A program that cannot be delivered: ``field`` names the part, ``reason`` the rule."""


def to_pump_s(when: datetime) -> float:
    """Seconds since :data:`PUMP_EPOCH` on the pump's fixed-offset clock."""
    if when.tzinfo is not None:
        reason = "the pump clock is a fixed-offset local clock; give a time without a UTC offset"
        raise ProgramError("time", reason, f"time {when.isoformat()}: {reason}")
    return (when - PUMP_EPOCH).total_seconds()


def from_pump_s(t_s: float) -> datetime:
    """The time ``t_s`` pump seconds after :data:`PUMP_EPOCH`, to the microsecond (timedelta
    rounds to the nearest, half to even: the same as rounding to 6 decimals first)."""
    return PUMP_EPOCH + timedelta(seconds=t_s)


def parse_clock_min(text: str, field_name: str = "start") -> int:
    """'07:30' -> 450 minutes after midnight."""
    reason = "expected HH:MM between 00:00 and 23:59"
    try:
        hours_text, minutes_text = text.split(":")
        hours, minutes = int(hours_text), int(minutes_text)
    except ValueError:
        raise ProgramError(field_name, reason, f"{field_name}={text!r}: {reason}") from None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ProgramError(field_name, reason, f"{field_name}={text!r}: {reason}")
    return hours * 60 + minutes


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class FlexStep:
    """From ``start_min`` after midnight until the next step, ``rate_ug_per_h``."""

    start_min: int
    rate_ug_per_h: float


@dataclass(frozen=True, slots=True)
class PeriodicBolus:
    """A bolus each day at ``start_min`` after midnight, on top of the basal schedule."""

    start_min: int
    dose_ug: float
    duration_min: float


@dataclass(frozen=True, slots=True)
class Program:
    """A therapy program. Build it with :func:`continuous` or :func:`flex`.

    ``week`` holds seven daily schedules, Monday first; a step that starts after midnight
    leaves the previous day's last rate running until it begins.
    """

    week: tuple[tuple[FlexStep, ...], ...]
    periodic_boluses: tuple[PeriodicBolus, ...] = ()
    is_continuous: bool = False
    _profile: RateProfile | None = field(default=None, compare=False, repr=False)
    # each weekday's dose (µg), computed once: the firmware asks at every refill and program check
    _daily_ug: tuple[float, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        _validate(self)
        profile = _compile(self)
        object.__setattr__(self, "_profile", profile)
        daily = tuple(
            profile.integral_ug(d * SECONDS_PER_DAY, (d + 1) * SECONDS_PER_DAY) for d in range(7)
        )
        object.__setattr__(self, "_daily_ug", daily)

    @property
    def profile(self) -> RateProfile:
        assert self._profile is not None
        return self._profile

    # Derived quantities -------------------------------------------------------------------
    def daily_dose_ug(self, weekday: int | None = None) -> float:
        """Dose over one day (µg); without a weekday, the highest of the week."""
        return max(self._daily_ug) if weekday is None else self._daily_ug[weekday]

    def mean_daily_dose_ug(self) -> float:
        return self.profile.period_total_ug / 7.0

    def max_hourly_dose_ug(self) -> float:
        """Most drug in any sliding hour of the week (µg), periodic boluses included."""
        return self.profile.max_window_ug(SECONDS_PER_HOUR)

    def volume_per_day_ml(self, concentration_ug_per_ml: float) -> float:
        return self.daily_dose_ug() / concentration_ug_per_ml

    @property
    def varies_by_day(self) -> bool:
        return any(day != self.week[0] for day in self.week[1:])

    # Serialisation (the scenario's [program] keys) -----------------------------------------
    def to_dict(self) -> dict[str, object]:
        out: dict[str, object]
        if self.is_continuous:
            out = {"rate_ug_per_day": self.week[0][0].rate_ug_per_h * HOURS_PER_DAY}
        elif not self.varies_by_day:
            out = {"steps": [_step_dict(s) for s in self.week[0]]}
        else:
            out = {
                "week": {WEEKDAYS[i]: [_step_dict(s) for s in d] for i, d in enumerate(self.week)}
            }
        if self.periodic_boluses:
            out["periodic_boluses"] = [
                {
                    "start": format_clock(b.start_min),
                    "dose_ug": b.dose_ug,
                    "duration_min": b.duration_min,
                }
                for b in self.periodic_boluses
            ]
        return out


def _step_dict(step: FlexStep) -> dict[str, object]:
    return {"start": format_clock(step.start_min), "rate_ug_per_h": step.rate_ug_per_h}


def continuous(rate_ug_per_day: float, periodic_boluses: Sequence[PeriodicBolus] = ()) -> Program:
    step = FlexStep(0, rate_ug_per_day / HOURS_PER_DAY)
    return Program(
        week=((step,),) * 7, periodic_boluses=tuple(periodic_boluses), is_continuous=True
    )


def flex(
    steps: Sequence[FlexStep] | Sequence[Sequence[FlexStep]],
    periodic_boluses: Sequence[PeriodicBolus] = (),
) -> Program:
    """One daily schedule for every day, or seven (Monday first)."""
    week: tuple[tuple[FlexStep, ...], ...]
    if all(isinstance(s, FlexStep) for s in steps):
        week = (tuple(s for s in steps if isinstance(s, FlexStep)),) * 7
    else:
        week = tuple(tuple(d) for d in steps if not isinstance(d, FlexStep))
    return Program(week=week, periodic_boluses=tuple(periodic_boluses))


def program_from_dict(data: dict[str, object]) -> Program:
    """Build a program from the scenario's ``[program]`` keys (see docs/scenario.md)."""
    known = {"rate_ug_per_day", "steps", "week", "periodic_boluses"}
    unknown = set(data) - known
    if unknown:
        raise ProgramError("program", f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
    boluses = [
        _bolus_from_dict(b, i)
        for i, b in enumerate(_as_list(data.get("periodic_boluses", []), "periodic_boluses"))
    ]
    given = [k for k in ("rate_ug_per_day", "steps", "week") if k in data]
    if len(given) > 1:
        # Ambiguous: a daily rate and a schedule are two different prescriptions. Neither wins
        # silently; the clinician says which one is meant (issue 11).
        both = " and ".join(given)
        reason = f"{both} given together: give exactly one (which one is meant?)"
        raise ProgramError(given[0], reason, f"{both}: {reason}")
    if not given:
        raise ProgramError("program", "give exactly one of rate_ug_per_day, steps or week")
    if "rate_ug_per_day" in data:
        return continuous(_number(data["rate_ug_per_day"], "rate_ug_per_day"), boluses)
    if "steps" in data:
        return flex(_steps_from_list(data["steps"], "steps"), boluses)
    week_data = data["week"]
    if not isinstance(week_data, dict) or set(week_data) != set(WEEKDAYS):
        raise ProgramError("program.week", f"expected a table with the keys {', '.join(WEEKDAYS)}")
    return flex([_steps_from_list(week_data[d], f"week.{d}") for d in WEEKDAYS], boluses)


def _as_list(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise ProgramError(name, "expected a list")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProgramError(
            name, "expected a finite number", f"{name}={value!r}: expected a finite number"
        )
    return float(value)


def _steps_from_list(value: object, name: str) -> list[FlexStep]:
    steps = []
    for i, item in enumerate(_as_list(value, name)):
        if not isinstance(item, dict) or set(item) != {"start", "rate_ug_per_h"}:
            raise ProgramError(
                f"{name}[{i}]", 'expected { start = "HH:MM", rate_ug_per_h = number }'
            )
        start = item["start"]
        if not isinstance(start, str):
            raise ProgramError(f"{name}[{i}].start", 'expected "HH:MM"')
        steps.append(
            FlexStep(
                parse_clock_min(start, f"{name}[{i}].start"),
                _number(item["rate_ug_per_h"], f"{name}[{i}].rate_ug_per_h"),
            )
        )
    return steps


def _bolus_from_dict(item: object, i: int) -> PeriodicBolus:
    name = f"periodic_boluses[{i}]"
    if not isinstance(item, dict) or set(item) != {"start", "dose_ug", "duration_min"}:
        raise ProgramError(
            name, 'expected { start = "HH:MM", dose_ug = number, duration_min = number }'
        )
    start = item["start"]
    if not isinstance(start, str):
        raise ProgramError(f"{name}.start", 'expected "HH:MM"')
    return PeriodicBolus(
        parse_clock_min(start, f"{name}.start"),
        _number(item["dose_ug"], f"{name}.dose_ug"),
        _number(item["duration_min"], f"{name}.duration_min"),
    )


def _validate(program: Program) -> None:
    if len(program.week) != 7:
        raise ProgramError("week", f"expected 7 daily schedules, got {len(program.week)}")
    for d, day in enumerate(program.week):
        where = f"week.{WEEKDAYS[d]}"
        if not 1 <= len(day) <= MAX_STEPS_PER_DAY:
            raise ProgramError(where, f"{len(day)} steps; allowed 1 to {MAX_STEPS_PER_DAY} a day")
        previous = -1
        for i, step in enumerate(day):
            if not (0 <= step.start_min < MINUTES_PER_DAY):
                raise ProgramError(
                    f"{where}[{i}].start", f"{step.start_min} min; allowed 00:00 to 23:59"
                )
            if step.start_min <= previous:
                raise ProgramError(
                    f"{where}[{i}].start", "steps must start in increasing time order"
                )
            previous = step.start_min
            if not (math.isfinite(step.rate_ug_per_h) and step.rate_ug_per_h >= 0.0):
                raise ProgramError(
                    f"{where}[{i}].rate_ug_per_h",
                    "must be 0 or more",
                    f"{where}[{i}].rate_ug_per_h={step.rate_ug_per_h}: must be 0 or more",
                )
    for i, bolus in enumerate(program.periodic_boluses):
        where = f"periodic_boluses[{i}]"
        if not (0 <= bolus.start_min < MINUTES_PER_DAY):
            raise ProgramError(f"{where}.start", "allowed 00:00 to 23:59")
        if not (math.isfinite(bolus.dose_ug) and bolus.dose_ug > 0.0):
            raise ProgramError(
                f"{where}.dose_ug",
                "must be more than 0",
                f"{where}.dose_ug={bolus.dose_ug}: must be more than 0",
            )
        if not (math.isfinite(bolus.duration_min) and 1.0 <= bolus.duration_min <= 12 * 60.0):
            raise ProgramError(
                f"{where}.duration_min",
                "allowed 1 to 720 min",
                f"{where}.duration_min={bolus.duration_min}: allowed 1 to 720 min",
            )


def _compile(program: Program) -> RateProfile:
    """Weekly rate in µg/s, as (start_s, rate) pieces from Monday 00:00."""
    basal: list[tuple[float, float]] = []
    last_rate = program.week[6][-1].rate_ug_per_h  # Sunday's last step runs into Monday
    for d, day in enumerate(program.week):
        if day[0].start_min != 0:
            basal.append((d * SECONDS_PER_DAY, last_rate / SECONDS_PER_HOUR))
        for step in day:
            basal.append(
                (
                    d * SECONDS_PER_DAY + step.start_min * SECONDS_PER_MINUTE,
                    step.rate_ug_per_h / SECONDS_PER_HOUR,
                )
            )
        last_rate = day[-1].rate_ug_per_h
    extras: list[tuple[float, float, float]] = []  # (start, end, µg/s) within one or two weeks
    for bolus in program.periodic_boluses:
        duration_s = bolus.duration_min * SECONDS_PER_MINUTE
        for d in range(7):
            start = d * SECONDS_PER_DAY + bolus.start_min * SECONDS_PER_MINUTE
            extras.append((start, start + duration_s, bolus.dose_ug / duration_s))
    return RateProfile.from_pieces(basal, extras, SECONDS_PER_WEEK)


@dataclass(frozen=True, slots=True)
class RateSegment:
    """A constant rate between two pump times."""

    start_s: float
    end_s: float
    rate_ug_per_h: float

    @property
    def dose_ug(self) -> float:
        return self.rate_ug_per_h * (self.end_s - self.start_s) / SECONDS_PER_HOUR


class RateProfile:
    """A periodic piecewise-constant rate (µg/s) with an exact cumulative integral.

    ``starts_s[i]`` begins piece ``i`` (``starts_s[0] == 0``); the profile repeats every
    ``period_s``. Integration and its inverse are O(log pieces) per call, which is what lets the
    firmware jump from event to event instead of stepping through every schedule change.
    """

    __slots__ = (
        "_cum_ug",
        "_rates",
        "_starts",
        "_tables",
        "max_rate_ug_per_s",
        "period_s",
        "period_total_ug",
    )

    def __init__(
        self, starts_s: Sequence[float], rates_ug_per_s: Sequence[float], period_s: float
    ) -> None:
        self._starts = list(starts_s)
        self._rates = list(rates_ug_per_s)
        self.period_s = period_s
        cum = [0.0]
        for i, rate in enumerate(self._rates):
            end = self._starts[i + 1] if i + 1 < len(self._starts) else period_s
            cum.append(cum[-1] + rate * (end - self._starts[i]))
        self._cum_ug = cum
        self.period_total_ug = cum[-1]
        # asked at every step the firmware takes (a bound on when the next event can come)
        self.max_rate_ug_per_s = max(self._rates)
        self._tables: dict[tuple[float, float], list[float]] = {}

    @classmethod
    def from_pieces(
        cls,
        basal: Sequence[tuple[float, float]],
        extras: Sequence[tuple[float, float, float]],
        period_s: float,
    ) -> RateProfile:
        cuts = {0.0}
        cuts.update(start for start, _ in basal)
        for start, end, _ in extras:
            cuts.add(start % period_s)
            cuts.add(end % period_s)
        starts = sorted(c for c in cuts if 0.0 <= c < period_s)
        basal_starts = [s for s, _ in basal]
        rates = []
        for s in starts:
            i = bisect.bisect_right(basal_starts, s) - 1
            rate = basal[i][1] if i >= 0 else basal[-1][1]
            for e_start, e_end, e_rate in extras:
                # an extra may wrap past the end of the week
                for shift in (0.0, -period_s):
                    if e_start + shift <= s < e_end + shift:
                        rate += e_rate
            rates.append(rate)
        # merge equal neighbours so that segments only cut where the rate changes
        merged_starts, merged_rates = [starts[0]], [rates[0]]
        for s, r in zip(starts[1:], rates[1:], strict=True):
            if r != merged_rates[-1]:
                merged_starts.append(s)
                merged_rates.append(r)
        return cls(merged_starts, merged_rates, period_s)

    @classmethod
    def constant(cls, rate_ug_per_s: float) -> RateProfile:
        return cls([0.0], [rate_ug_per_s], SECONDS_PER_WEEK)

    def rate_at(self, t_s: float) -> float:
        phase = t_s % self.period_s
        return self._rates[bisect.bisect_right(self._starts, phase) - 1]

    def next_change_s(self, t_s: float) -> float:
        """The first time after ``t_s`` at which the rate may change."""
        base = math.floor(t_s / self.period_s) * self.period_s
        phase = t_s - base
        i = bisect.bisect_right(self._starts, phase)
        return base + (self._starts[i] if i < len(self._starts) else self.period_s)

    def _split(self, t_s: float) -> tuple[int, float]:
        """(whole periods since pump time 0, integral within the current period)."""
        periods = math.floor(t_s / self.period_s)
        phase = t_s - periods * self.period_s
        i = bisect.bisect_right(self._starts, phase) - 1
        return periods, self._cum_ug[i] + self._rates[i] * (phase - self._starts[i])

    def integral_ug(self, t0_s: float, t1_s: float) -> float:
        if t1_s <= t0_s:
            return 0.0
        # whole periods and in-period parts apart, so that short spans keep their precision
        p0, c0 = self._split(t0_s)
        p1, c1 = self._split(t1_s)
        return (p1 - p0) * self.period_total_ug + (c1 - c0)

    def time_to_integral(
        self, t0_s: float, amount: float, scale: float, extra_per_s: float
    ) -> float:
        """Earliest t >= t0 with ``scale * integral(t0, t) + extra_per_s * (t - t0) >= amount``.

        ``math.inf`` when the rate is zero from ``t0`` on. The firmware uses it with ``scale``
        converting µg to µL (or to µC for the battery) and ``extra_per_s`` for a constant rate on
        top. Bisection on a per-period table: O(log pieces) whatever the horizon.
        """
        if amount <= 0.0:
            return t0_s
        if scale == 0.0:
            return t0_s + amount / extra_per_s if extra_per_s > 0.0 else math.inf
        total = scale * self.period_total_ug + extra_per_s * self.period_s
        if total <= 0.0:
            return math.inf
        table = self._table(scale, extra_per_s)
        periods, within = self._split(t0_s)
        phase0 = t0_s - periods * self.period_s
        target = scale * within + extra_per_s * phase0 + amount
        extra_periods = math.floor(target / total)
        rest = target - extra_periods * total
        if rest <= 0.0:  # exactly on a period boundary: reached at the end of the previous one
            extra_periods -= 1
            rest += total
        i = min(max(bisect.bisect_left(table, rest) - 1, 0), len(self._rates) - 1)
        while scale * self._rates[i] + extra_per_s <= 0.0:  # never lands in a zero-rate piece
            i -= 1
        phase = self._starts[i] + (rest - table[i]) / (scale * self._rates[i] + extra_per_s)
        return max((periods + extra_periods) * self.period_s + phase, t0_s)

    def _table(self, scale: float, extra_per_s: float) -> list[float]:
        """Cumulative ``scale * profile + extra`` at each piece start (and the period end)."""
        key = (scale, extra_per_s)
        cached = self._tables.get(key)
        if cached is None:
            ends = [*self._starts, self.period_s]
            cached = [scale * c + extra_per_s * t for c, t in zip(self._cum_ug, ends, strict=True)]
            if len(self._tables) > 8:
                self._tables.clear()
            self._tables[key] = cached
        return cached

    @property
    def min_rate_ug_per_s(self) -> float:
        return min(self._rates)

    def segments(self, t0_s: float, t1_s: float) -> Iterator[tuple[float, float, float]]:
        """(start_s, end_s, rate_ug_per_s) pieces covering [t0, t1)."""
        t = t0_s
        while t < t1_s:
            end = min(self.next_change_s(t), t1_s)
            yield t, end, self.rate_at(t)
            t = end

    def max_window_ug(self, window_s: float) -> float:
        """Largest integral over any window of ``window_s`` (attained with an end at a cut)."""
        best = 0.0
        for start in self._starts:
            best = max(best, self.integral_ug(start, start + window_s))
            best = max(best, self.integral_ug(start - window_s, start))
        return best


def rate_segments(program: Program, start: datetime, end: datetime) -> list[RateSegment]:
    """The program's rate segments (µg/h) between two pump-clock times."""
    t0, t1 = to_pump_s(start), to_pump_s(end)
    return [RateSegment(a, b, r * SECONDS_PER_HOUR) for a, b, r in program.profile.segments(t0, t1)]
