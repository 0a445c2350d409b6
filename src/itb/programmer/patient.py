"""What the patient sees at home: days until the refill, the warning signs of withdrawal, and
whether a patient-activated bolus is available now.

Theory of operation. Whether a patient bolus is allowed is the firmware's rule, not this
module's: after an interrogation the remote shows the pump's own answer,
``PumpStatus.next_patient_bolus_at`` (:func:`availability_from_status`). Offline, between
interrogations, :func:`patient_bolus_availability` asks the same rule
(:func:`itb.pump.bolus.patient_bolus_wait`: the lockout and the count per rolling 24 h) with the
bolus times the remote knows, and estimates the rolling 24 h total from the basal daily dose; the
pump checks the exact total (delivered, this bolus and the basal to come) when asked.

Pure functions: today and now are passed in. The refill date comes from
:func:`itb.programmer.refill.plan_refill`. Note that the valve-gated pump's patient controller
is not labelled for baclofen boluses (S38); the availability rule is the same four settings (S37).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from itb.errors import InputError
from itb.guardrails import (
    BOLUS_DURATION,
    PATIENT_BOLUS_DOSE,
    PATIENT_BOLUS_LOCKOUT,
    PATIENT_BOLUS_PER_DAY,
    ROLLING_24H_DOSE,
)
from itb.programmer.refill import require_range
from itb.pump.bolus import (
    check_patient_bolus_limits,
    patient_bolus_enabled,
    patient_bolus_wait,
)
from itb.pump.spans import ROLLING_WINDOW_S
from itb.pump.status import PatientBolusLimits, PumpStatus
from itb.therapy import from_pump_s, to_pump_s
from itb.units import SECONDS_PER_MINUTE

# The project seed's list of withdrawal warning signs, in plain words (see also S54 to S57).
WITHDRAWAL_SIGNS: tuple[str, ...] = (
    "severe muscle stiffness or spasms",
    "itchy skin without a rash",
    "severe discomfort or pain",
    "sweating",
    "low-grade fever",
    "dizziness",
    "nausea",
    "seizures",
)

WITHDRAWAL_ADVICE = (
    "If you notice any of these, call your ITB clinic today. If you have a high fever, "
    "confusion or a seizure, call emergency services: baclofen withdrawal can be life-threatening."
)

# Rolling window for "boluses per day": a rolling 24 h, not the calendar day, so that two
# sessions either side of midnight count together (the firmware's own window).
BOLUS_WINDOW = timedelta(seconds=ROLLING_WINDOW_S)


@dataclass(frozen=True, slots=True)
class RefillCountdown:
    today: date
    next_refill_on: date
    days_until_refill: int
    message: str
    withdrawal_signs: tuple[str, ...] = WITHDRAWAL_SIGNS
    withdrawal_advice: str = WITHDRAWAL_ADVICE

    def to_dict(self) -> dict[str, object]:
        return {
            "today": self.today.isoformat(),
            "next_refill_on": self.next_refill_on.isoformat(),
            "days_until_refill": self.days_until_refill,
            "message": self.message,
            "withdrawal_signs": list(self.withdrawal_signs),
            "withdrawal_advice": self.withdrawal_advice,
        }


def refill_countdown(today: date, next_refill_on: date) -> RefillCountdown:
    days = (next_refill_on - today).days
    if days > 1:
        message = f"Your pump refill is due in {days} days, on {next_refill_on.isoformat()}."
    elif days == 1:
        message = f"Your pump refill is due tomorrow, {next_refill_on.isoformat()}."
    elif days == 0:
        message = "Your pump refill is due today."
    else:
        message = (
            f"Your pump refill is {-days} day{'s' if days < -1 else ''} overdue. "
            "Call your ITB clinic today: an empty pump causes withdrawal."
        )
    return RefillCountdown(today, next_refill_on, days, message)


@dataclass(frozen=True, slots=True)
class PatientBolusSettings:
    """The clinician's settings (S37); each is checked against its guardrail."""

    dose_ug: float
    max_per_day: int
    lockout_min: float
    duration_min: float = BOLUS_DURATION.absolute_min

    def __post_init__(self) -> None:
        PATIENT_BOLUS_DOSE.check(self.dose_ug)
        PATIENT_BOLUS_PER_DAY.check(float(self.max_per_day))
        PATIENT_BOLUS_LOCKOUT.check(self.lockout_min)
        BOLUS_DURATION.check(self.duration_min)
        # the settings together, as the pump refuses them (a lockout shorter than the bolus, a
        # count per day the lockout cannot reach)
        check_patient_bolus_limits(self.limits)

    @property
    def limits(self) -> PatientBolusLimits:
        """The same settings as the pump holds them."""
        return PatientBolusLimits(
            self.dose_ug, self.duration_min, self.lockout_min, self.max_per_day
        )


@dataclass(frozen=True, slots=True)
class BolusAvailability:
    available: bool
    reason: str
    boluses_left: int | None  # in the rolling 24 h; None when only the pump's answer is known
    # None when available now, not enabled, or never at this basal dose.
    next_available_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "available": self.available,
            "reason": self.reason,
            "boluses_left": self.boluses_left,
            "next_available_at": (
                None if self.next_available_at is None else self.next_available_at.isoformat()
            ),
        }


