"""A program as a clinician reads it: a schedule table with units, never the stored JSON.

One renderer for every place that shows a program (the patient page, its visits, the program
review, the reports, the interrogation report): :func:`program_table` turns the stored program
(the scenario's ``[program]`` keys) into plain rows; the web app's
``templates/_program_table.html`` lays them out. Pure: it only reads the program.

- continuous: one line, ``450 µg/day (18.75 µg/h)``;
- flex: start time, rate (µg/h) and the step's share of the day's dose, for every day or per
  weekday when the days differ (a step runs until the next one, the last until the first of
  the next day);
- periodic boluses: start time, dose (µg) and how long it is given over (min).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itb.errors import InputError
from itb.therapy import MINUTES_PER_DAY, FlexStep, Program, format_clock, program_from_dict
from itb.units import HOURS_PER_DAY

MINUTES_PER_HOUR = 60.0
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class StepRow:
    start: str  # "07:00" on the pump's clock
    end: str  # when the next step starts
    rate_ug_per_h: float
    dose_ug: float  # delivered by this step over its hours
    share_percent: float  # of the day's dose


@dataclass(frozen=True, slots=True)
class DaySchedule:
    days: str  # "Every day", or a weekday's name
    daily_dose_ug: float
    steps: tuple[StepRow, ...]


@dataclass(frozen=True, slots=True)
class BolusRow:
    start: str
    dose_ug: float
    duration_min: float


@dataclass(frozen=True, slots=True)
class ProgramTable:
    kind: str  # "continuous" or "flex"
    mean_daily_dose_ug: float
    rate_ug_per_day: float | None  # continuous only
    rate_ug_per_h: float | None  # continuous only
    days: tuple[DaySchedule, ...]  # flex only
    boluses: tuple[BolusRow, ...]
    summary: str  # one line in words: "450 µg/day (18.75 µg/h)", "flex, 480 µg/day"


def _day(name: str, steps: tuple[FlexStep, ...]) -> DaySchedule:
    doses = []
    for i, step in enumerate(steps):
        end_min = steps[i + 1].start_min if i + 1 < len(steps) else steps[0].start_min
        span_min = (end_min - step.start_min) % MINUTES_PER_DAY or MINUTES_PER_DAY
        doses.append(step.rate_ug_per_h * span_min / MINUTES_PER_HOUR)
    total_ug = sum(doses)
    rows = tuple(
        StepRow(
            start=format_clock(step.start_min),
            end=format_clock(steps[(i + 1) % len(steps)].start_min),
            rate_ug_per_h=step.rate_ug_per_h,
            dose_ug=dose_ug,
            share_percent=100.0 * dose_ug / total_ug if total_ug > 0 else 0.0,
        )
        for i, (step, dose_ug) in enumerate(zip(steps, doses, strict=True))
    )
    return DaySchedule(name, total_ug, rows)


def _days(program: Program) -> tuple[DaySchedule, ...]:
    if not program.varies_by_day:
        return (_day("Every day", program.week[0]),)
    return tuple(_day(DAY_NAMES[d], steps) for d, steps in enumerate(program.week))


def program_table(stored: dict[str, Any] | Program) -> ProgramTable:
    """The rows of a program (the stored ``[program]`` keys, or a :class:`Program`)."""
    program = stored if isinstance(stored, Program) else program_from_dict(stored)
    boluses = tuple(
        BolusRow(format_clock(b.start_min), b.dose_ug, b.duration_min)
        for b in program.periodic_boluses
    )
    mean_ug = program.mean_daily_dose_ug()
    if program.is_continuous:
        rate_h = program.week[0][0].rate_ug_per_h
        rate_day = rate_h * HOURS_PER_DAY
        summary = f"{rate_day:g} µg/day ({rate_h:.4g} µg/h), continuous"
        return ProgramTable("continuous", mean_ug, rate_day, rate_h, (), boluses, summary)
    days = _days(program)
    summary = f"flex schedule, {mean_ug:.4g} µg/day on average"
    return ProgramTable("flex", mean_ug, None, None, days, boluses, summary)


def program_summary(stored: dict[str, Any]) -> str:
    """One line in words for a stored program; a record no longer valid says so."""
    try:
        return program_table(stored).summary
    except InputError:
        return "a program this version cannot read"
