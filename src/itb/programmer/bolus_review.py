"""Review a clinician bolus before it is sent: the dose, its duration, the motor and the day.

The programmer's side of a clinician bolus, as :mod:`itb.programmer.programming` is for a
program: a list of checks, each with a verdict and a reason in words (no verdict without one).

- REFUSE: a dose of 0 or less or above the single-bolus maximum (``guardrails.BOLUS_DOSE``); a
  duration outside ``guardrails.BOLUS_DURATION``; a rate the motor cannot push on top of the
  program's fastest step (``itb.pump.bolus.headroom_ul_per_s``, the pump's own rule: the review
  names the shortest duration); the programmed daily dose plus the bolus above the absolute
  daily maximum (the patient's range: ``guardrails.daily_dose_guardrail``);
- WARN, needs a confirmation with a reason: a dose above the recommended single bolus, or the
  daily dose plus the bolus above the recommended daily maximum.

The pump checks the exact rolling 24 h total itself (delivered + bolus + basal still to come,
``Firmware.rolling_24h_ug``) and refuses beyond the maximum; the review's total is the day's
program plus the bolus, what the clinician can see before sending. Pure functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from itb.guardrails import BOLUS_DOSE, BOLUS_DURATION, Verdict, daily_dose_guardrail
from itb.programmer.program_history import normalized_program
from itb.programmer.programming import Check, Reviewed
from itb.pump.bolus import DEFAULT_BOLUS_DURATION_MIN, BolusSetting, headroom_ul_per_s
from itb.pump.hardware import PumpModel
from itb.therapy import Program
from itb.units import SECONDS_PER_MINUTE, UL_PER_ML

__all__ = ["DEFAULT_BOLUS_DURATION_MIN", "BolusReview", "bolus_token", "review_bolus"]


@dataclass(frozen=True, slots=True)
class BolusReview(Reviewed):
    """A clinician bolus as the programmer reviewed it, with every check."""

    dose_ug: float
    duration_min: float
    concentration_ug_per_ml: float
    program_daily_dose_ug: float
    checks: tuple[Check, ...]

    @property
    def volume_ml(self) -> float:
        return self.dose_ug / self.concentration_ug_per_ml

    @property
    def day_total_ug(self) -> float:
        """The day's programmed dose plus this bolus (the pump checks the exact window)."""
        return self.program_daily_dose_ug + self.dose_ug

    def words(self) -> str:
        """The dose as the confirmation shows it, in numbers, units and time."""
        return (
            f"a clinician bolus of {self.dose_ug:g} µg ({self.volume_ml:.4g} mL at "
            f"{self.concentration_ug_per_ml:g} µg/mL) over {self.duration_min:g} min, on top "
            f"of the programmed {self.program_daily_dose_ug:.4g} µg/day"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "dose_ug": self.dose_ug,
            "duration_min": self.duration_min,
            "volume_ml": round(self.volume_ml, 5),
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            "program_daily_dose_ug": round(self.program_daily_dose_ug, 2),
            "day_total_ug": round(self.day_total_ug, 2),
            "verdict": self.verdict.value,
            "needs_confirmation": self.needs_confirmation,
            "refused": self.refused,
            "checks": [c.to_dict() for c in self.checks],
            "confirmation": self.words(),
        }


def review_bolus(
    model: PumpModel,
    program: Program,
    concentration_ug_per_ml: float,
    dose_ug: float,
    duration_min: float | None = None,
    age_years: float | None = None,
) -> BolusReview:
    """Every check of a clinician bolus of ``dose_ug`` over ``duration_min`` (default
    :data:`DEFAULT_BOLUS_DURATION_MIN`) at the pump's concentration on its program."""
    minutes = DEFAULT_BOLUS_DURATION_MIN if duration_min is None else duration_min
    daily_ug = program.daily_dose_ug()
    checks = [
        _dose_check(dose_ug),
        _duration_check(minutes),
        *_motor_checks(model, program, concentration_ug_per_ml, dose_ug, minutes),
        _day_check(daily_ug, dose_ug, age_years),
    ]
    return BolusReview(dose_ug, minutes, concentration_ug_per_ml, daily_ug, tuple(checks))


