"""Check a new program against the old one before it is sent to the pump.

Theory of operation. The programmer shows the new program beside the old one (daily dose, the
rate of every step, the change in percent; S8 S30) and runs a list of checks, each with a verdict
and a reason (the oref0 habit: no verdict without a reason):

- REFUSE: above the drug's absolute daily maximum, or a rate the pump cannot deliver;
- WARN, needs a confirmation with a reason: above the warning level (S46 S52), a change beyond
  the titration or maintenance limit (S46), a likely tenfold typo, a restart from zero;
- OK otherwise.

The concentration is the one read back from the pump, never typed. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from itb.drugs import BACLOFEN, Drug
from itb.errors import InputError
from itb.guardrails import (
    CHANGE_LIMITS,
    DAILY_DOSE,
    ChangeLimit,
    Origin,
    Phase,
    Verdict,
    change_limit,
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
    "ProgramRefusedError",
    "ProgramReview",
    "RateRow",
    "basal_rate_ug_per_h",
    "likely_tenfold_typo",
    "percent_change",
    "rate_rows",
    "review_program",
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
class ProgramReview:
    new_program: Program
    concentration_ug_per_ml: float
    old_daily_dose_ug: float | None
    new_daily_dose_ug: float
    change_percent: float | None
    new_volume_per_day_ml: float
    new_max_hourly_dose_ug: float
    rows: tuple[RateRow, ...]
    checks: tuple[Check, ...] = field(default=())

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


def review_program(
    model: PumpModel,
    old: Program | None,
    new: Program,
    pump_concentration_ug_per_ml: float,
    origin: Origin,
    phase: Phase,
    drug: Drug = BACLOFEN,
) -> ProgramReview:
    """Compare ``new`` with ``old`` and run every check; nothing is sent from here."""
    concentration = drug.check_concentration(pump_concentration_ug_per_ml)
    new_dose_ug = new.daily_dose_ug()
    old_dose_ug = None if old is None else old.daily_dose_ug()
    change = None if old_dose_ug is None else percent_change(old_dose_ug, new_dose_ug)
    rows = rate_rows(old, new)
    checks = [_dose_level_check(new_dose_ug)]
    checks.extend(_change_checks(old_dose_ug, new_dose_ug, change, origin, phase))
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


def _dose_level_check(new_dose_ug: float) -> Check:
    verdict = DAILY_DOSE.verdict(new_dose_ug)
    if verdict is Verdict.REFUSE:
        reason = (
            f"daily dose {new_dose_ug:g} µg/day is above the absolute maximum "
            f"{DAILY_DOSE.absolute_max:g} µg/day (S25)"
        )
    elif new_dose_ug > DAILY_DOSE.recommended_max:
        reason = (
            f"daily dose {new_dose_ug:g} µg/day is above the warning level "
            f"{DAILY_DOSE.recommended_max:g} µg/day: limited experience (S46 S52)"
        )
    else:
        reason = DAILY_DOSE.describe(new_dose_ug).replace("daily_dose_ug=", "daily dose ")
    return Check("daily_dose", verdict, reason)


def _change_checks(
    old_dose_ug: float | None,
    new_dose_ug: float,
    change: float | None,
    origin: Origin,
    phase: Phase,
) -> list[Check]:
    if old_dose_ug is None:
        return [Check("dose_change", Verdict.OK, "no previous program to compare with")]
    if change is None:
        return [
            Check(
                "dose_change",
                Verdict.WARN,
                f"previous daily dose 0 µg/day: restarting at {new_dose_ug:g} µg/day after a "
                "stop may overdose a patient who has lost tolerance",
            )
        ]
    limit = change_limit(origin, phase)
    what = f"{origin.value} origin, {phase.value}"
    if change > limit.max_increase_percent:
        return [
            Check(
                "dose_change",
                Verdict.WARN,
                f"daily dose {old_dose_ug:g} → {new_dose_ug:g} µg/day is {change:+.1f}%, beyond "
                f"the +{limit.max_increase_percent:g}% limit ({what}; {limit.source})",
            )
        ]
    if change < -limit.max_decrease_percent:
        return [
            Check(
                "dose_change",
                Verdict.WARN,
                f"daily dose {old_dose_ug:g} → {new_dose_ug:g} µg/day is {change:+.1f}%, beyond "
                f"the −{limit.max_decrease_percent:g}% limit ({what}; {limit.source}): "
                "watch for withdrawal",
            )
        ]
    return [
        Check(
            "dose_change",
            Verdict.OK,
            f"daily dose {old_dose_ug:g} → {new_dose_ug:g} µg/day is {change:+.1f}%, within "
            f"+{limit.max_increase_percent:g}% / −{limit.max_decrease_percent:g}% ({what})",
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
