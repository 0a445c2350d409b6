"""Check a new program against the old one before it is sent to the pump.

Theory of operation. The programmer shows the new program beside the old one (daily dose, the
rate of every step, the change in percent; S8 S30) and runs a list of checks, each with a verdict
and a reason (the oref0 habit: no verdict without a reason):

- REFUSE: above the drug's absolute daily maximum, or a rate the pump cannot deliver;
- WARN, needs a confirmation with a reason: above the warning level (S46 S52), a change beyond
  the titration or maintenance limit (S46) of the daily dose or of any step's rate (a reshaped
  flex schedule), against the current program and against the program in force 24 h earlier
  (one titration increase per 24 h), a likely tenfold typo, a restart from zero;

Where the origin or the phase is not given, the strictest limits apply and a check says so.
Percentages are compared exactly (itb.programmer.exact): a change of exactly the limit passes.
- OK otherwise.

The concentration is the one read back from the pump, never typed. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from itb.drugs import BACLOFEN, Drug
from itb.errors import InputError
from itb.guardrails import (
    CHANGE_LIMITS,
    CHILD_AGE_LIMIT_YEARS,
    DAILY_DOSE,
    AppliedChangeLimit,
    ChangeLimit,
    Origin,
    Phase,
    Verdict,
    daily_dose_guardrail,
    strictest_change_limit,
)
from itb.programmer.exact import (
    beyond_decrease,
    beyond_increase,
    exact_amount,
    exact_percent_change,
)
from itb.programmer.program_history import (
    ProgramChange,
    program_in_force_at,
    review_token,
    same_program,
)
from itb.pump.hardware import PumpModel
from itb.therapy import WEEKDAYS, Program, format_clock
from itb.units import HOURS_PER_DAY, SECONDS_PER_DAY, UL_PER_ML

# Origin, Phase and the change-limit table live in itb.guardrails (one table for the titration
# advisor and this review); they are re-exported here for the programmer's callers.
__all__ = [
    "CHANGE_LIMITS",
    "ChangeLimit",
    "Check",
    "ConfirmationRequiredError",
    "Origin",
    "Phase",
    "ProgramChange",
    "ProgramRefusedError",
    "ProgramReview",
    "RateRow",
    "ReviewContext",
    "basal_rate_ug_per_h",
    "likely_tenfold_typo",
    "percent_change",
    "program_in_force_at",
    "rate_rows",
    "review_program",
    "review_token",
]

# A new value within 10× ÷ 1.25 to 10× × 1.25 of the old (or the same band around 0.1×) is
# probably a misplaced decimal point [R].
TYPO_FACTOR = 10.0
TYPO_TOLERANCE_FACTOR = 1.25


class ProgramRefusedError(InputError):
    """A program that fails a REFUSE check. The message lists the reasons."""


class ConfirmationRequiredError(InputError):
    """A program (or a command) with warnings submitted without the confirmation it needs."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    verdict: Verdict
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "verdict": self.verdict.value, "reason": self.reason}


class Reviewed:
    """What a review's checks add up to: its worst verdict, and the reasons for each. Shared by
    every review (a program, a bolus) so that refused and needs-confirmation mean one thing."""

    __slots__ = ()
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = {c.verdict for c in self.checks}
        for worst in (Verdict.REFUSE, Verdict.WARN):
            if worst in verdicts:
                return worst
        return Verdict.OK

    @property
    def refused(self) -> bool:
        return self.verdict is Verdict.REFUSE

    @property
    def needs_confirmation(self) -> bool:
        return self.verdict is Verdict.WARN

    def reasons(self, verdict: Verdict) -> list[str]:
        return [c.reason for c in self.checks if c.verdict is verdict]


@dataclass(frozen=True, slots=True)
class RateRow:
    """One step start: the old and the new basal rate from that time on."""

    day: str  # "every day" or mon..sun
    start: str  # HH:MM
    old_rate_ug_per_h: float | None
    new_rate_ug_per_h: float
    change_percent: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "day": self.day,
            "start": self.start,
            "old_rate_ug_per_h": _round(self.old_rate_ug_per_h, 3),
            "new_rate_ug_per_h": round(self.new_rate_ug_per_h, 3),
            "change_percent": _round(self.change_percent, 1),
        }