def _dose_check(dose_ug: float) -> Check:
    limit = BOLUS_DOSE
    if not dose_ug > 0.0 or limit.verdict(dose_ug) is Verdict.REFUSE:
        return Check(
            "dose",
            Verdict.REFUSE,
            f"a bolus of {dose_ug:g} µg: allowed more than 0 up to {limit.absolute_max:g} µg",
        )
    if limit.verdict(dose_ug) is Verdict.WARN:
        return Check(
            "dose",
            Verdict.WARN,
            f"a bolus of {dose_ug:g} µg is above the usual largest single bolus of "
            f"{limit.recommended_max:g} µg (the largest screening dose)",
        )
    return Check("dose", Verdict.OK, f"{dose_ug:g} µg is within the usual single bolus")


def _duration_check(minutes: float) -> Check:
    limit = BOLUS_DURATION
    if limit.verdict(minutes) is Verdict.REFUSE:
        return Check(
            "duration",
            Verdict.REFUSE,
            f"{minutes:g} min: allowed {limit.absolute_min:g} to {limit.absolute_max:g} min",
        )
    return Check("duration", Verdict.OK, f"given over {minutes:g} min")


def _motor_checks(
    model: PumpModel, program: Program, concentration: float, dose_ug: float, minutes: float
) -> list[Check]:
    """The pump's own headroom rule; nothing to say for a dose or duration already refused."""
    if not (dose_ug > 0.0 and minutes > 0.0 and concentration > 0.0):
        return []
    setting = BolusSetting(model, concentration, program, 0.0, 0.0, 0.0)
    spare_ul_per_s = headroom_ul_per_s(setting)
    volume_ul = dose_ug / concentration * UL_PER_ML
    if spare_ul_per_s <= 0.0:
        return [Check("motor", Verdict.REFUSE, "the program already runs the pump at its maximum")]
    if volume_ul / (minutes * SECONDS_PER_MINUTE) > spare_ul_per_s:
        shortest_min = volume_ul / spare_ul_per_s / SECONDS_PER_MINUTE
        return [
            Check(
                "motor",
                Verdict.REFUSE,
                f"{minutes:g} min is too short for {dose_ug:g} µg at {concentration:g} µg/mL on "
                f"top of the program: the pump needs at least {_round_up_tenth(shortest_min)} min",
            )
        ]
    return [Check("motor", Verdict.OK, "the pump can push it on top of the program")]


def _round_up_tenth(minutes: float) -> str:
    tenths = -(-minutes * 10 // 1)  # ceil without importing math for one use
    return f"{tenths / 10:g}"


def _day_check(daily_ug: float, dose_ug: float, age_years: float | None) -> Check:
    limit = daily_dose_guardrail(age_years)
    total_ug = daily_ug + max(dose_ug, 0.0)
    said = f"the programmed {daily_ug:.4g} µg/day plus this bolus makes {total_ug:.4g} µg in a day"
    verdict = limit.verdict(total_ug)
    if verdict is Verdict.REFUSE:
        return Check("day", Verdict.REFUSE, f"{said}: above the maximum {limit.absolute_max:g} µg")
    if total_ug > limit.recommended_max:
        return Check(
            "day",
            Verdict.WARN,
            f"{said}: above the usual daily maximum {limit.recommended_max:g} µg",
        )
    return Check("day", Verdict.OK, f"{said}: within the daily range")


def bolus_token(serial: str, program: Program, dose_ug: float, duration_min: float) -> str:
    """SHA-256 (hex) of the pump's serial, its program and the bolus: what was reviewed."""
    payload = {
        "serial": serial,
        "program": normalized_program(program),
        "dose_ug": _exact(dose_ug),
        "duration_min": _exact(duration_min),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _exact(value: float) -> str:
    """The float exactly (any size: a refused 1e22 µg still gets a token that says no)."""
    return float(value).hex()
