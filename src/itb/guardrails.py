"""Every therapy limit in one table, each with an absolute and a recommended range.

The firmware refuses values outside the absolute range whatever the programmer sends; the
programmer asks for a confirmation with a reason outside the recommended range. (The shape is
LoopKit's guardrails: one source of truth that the pump, the programmer and the web call.)
Sources are the S-numbers of ``docs/domain.md``; [R] marks a default not confirmed by a source.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from itb.drugs import BACLOFEN
from itb.errors import InputError


class LimitError(InputError):
    """A value outside its absolute range. Names the field, the value and the allowed range."""

    def __init__(self, field: str, value: float, low: float, high: float, unit: str) -> None:
        self.value = value
        self.low = low
        self.high = high
        self.unit = unit
        reason = f"{value:g} {unit} is outside the allowed range {low:g} to {high:g} {unit}"
        super().__init__(field, reason, f"{field}={reason}")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (LimitError, (self.field, self.value, self.low, self.high, self.unit))


class Verdict(enum.Enum):
    OK = "ok"
    WARN = "warn"  # outside the recommended range: needs a confirmation with a reason
    REFUSE = "refuse"  # outside the absolute range


@dataclass(frozen=True, slots=True)
class Guardrail:
    field: str
    unit: str
    absolute_min: float
    absolute_max: float
    recommended_min: float
    recommended_max: float
    source: str

    def verdict(self, value: float) -> Verdict:
        if not (self.absolute_min <= value <= self.absolute_max):
            return Verdict.REFUSE
        if not (self.recommended_min <= value <= self.recommended_max):
            return Verdict.WARN
        return Verdict.OK

    def check(self, value: float, field: str | None = None) -> float:
        """Return ``value`` if it is within the absolute range, else raise LimitError."""
        if value != value or not (self.absolute_min <= value <= self.absolute_max):  # NaN too
            raise LimitError(
                field or self.field, value, self.absolute_min, self.absolute_max, self.unit
            )
        return value

    def describe(self, value: float) -> str:
        verdict = self.verdict(value)
        if verdict is Verdict.OK:
            return f"{self.field}={value:g} {self.unit} is within the recommended range"
        if verdict is Verdict.WARN:
            return (
                f"{self.field}={value:g} {self.unit} is outside the recommended range "
                f"{self.recommended_min:g} to {self.recommended_max:g} {self.unit} ({self.source})"
            )
        return (
            f"{self.field}={value:g} {self.unit} is outside the allowed range "
            f"{self.absolute_min:g} to {self.absolute_max:g} {self.unit}"
        )


DAILY_DOSE = Guardrail(
    field="daily_dose_ug",
    unit="µg/day",
    absolute_min=0.0,
    absolute_max=BACLOFEN.absolute_max_daily_dose_ug,  # S25: 2000 µg/day highest reported
    recommended_min=BACLOFEN.absolute_min_daily_dose_ug,  # S25: 12 µg/day lowest maintenance
    recommended_max=BACLOFEN.warning_daily_dose_ug,  # S46 S52: limited experience above 1000
    source="S25 S46",
)

# A rolling 24 h total (delivered + bolus + programmed basal still to come) may not exceed the
# absolute daily maximum.
ROLLING_24H_DOSE = Guardrail(
    field="rolling_24h_dose_ug",
    unit="µg",
    absolute_min=0.0,
    absolute_max=BACLOFEN.absolute_max_daily_dose_ug,
    recommended_min=0.0,
    recommended_max=BACLOFEN.warning_daily_dose_ug,
    source="S25 S46",
)

# Single clinician bolus. Screening boluses go up to 100 µg (S45 S46); twice that is the cap [R].
BOLUS_DOSE = Guardrail(
    field="dose_ug",
    unit="µg",
    absolute_min=0.0,
    absolute_max=200.0,
    recommended_min=0.0,
    recommended_max=100.0,
    source="S45 S46 [R]",
)

# Patient-activated bolus settings the clinician may set [R]: a baclofen patient bolus is small
# next to the daily dose; the Prometra PTC has the same four settings (S37).
PATIENT_BOLUS_DOSE = Guardrail("patient_bolus_dose_ug", "µg", 0.0, 100.0, 0.0, 50.0, "S37 [R]")
PATIENT_BOLUS_PER_DAY = Guardrail("patient_boluses_per_day", "boluses", 0.0, 12.0, 0.0, 6.0, "[R]")
PATIENT_BOLUS_LOCKOUT = Guardrail("patient_lockout_min", "min", 15.0, 1440.0, 60.0, 1440.0, "[R]")

BOLUS_DURATION = Guardrail("duration_min", "min", 1.0, 24 * 60.0, 1.0, 24 * 60.0, "[R]")

# Low-reservoir alarm threshold: default 2.0 mL ([R] in domain.md); the Prometra controller
# computes refill dates to 3.0 mL (S37). The one home of the default: firmware, scenario,
# clinic, refill planner and simulator all read DEFAULT_LOW_RESERVOIR_ALARM_ML.
DEFAULT_LOW_RESERVOIR_ALARM_ML = 2.0
LOW_RESERVOIR_ALARM = Guardrail(
    "low_reservoir_alarm_ml", "mL", 0.5, 10.0, DEFAULT_LOW_RESERVOIR_ALARM_ML, 4.0, "S37 [R]"
)


# Dose changes ----------------------------------------------------------------------------------
class Origin(enum.Enum):
    """Where the spasticity comes from: the titration and change limits differ (S46)."""

    SPINAL = "spinal"
    CEREBRAL = "cerebral"


class Phase(enum.Enum):
    TITRATION = "titration"  # changes every 24 h after implant
    MAINTENANCE = "maintenance"  # changes at refills


@dataclass(frozen=True, slots=True)
class ChangeLimit:
    """How far one daily-dose change may go, in percent of the current daily dose.

    ``min_increase_percent`` is the smallest step the label names (the titration advisor
    suggests it); beyond ``max_increase_percent`` or ``max_decrease_percent`` the program review
    asks for a confirmation with a reason.
    """

    min_increase_percent: float
    max_increase_percent: float
    max_decrease_percent: float
    source: str


# S46 S52: titration per 24 h spinal +10 to 30%, cerebral +5 to 15%; at maintenance refills
# spinal +10 to 40% or −10 to 20%, cerebral +5 to 20% or −10 to 20% (S46). The label gives no
# decrease limit for titration: the maintenance one is used [R]. The one table: the titration
# advisor (pharmacology.titration) and the program review (programmer.programming) both read it.
CHANGE_LIMITS: dict[tuple[Origin, Phase], ChangeLimit] = {
    (Origin.SPINAL, Phase.TITRATION): ChangeLimit(10.0, 30.0, 20.0, "S46; decrease [R]"),
    (Origin.CEREBRAL, Phase.TITRATION): ChangeLimit(5.0, 15.0, 20.0, "S46; decrease [R]"),
    (Origin.SPINAL, Phase.MAINTENANCE): ChangeLimit(10.0, 40.0, 20.0, "S46"),
    (Origin.CEREBRAL, Phase.MAINTENANCE): ChangeLimit(5.0, 20.0, 20.0, "S46"),
}


def change_limit(origin: Origin, phase: Phase) -> ChangeLimit:
    return CHANGE_LIMITS[(origin, phase)]


@dataclass(frozen=True, slots=True)
class AppliedChangeLimit:
    """The change limit a review applies, and in words why (which origin and phase, or that one
    was not given and the strictest of the candidates applies)."""

    limit: ChangeLimit
    description: str
    assumed: tuple[str, ...]  # what was not given, in words; empty when both were given


def strictest_change_limit(origin: Origin | None, phase: Phase | None) -> AppliedChangeLimit:
    """The given origin and phase's limit; where one is not given, the strictest over every
    value it could have (the smallest increase and the smallest decrease allowed). Not knowing
    must never loosen a limit: the old default, spinal maintenance (+40%), was the loosest."""
    origins = (origin,) if origin is not None else tuple(Origin)
    phases = (phase,) if phase is not None else tuple(Phase)
    rows = [(o, p, CHANGE_LIMITS[(o, p)]) for o in origins for p in phases]
    o_inc, p_inc, inc = min(rows, key=lambda row: row[2].max_increase_percent)
    dec = min(rows, key=lambda row: row[2].max_decrease_percent)[2]
    limit = ChangeLimit(
        inc.min_increase_percent,
        inc.max_increase_percent,
        dec.max_decrease_percent,
        inc.source if dec is inc else f"{inc.source}; decrease {dec.source}",
    )
    assumed = []
    if origin is None:
        assumed.append(f"origin not given: the strictest limits apply ({o_inc.value})")
    if phase is None:
        assumed.append(f"phase not given: the strictest limits apply ({p_inc.value})")
    description = f"{o_inc.value} origin, {p_inc.value}"
    return AppliedChangeLimit(limit, description, tuple(assumed))


# Children. S25 reports, under 12 years, a maintenance dose of mean 274 µg/day, range 24 to
# 1199 µg/day: outside that range a child's daily dose needs a confirmation with a reason (the
# absolute range stays the drug's). The sources give NO separate titration or change limit for
# children (S46 S52 give per-origin limits only), so the per-origin change limits apply to them
# unchanged; none is invented here. "Very small children" screen at 25 µg (S45 S46 S48) without
# an age or weight threshold, so that is not applied from the age either.
CHILD_AGE_LIMIT_YEARS = 12.0  # S25: "under 12 years"
CHILD_DAILY_DOSE = Guardrail(
    field="daily_dose_ug",
    unit="µg/day",
    absolute_min=0.0,
    absolute_max=BACLOFEN.absolute_max_daily_dose_ug,
    recommended_min=24.0,  # S25: lowest reported under 12 years
    recommended_max=1199.0,  # S25: highest reported under 12 years
    source="S25, under 12 years",
)


def daily_dose_guardrail(age_years: float | None) -> Guardrail:
    """The daily-dose guardrail for a patient of this age (None: an adult's, not known)."""
    if age_years is not None and age_years < CHILD_AGE_LIMIT_YEARS:
        return CHILD_DAILY_DOSE
    return DAILY_DOSE


def rate_guardrail(min_flow_ml_per_day: float, max_flow_ml_per_day: float) -> Guardrail:
    """The basal flow rate a given pump model can deliver (its hardware range)."""
    return Guardrail(
        field="rate_ml_per_day",
        unit="mL/day",
        absolute_min=0.0,
        absolute_max=max_flow_ml_per_day,
        recommended_min=min_flow_ml_per_day,
        recommended_max=max_flow_ml_per_day,
        source="pump model",
    )


ALL_GUARDRAILS: tuple[Guardrail, ...] = (
    DAILY_DOSE,
    ROLLING_24H_DOSE,
    BOLUS_DOSE,
    PATIENT_BOLUS_DOSE,
    PATIENT_BOLUS_PER_DAY,
    PATIENT_BOLUS_LOCKOUT,
    BOLUS_DURATION,
    LOW_RESERVOIR_ALARM,
)