NOT_ENABLED = "patient bolus is not enabled by your clinic"


def availability_from_status(now: datetime, status: PumpStatus) -> BolusAvailability:
    """The pump's own answer, read at an interrogation: ``status.next_patient_bolus_at``."""
    limits = status.patient_bolus_limits
    next_at = status.next_patient_bolus_at
    if limits is None or not patient_bolus_enabled(limits):
        return BolusAvailability(False, NOT_ENABLED, 0, None)
    if next_at is None:
        # Enabled, but the pump would refuse until someone acts (stopped, end of service, empty
        # reservoir, a stalled motor...): time alone will not bring the bolus back.
        return BolusAvailability(
            False,
            f"the pump cannot give a bolus now (it is {status.mode.value.replace('_', ' ')}"
            f", {status.reservoir_ml:.1f} mL in the reservoir): call your clinic",
            None,
            None,
        )
    if next_at <= now:
        return BolusAvailability(
            True, f"a {limits.dose_ug:g} µg bolus is available (the pump's answer)", None, None
        )
    return BolusAvailability(
        False,
        f"the pump allows the next bolus at {next_at:%Y-%m-%d %H:%M} (its lockout, "
        f"{limits.max_per_day} a day and its 24-hour maximum)",
        None,
        next_at,
    )


def patient_bolus_availability(
    now: datetime,
    settings: PatientBolusSettings,
    recent_boluses: Sequence[datetime],
    basal_daily_dose_ug: float,
) -> BolusAvailability:
    """May the patient take a bolus now? ``recent_boluses`` are the start times of earlier ones.

    Three limits: the lockout since the last bolus and the number per rolling 24 h (the
    firmware's rule), and the rolling 24 h total (basal + boluses) against the absolute daily
    maximum (estimated from the basal daily dose).
    """
    require_range(
        "basal_daily_dose_ug", basal_daily_dose_ug, 0.0, ROLLING_24H_DOSE.absolute_max, "µg/day"
    )
    _check_not_after(now, recent_boluses)
    if not patient_bolus_enabled(settings.limits):
        return BolusAvailability(False, NOT_ENABLED, 0, None)

    given_s = sorted(to_pump_s(t) for t in recent_boluses)
    wait = patient_bolus_wait(settings.limits, given_s, to_pump_s(now))
    in_window = [from_pump_s(t) for t in wait.given_in_window_s]
    left = max(0, settings.max_per_day - len(in_window))
    waits: list[tuple[datetime | None, str]] = []
    if wait.lockout_until_s is not None:
        ago_min = (now - in_window[-1]).total_seconds() / SECONDS_PER_MINUTE
        waits.append(
            (
                from_pump_s(wait.lockout_until_s),
                f"the last bolus was {ago_min:.0f} min ago; "
                f"wait {settings.lockout_min:g} min between boluses",
            )
        )
    if wait.count_frees_at_s is not None:
        waits.append(
            (
                from_pump_s(wait.count_frees_at_s),
                f"{len(in_window)} of {settings.max_per_day} boluses used in the last 24 h",
            )
        )
    rolling = _rolling_total_wait(settings, in_window, basal_daily_dose_ug)
    if rolling is not None:
        waits.append(rolling)
    if waits:
        times = [w[0] for w in waits]
        until = None if any(t is None for t in times) else max(t for t in times if t is not None)
        return BolusAvailability(False, "; ".join(w[1] for w in waits), left, until)
    return BolusAvailability(
        True,
        f"a {settings.dose_ug:g} µg bolus is available; {left} of {settings.max_per_day} left "
        "in the last 24 h",
        left,
        None,
    )


def _check_not_after(now: datetime, recent_boluses: Sequence[datetime]) -> None:
    for i, when in enumerate(recent_boluses):
        if when > now:
            raise InputError(
                f"recent_boluses[{i}]",
                "a bolus cannot come from the future",
                f"recent_boluses[{i}]={when.isoformat()} is after now={now.isoformat()}: "
                "a bolus cannot come from the future",
            )


def _rolling_total_wait(
    settings: PatientBolusSettings, in_window: list[datetime], basal_daily_dose_ug: float
) -> tuple[datetime | None, str] | None:
    """The estimate of the rolling 24 h total with one more bolus; None when within the max."""
    total_ug = basal_daily_dose_ug + (len(in_window) + 1) * settings.dose_ug
    if total_ug <= ROLLING_24H_DOSE.absolute_max:
        return None
    # Room comes back as earlier boluses leave the window: the k oldest must leave; if the
    # basal plus one bolus is already too much, never at this basal.
    excess_ug = total_ug - ROLLING_24H_DOSE.absolute_max
    must_leave = math.ceil(excess_ug / settings.dose_ug)
    freed_at = in_window[must_leave - 1] + BOLUS_WINDOW if must_leave <= len(in_window) else None
    return (
        freed_at,
        f"one more {settings.dose_ug:g} µg bolus would make {total_ug:g} µg in 24 h, "
        f"above the {ROLLING_24H_DOSE.absolute_max:g} µg maximum (S25)",
    )