@dataclass(frozen=True, slots=True)
class ProgramReview(Reviewed):
    new_program: Program
    concentration_ug_per_ml: float
    old_daily_dose_ug: float | None
    new_daily_dose_ug: float
    change_percent: float | None
    new_volume_per_day_ml: float
    new_max_hourly_dose_ug: float
    rows: tuple[RateRow, ...]
    checks: tuple[Check, ...] = field(default=())

    def accept(self, confirmation_reason: str | None = None) -> Program:
        """The program to send, once every REFUSE is absent and every WARN is confirmed."""
        if self.refused:
            reasons = "; ".join(self.reasons(Verdict.REFUSE))
            raise ProgramRefusedError("program", reasons, f"program refused: {reasons}")
        if self.needs_confirmation and not (confirmation_reason or "").strip():
            raise ConfirmationRequiredError(
                "confirmation_reason",
                "a reason is required to confirm: " + "; ".join(self.reasons(Verdict.WARN)),
            )
        return self.new_program

    def to_dict(self) -> dict[str, object]:
        return {
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            "old_daily_dose_ug": _round(self.old_daily_dose_ug, 2),
            "new_daily_dose_ug": round(self.new_daily_dose_ug, 2),
            "change_percent": _round(self.change_percent, 1),
            "new_volume_per_day_ml": round(self.new_volume_per_day_ml, 4),
            "new_max_hourly_dose_ug": round(self.new_max_hourly_dose_ug, 2),
            "verdict": self.verdict.value,
            "needs_confirmation": self.needs_confirmation,
            "refused": self.refused,
            "rows": [r.to_dict() for r in self.rows],
            "checks": [c.to_dict() for c in self.checks],
            "new_program": self.new_program.to_dict(),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def percent_change(old: float, new: float) -> float | None:
    return None if old == 0.0 else (new - old) / old * 100.0


def likely_tenfold_typo(old: float, new: float) -> bool:
    """True when ``new`` is about 10× or 0.1× ``old`` (a misplaced decimal point)."""
    if old <= 0.0 or new <= 0.0:
        return False
    ratio = new / old
    for target in (TYPO_FACTOR, 1.0 / TYPO_FACTOR):
        if target / TYPO_TOLERANCE_FACTOR <= ratio <= target * TYPO_TOLERANCE_FACTOR:
            return True
    return False


def basal_rate_ug_per_h(program: Program, weekday: int, minute: int) -> float:
    """The step rate running at ``minute`` after midnight; before the day's first step, the
    previous day's last step is still running (a program that crosses midnight)."""
    day = program.week[weekday]
    running = [s for s in day if s.start_min <= minute]
    if running:
        return running[-1].rate_ug_per_h
    return program.week[(weekday - 1) % 7][-1].rate_ug_per_h


def rate_rows(old: Program | None, new: Program) -> list[RateRow]:
    """Side-by-side rates at every step start of either program, midnight included."""
    varies = new.varies_by_day or (old is not None and old.varies_by_day)
    days = range(7) if varies else range(1)
    rows: list[RateRow] = []
    for d in days:
        starts = {0, *(s.start_min for s in new.week[d])}
        if old is not None:
            starts.update(s.start_min for s in old.week[d])
        for minute in sorted(starts):
            new_rate = basal_rate_ug_per_h(new, d, minute)
            old_rate = None if old is None else basal_rate_ug_per_h(old, d, minute)
            change = None if old_rate is None else percent_change(old_rate, new_rate)
            day = WEEKDAYS[d] if varies else "every day"
            rows.append(RateRow(day, format_clock(minute), old_rate, new_rate, change))
    return rows


@dataclass(frozen=True, slots=True)
class ReviewContext:
    """What the review needs to know about the patient and the pump's recent past.

    ``origin`` or ``phase`` not given (None): the strictest limits of every value it could have
    apply, and the review says so. ``age_years`` under 12: the children's dose range (S25).
    ``program_24h_ago``: the program in force 24 h before the change (from the pump's log), so
    that two changes minutes apart are judged together (one titration increase per 24 h, S46).
    """

    origin: Origin | None = None
    phase: Phase | None = None
    age_years: float | None = None
    program_24h_ago: Program | None = None

    def __post_init__(self) -> None:
        age = self.age_years
        if age is not None and not (math.isfinite(age) and 0.0 <= age <= MAX_AGE_YEARS):
            raise InputError("age_years", f"{age!r}: allowed 0 to {MAX_AGE_YEARS:g} years")


MAX_AGE_YEARS = 130.0


def review_program(
    model: PumpModel,
    old: Program | None,
    new: Program,
    pump_concentration_ug_per_ml: float,
    context: ReviewContext,
    drug: Drug = BACLOFEN,
) -> ProgramReview:
    """Compare ``new`` with ``old`` (and with the program of 24 h ago) and run every check;
    nothing is sent from here."""
    concentration = drug.check_concentration(pump_concentration_ug_per_ml)
    new_dose_ug = new.daily_dose_ug()
    old_dose_ug = None if old is None else old.daily_dose_ug()
    change = None if old_dose_ug is None else percent_change(old_dose_ug, new_dose_ug)
    rows = rate_rows(old, new)
    applied = strictest_change_limit(context.origin, context.phase)
    checks = [_dose_level_check(new_dose_ug, context.age_years), _limits_check(applied)]
    if old is not None:
        checks.extend(_change_checks(old, new, applied, CURRENT))
    earlier = context.program_24h_ago
    if old is not None and earlier is not None and not same_program(earlier, old):
        checks.extend(_change_checks(earlier, new, applied, DAY_AGO))
    elif old is None:
        checks.append(Check("dose_change", Verdict.OK, "no previous program to compare with"))
    checks.extend(_typo_checks(old_dose_ug, new_dose_ug, rows))
    checks.extend(_flow_checks(model, new, concentration))
    return ProgramReview(
        new_program=new,
        concentration_ug_per_ml=concentration,
        old_daily_dose_ug=old_dose_ug,
        new_daily_dose_ug=new_dose_ug,
        change_percent=change,
        new_volume_per_day_ml=new_dose_ug / concentration,
        new_max_hourly_dose_ug=new.max_hourly_dose_ug(),
        rows=tuple(rows),
        checks=tuple(checks),
    )


def _dose_level_check(new_dose_ug: float, age_years: float | None) -> Check:
    # The ceiling is compared on the snapped dose: a continuous 2000 µg/day computes as
    # 2000.0000000000002 and must not be refused for it.
    dose_ug = float(exact_amount(new_dose_ug))
    rail = daily_dose_guardrail(age_years)
    verdict = rail.verdict(dose_ug)
    child = rail is not DAILY_DOSE
    if verdict is Verdict.REFUSE:
        reason = (
            f"daily dose {dose_ug:g} µg/day is above the absolute maximum "
            f"{rail.absolute_max:g} µg/day (S25)"
        )
    elif child and verdict is Verdict.WARN:
        reason = (
            f"daily dose {dose_ug:g} µg/day is outside the {rail.recommended_min:g} to "
            f"{rail.recommended_max:g} µg/day reported for children under "
            f"{CHILD_AGE_LIMIT_YEARS:g} years (age {age_years:g}; {rail.source})"
        )
    elif dose_ug > rail.recommended_max:
        reason = (
            f"daily dose {dose_ug:g} µg/day is above the warning level "
            f"{rail.recommended_max:g} µg/day: limited experience (S46 S52)"
        )
    else:
        reason = rail.describe(dose_ug).replace("daily_dose_ug=", "daily dose ")
    return Check("daily_dose", verdict, reason)


def _limits_check(applied: AppliedChangeLimit) -> Check:
    limit = applied.limit
    words = (
        f"change limits +{limit.max_increase_percent:g}% / −{limit.max_decrease_percent:g}% "
        f"({applied.description}; {limit.source})"
    )
    if applied.assumed:
        words = "; ".join(applied.assumed) + ": " + words
    return Check("change_limits", Verdict.OK, words)


@dataclass(frozen=True, slots=True)
class _Reference:
    """Which earlier program a change is measured against, and the names of its checks."""

    dose_check: str
    step_check: str
    words: str  # how the reason names it


CURRENT = _Reference("dose_change", "step_rate_change", "")
DAY_AGO = _Reference(
    "dose_change_24h",
    "step_rate_change_24h",
    " since the program in force 24 h ago (one titration increase per 24 h, S46 S52)",
)


def _change_checks(
    old: Program, new: Program, applied: AppliedChangeLimit, ref: _Reference
) -> list[Check]:
    checks = [_dose_change_check(old.daily_dose_ug(), new.daily_dose_ug(), applied, ref)]
    if not (old.is_continuous and new.is_continuous):  # a continuous step IS the daily dose
        checks.extend(_step_checks(old, new, applied, ref))
    return checks


def _dose_change_check(
    old_dose_ug: float, new_dose_ug: float, applied: AppliedChangeLimit, ref: _Reference
) -> Check:
    change = exact_percent_change(old_dose_ug, new_dose_ug)
    if change is None:
        return Check(
            ref.dose_check,
            Verdict.WARN,
            f"previous daily dose 0 µg/day{ref.words}: restarting at {new_dose_ug:g} µg/day "
            "after a stop may overdose a patient who has lost tolerance",
        )
    limit = applied.limit
    what = f"{applied.description}; {limit.source}"
    shown = f"daily dose {old_dose_ug:g} → {new_dose_ug:g} µg/day is {float(change):+.1f}%"
    if beyond_increase(old_dose_ug, new_dose_ug, limit.max_increase_percent):
        return Check(
            ref.dose_check,
            Verdict.WARN,
            f"{shown}{ref.words}, beyond the +{limit.max_increase_percent:g}% limit ({what})",
        )
    if beyond_decrease(old_dose_ug, new_dose_ug, limit.max_decrease_percent):
        return Check(
            ref.dose_check,
            Verdict.WARN,
            f"{shown}{ref.words}, beyond the −{limit.max_decrease_percent:g}% limit ({what}): "
            "watch for withdrawal",
        )
    return Check(
        ref.dose_check,
        Verdict.OK,
        f"{shown}{ref.words}, within +{limit.max_increase_percent:g}% / "
        f"−{limit.max_decrease_percent:g}% ({applied.description})",
    )


def _step_checks(
    old: Program, new: Program, applied: AppliedChangeLimit, ref: _Reference
) -> list[Check]:
    """Each step's rate against the rate the old program ran at the same time, with the same
    limits as the daily dose: the same total with one hour at 4× its rate is a change too."""
    limit = applied.limit
    beyond: list[str] = []
    for row in rate_rows(old, new):
        assert row.old_rate_ug_per_h is not None
        where = f"{row.day} {row.start}: {row.old_rate_ug_per_h:g} → {row.new_rate_ug_per_h:g} µg/h"
        # Compared as µg/day at that rate: a continuous 400 µg/day is stored as 16.666… µg/h,
        # and snapping that to the resolution would itself move the percentage.
        old_rate = row.old_rate_ug_per_h * HOURS_PER_DAY
        new_rate = row.new_rate_ug_per_h * HOURS_PER_DAY
        change = exact_percent_change(old_rate, new_rate)
        if change is None:
            if exact_amount(new_rate) > 0:
                beyond.append(f"{where} (from a zero rate)")
        elif beyond_increase(old_rate, new_rate, limit.max_increase_percent) or beyond_decrease(
            old_rate, new_rate, limit.max_decrease_percent
        ):
            beyond.append(f"{where} ({float(change):+.1f}%)")
    if beyond:
        return [
            Check(
                ref.step_check,
                Verdict.WARN,
                f"step rates beyond +{limit.max_increase_percent:g}% / "
                f"−{limit.max_decrease_percent:g}%{ref.words}: " + "; ".join(beyond),
            )
        ]
    return [
        Check(
            ref.step_check,
            Verdict.OK,
            f"every step rate within +{limit.max_increase_percent:g}% / "
            f"−{limit.max_decrease_percent:g}%{ref.words}",
        )
    ]


def _typo_checks(old_dose_ug: float | None, new_dose_ug: float, rows: list[RateRow]) -> list[Check]:
    checks: list[Check] = []
    if old_dose_ug is not None and likely_tenfold_typo(old_dose_ug, new_dose_ug):
        checks.append(
            Check(
                "tenfold_typo",
                Verdict.WARN,
                f"daily dose {new_dose_ug:g} µg/day is {new_dose_ug / old_dose_ug:.2g}× the "
                f"previous {old_dose_ug:g} µg/day: a misplaced decimal point?",
            )
        )
    for row in rows:
        old_rate = row.old_rate_ug_per_h
        if old_rate is not None and likely_tenfold_typo(old_rate, row.new_rate_ug_per_h):
            checks.append(
                Check(
                    "tenfold_typo",
                    Verdict.WARN,
                    f"{row.day} {row.start}: rate {row.new_rate_ug_per_h:g} µg/h is "
                    f"{row.new_rate_ug_per_h / old_rate:.2g}× the previous {old_rate:g} µg/h: "
                    "a misplaced decimal point?",
                )
            )
    return checks


def _flow_checks(model: PumpModel, new: Program, concentration_ug_per_ml: float) -> list[Check]:
    """The fastest rate of the program, as a volume, must be one the pump can deliver."""
    max_rate_ml_per_day = new.profile.max_rate_ug_per_s * SECONDS_PER_DAY / concentration_ug_per_ml
    volume_ml = new.daily_dose_ug() / concentration_ug_per_ml
    if max_rate_ml_per_day > model.max_flow_ml_per_day:
        return [
            Check(
                "flow",
                Verdict.REFUSE,
                f"fastest rate {max_rate_ml_per_day:.3f} mL/day at {concentration_ug_per_ml:g} "
                f"µg/mL is above the {model.name}'s maximum {model.max_flow_ml_per_day:g} mL/day",
            )
        ]
    if 0.0 < volume_ml < model.min_flow_ml_per_day:
        return [
            Check(
                "flow",
                Verdict.WARN,
                f"{volume_ml:.4f} mL/day at {concentration_ug_per_ml:g} µg/mL is below the "
                f"{model.name}'s lowest flow {model.min_flow_ml_per_day:g} mL/day: "
                "consider a lower concentration",
            )
        ]
    return [
        Check(
            "flow",
            Verdict.OK,
            f"{volume_ml:.4f} mL/day ({volume_ml / HOURS_PER_DAY * UL_PER_ML:.2f} µL/h) at "
            f"{concentration_ug_per_ml:g} µg/mL (read back from the pump)",
        )
    ]
