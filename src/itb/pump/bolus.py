"""Bolus planning: what a requested bolus means in volume and rate, and when the patient may
have the next one.

Theory of operation
-------------------
Four kinds (:class:`~itb.pump.status.BolusKind`), two families:

    kind        given as    on top of the basal?   rate
    clinician   dose_ug     yes                    dose over duration_min (default 1 min)
    patient     dose_ug     yes                    the clinician's limits (dose, duration)
    priming     volume_ml   no: replaces it        the model's maximum, or over duration_min
    bridge      volume_ml   no: replaces it        keeps the patient's µg/h while the old drug
                                                   in the tubing and catheter is pushed out

The volume of a bridge or priming bolus defaults to the dead space (pump tubing + catheter).
What a replacing bolus gives the patient is the column ahead of the new drug, not the new drug.

:func:`plan_bolus` is pure: it reads a :class:`BolusSetting` (what the pump knows at that
instant) and returns a :class:`Bolus` or raises :class:`CommandRejected`. The rolling 24 h
maximum is the firmware's to check, after planning, because it needs the pump's delivery history.

Patient boluses (S37): a lockout after each one and at most ``max_per_day`` in any rolling
24 h. :func:`patient_bolus_wait` is that rule, the one the firmware refuses with and the one
the patient's remote may call to show when the next bolus is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itb import guardrails
from itb.pump.checks import CommandRejected, guard
from itb.pump.hardware import PumpModel
from itb.pump.spans import ROLLING_WINDOW_S
from itb.pump.status import BolusKind, PatientBolusLimits
from itb.therapy import Program, from_pump_s, to_pump_s
from itb.units import SECONDS_PER_DAY, SECONDS_PER_MINUTE, UL_PER_ML

# A clinician or patient bolus without a duration is given over this long.
DEFAULT_BOLUS_DURATION_MIN = 1.0
# A bridge or priming bolus moves at most this volume (the dead space is well below it).
MAX_REPLACING_BOLUS_ML = 1.0
# A rate within this share of the model's maximum is at the maximum (float noise).
_RATE_SLACK = 1e-9
_TINY_UL = 1e-12


@dataclass(slots=True)
class Bolus:
    """A bolus in progress; ``remaining_ul`` counts down as the pump delivers it."""

    kind: BolusKind
    replaces_basal: bool
    rate_ul_per_s: float
    remaining_ul: float
    requested_ul: float
    started_s: float
    dose_ug: float

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "replaces_basal": self.replaces_basal,
            "rate_ul_per_s": self.rate_ul_per_s,
            "remaining_ul": self.remaining_ul,
            "requested_ul": self.requested_ul,
            "started_s": self.started_s,
            "dose_ug": self.dose_ug,
        }

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Bolus:
        return cls(
            BolusKind(s["kind"]),
            bool(s["replaces_basal"]),
            float(s["rate_ul_per_s"]),
            float(s["remaining_ul"]),
            float(s["requested_ul"]),
            float(s["started_s"]),
            float(s["dose_ug"]),
        )


@dataclass(frozen=True, slots=True)
class BolusSetting:
    """What the pump knows when a bolus is asked for."""

    model: PumpModel
    concentration_ug_per_ml: float
    program: Program
    t_s: float
    # The tubing and catheter set-up, and the drug it holds (what a replacing bolus pushes out).
    dead_space_ul: float
    dead_space_content_ug: float

    @property
    def max_ul_per_s(self) -> float:
        return self.model.max_flow_ml_per_day * UL_PER_ML / SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class BolusRequest:
    kind: BolusKind
    dose_ug: float | None = None
    volume_ml: float | None = None
    duration_min: float | None = None


def plan_bolus(setting: BolusSetting, request: BolusRequest) -> Bolus:
    """The bolus ``request`` asks for, or :class:`CommandRejected` naming the field."""
    if request.kind in (BolusKind.CLINICIAN, BolusKind.PATIENT):
        return _plan_dose_bolus(setting, request)
    return _plan_replacing_bolus(setting, request)


def _plan_dose_bolus(setting: BolusSetting, request: BolusRequest) -> Bolus:
    kind, dose_ug, duration_min = request.kind, request.dose_ug, request.duration_min
    if dose_ug is None or request.volume_ml is not None:
        raise CommandRejected("dose_ug", f"a {kind.value} bolus is given as dose_ug")
    limit = guardrails.PATIENT_BOLUS_DOSE if kind is BolusKind.PATIENT else guardrails.BOLUS_DOSE
    guard(limit, dose_ug, "dose_ug")
    if dose_ug <= 0.0:
        raise CommandRejected("dose_ug", f"{dose_ug:g} µg; must be more than 0")
    guard(
        guardrails.BOLUS_DURATION,
        DEFAULT_BOLUS_DURATION_MIN if duration_min is None else duration_min,
        "duration_min",
    )
    conc = setting.concentration_ug_per_ml
    duration_s = (duration_min or DEFAULT_BOLUS_DURATION_MIN) * SECONDS_PER_MINUTE
    requested_ul = dose_ug / conc * UL_PER_ML
    rate = requested_ul / duration_s
    basal_max = setting.program.profile.max_rate_ug_per_s / conc * UL_PER_ML
    if rate + basal_max > setting.max_ul_per_s:
        shortest_min = requested_ul / (setting.max_ul_per_s - basal_max) / SECONDS_PER_MINUTE
        raise CommandRejected(
            "duration_min",
            f"{duration_s / 60:g} min is too short for {dose_ug:g} µg at "
            f"{conc:g} µg/mL on top of the basal rate; at least {shortest_min:.1f} min",
        )
    return Bolus(kind, False, rate, requested_ul, requested_ul, setting.t_s, dose_ug)


def _plan_replacing_bolus(setting: BolusSetting, request: BolusRequest) -> Bolus:
    kind = request.kind
    if request.dose_ug is not None:
        raise CommandRejected("dose_ug", f"a {kind.value} bolus is given as volume_ml")
    dead_space_ul = setting.dead_space_ul
    requested_ul = dead_space_ul if request.volume_ml is None else request.volume_ml * UL_PER_ML
    if not (0.0 < requested_ul <= MAX_REPLACING_BOLUS_ML * UL_PER_ML):
        raise CommandRejected(
            "volume_ml", f"{requested_ul / UL_PER_ML:g} mL; allowed above 0 up to 1 mL"
        )
    rate = _replacing_rate(setting, kind, requested_ul, request.duration_min)
    if not (0.0 < rate <= setting.max_ul_per_s * (1 + _RATE_SLACK)):
        raise CommandRejected(
            "duration_min",
            f"this needs {rate * SECONDS_PER_DAY / UL_PER_ML:.3g} mL/day; "
            f"{setting.model.name} delivers at most {setting.model.max_flow_ml_per_day:g} mL/day",
        )
    # what reaches the patient is the column ahead of the new drug, not the new drug
    content_ug = setting.dead_space_content_ug * min(
        requested_ul / max(dead_space_ul, _TINY_UL), 1.0
    )
    return Bolus(kind, True, rate, requested_ul, requested_ul, setting.t_s, content_ug)


def _replacing_rate(
    setting: BolusSetting, kind: BolusKind, requested_ul: float, duration_min: float | None
) -> float:
    if duration_min is not None:
        return requested_ul / (duration_min * SECONDS_PER_MINUTE)
    if kind is BolusKind.PRIMING:
        return setting.max_ul_per_s
    # bridge: keep the patient's µg/h while the old drug in the tubing is pushed out
    basal_ug_per_s = setting.program.mean_daily_dose_ug() / SECONDS_PER_DAY
    if basal_ug_per_s <= 0.0:
        raise CommandRejected("duration_min", "needed when the program delivers nothing")
    content_ug = setting.dead_space_content_ug * requested_ul / max(setting.dead_space_ul, _TINY_UL)
    return requested_ul / max(content_ug / basal_ug_per_s, 1.0)


# ---------------------------------------------------------------------- patient bolus rule
@dataclass(frozen=True, slots=True)
class PatientBolusWait:
    """Where the patient stands against the lockout and the daily count at one instant."""

    given_in_window_s: tuple[float, ...]  # start times within the last 24 h, oldest first
    lockout_until_s: float | None  # the lockout since the last bolus runs until then
    count_frees_at_s: float | None  # max_per_day are in the window until then

    @property
    def next_s(self) -> float | None:
        """When the rule next allows a bolus; None: allowed now."""
        waits = [t for t in (self.lockout_until_s, self.count_frees_at_s) if t is not None]
        return max(waits) if waits else None


def patient_bolus_wait(
    limits: PatientBolusLimits, given_at_s: Sequence[float], now_s: float
) -> PatientBolusWait:
    """The lockout and rolling-24 h count for a patient bolus at ``now_s`` (pump seconds).
    ``given_at_s`` are the start times of earlier patient boluses, oldest first."""
    in_window = tuple(t for t in given_at_s if t > now_s - ROLLING_WINDOW_S)
    lockout_s = limits.lockout_min * SECONDS_PER_MINUTE
    lockout_until = None
    if in_window and now_s - in_window[-1] < lockout_s:
        lockout_until = in_window[-1] + lockout_s
    count_frees = None
    if limits.max_per_day > 0 and len(in_window) >= limits.max_per_day:
        # the bolus that must leave the window before one more is allowed
        count_frees = in_window[len(in_window) - limits.max_per_day] + ROLLING_WINDOW_S
    return PatientBolusWait(in_window, lockout_until, count_frees)


def patient_bolus_refusal(
    limits: PatientBolusLimits, wait: PatientBolusWait, now_s: float
) -> tuple[str, float] | None:
    """Why the lockout or the daily count refuses a bolus at ``now_s`` and when that ends
    (the lockout first, then the count); None when they allow one."""
    if wait.lockout_until_s is not None:
        wait_min = (wait.lockout_until_s - now_s) / SECONDS_PER_MINUTE
        return f"lockout: next bolus allowed in {wait_min:.0f} min", wait.lockout_until_s
    if wait.count_frees_at_s is not None:
        return f"{limits.max_per_day} boluses already in the last 24 h", wait.count_frees_at_s
    return None


def check_patient_bolus(
    limits: PatientBolusLimits, given_at_s: Sequence[float], now_s: float
) -> PatientBolusWait:
    """The rule as the firmware refuses with it: the lockout first, then the daily count."""
    wait = patient_bolus_wait(limits, given_at_s, now_s)
    refusal = patient_bolus_refusal(limits, wait, now_s)
    if refusal is not None:
        raise CommandRejected("patient_bolus", refusal[0])
    return wait


def next_patient_bolus_s(
    limits: PatientBolusLimits | None, given_at_s: Sequence[float], now_s: float
) -> float | None:
    """When the lockout and daily count next allow a patient bolus (``now_s`` if they do now);
    None when patient boluses are not enabled."""
    if limits is None or limits.max_per_day == 0:
        return None
    wait = patient_bolus_wait(limits, given_at_s, now_s).next_s
    return now_s if wait is None else max(wait, now_s)


def next_patient_bolus_at(
    limits: PatientBolusLimits | None, given_at: Sequence[datetime], now: datetime
) -> datetime | None:
    """:func:`next_patient_bolus_s` on the pump's clock, for callers that hold datetimes."""
    next_s = next_patient_bolus_s(limits, [to_pump_s(t) for t in given_at], to_pump_s(now))
    return None if next_s is None else from_pump_s(next_s)
