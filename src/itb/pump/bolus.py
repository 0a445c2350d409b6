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

A bolus on top of the basal gets what the motor has left above the program's fastest step
(:func:`headroom_ul_per_s`): the planner refuses a shorter duration naming the shortest one
(rounded up), and a program change while such a bolus runs must leave it that much
(:func:`check_program_beside_bolus`).

Patient boluses (S37): a lockout after each one and at most ``max_per_day`` in any rolling
24 h. :func:`patient_bolus_wait` is that rule, the one the firmware refuses with and the one
the patient's remote may call to show when the next bolus is allowed. The four settings are
refused when set if they contradict each other (:func:`check_patient_bolus_limits`) or could
never be given on the pump's program and concentration (:func:`check_patient_bolus_fits`).
"""

from __future__ import annotations

import math
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
    headroom = headroom_ul_per_s(setting)
    if rate > headroom:
        raise CommandRejected(
            "duration_min",
            f"{duration_s / 60:g} min is too short for {dose_ug:g} µg at {conc:g} µg/mL on top "
            f"of the basal rate; {_shortest_words(requested_ul, headroom)}",
        )
    return Bolus(kind, False, rate, requested_ul, requested_ul, setting.t_s, dose_ug)


def headroom_ul_per_s(setting: BolusSetting) -> float:
    """What the motor can push on top of the program's fastest step (µL/s): the one rule for
    a bolus on top of the basal, whether the bolus or the program comes second."""
    conc = setting.concentration_ug_per_ml
    return setting.max_ul_per_s - setting.program.profile.max_rate_ug_per_s / conc * UL_PER_ML


def check_program_beside_bolus(setting: BolusSetting, bolus: Bolus | None) -> None:
    """A new program (in ``setting``) while a bolus on top of the basal runs: the two together
    within what the motor can push, else :class:`CommandRejected` (field ``program``)."""
    if bolus is None or bolus.replaces_basal:
        return  # a bridge or priming bolus replaces the basal: the new one waits for its end
    headroom = headroom_ul_per_s(setting)
    if bolus.rate_ul_per_s > headroom * (1 + _RATE_SLACK):
        needs_ml_per_day = (
            (setting.max_ul_per_s - headroom + bolus.rate_ul_per_s) * SECONDS_PER_DAY / UL_PER_ML
        )
        raise CommandRejected(
            "program",
            f"a {bolus.kind.value} bolus is in progress: with this program the pump would need "
            f"{needs_ml_per_day:.3g} mL/day, it pushes at most "
            f"{setting.model.max_flow_ml_per_day:g}; wait for the bolus to end or stop it first",
        )


def _shortest_words(volume_ul: float, headroom_ul_per_s: float) -> str:
    """The shortest duration the motor's spare rate allows, rounded UP to a tenth of a minute
    (a duration rounded down would itself be refused)."""
    if headroom_ul_per_s <= 0.0:
        return "the basal rate already uses the pump's full flow: no bolus fits on top of it"
    shortest_min = volume_ul / headroom_ul_per_s / SECONDS_PER_MINUTE
    return f"at least {math.ceil(shortest_min * 10.0 - _RATE_SLACK) / 10.0:.1f} min"


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
def patient_bolus_enabled(limits: PatientBolusLimits | None) -> bool:
    """Patient boluses are on: a dose above 0 and at least one a day (either 0 turns them off)."""
    return limits is not None and limits.max_per_day > 0 and limits.dose_ug > 0.0


def reachable_per_day(lockout_min: float) -> int:
    """How many boluses a rolling 24 h can hold with ``lockout_min`` after each start: a bolus
    leaves the window 24 h after it, so ceil(24 h / lockout) (1440 min: one; 60 min: 24)."""
    return math.ceil(SECONDS_PER_DAY / (lockout_min * SECONDS_PER_MINUTE) - _RATE_SLACK)


def check_patient_bolus_limits(limits: PatientBolusLimits) -> None:
    """The four settings (S37) each within its guardrail, and, when enabled, meaningful
    together; else :class:`CommandRejected` naming the field. Needs no pump: the programmer
    asks it before sending, the firmware when it is set."""
    guard(guardrails.PATIENT_BOLUS_DOSE, limits.dose_ug, "dose_ug")
    guard(guardrails.BOLUS_DURATION, limits.duration_min, "duration_min")
    guard(guardrails.PATIENT_BOLUS_LOCKOUT, limits.lockout_min, "lockout_min")
    guard(guardrails.PATIENT_BOLUS_PER_DAY, float(limits.max_per_day), "max_per_day")
    if not patient_bolus_enabled(limits):
        return
    if limits.lockout_min < limits.duration_min:
        # a bolus cannot start while one runs: the real lockout would be the duration
        raise CommandRejected(
            "lockout_min",
            f"{limits.lockout_min:g} min is shorter than the bolus itself "
            f"({limits.duration_min:g} min); allowed {limits.duration_min:g} to "
            f"{guardrails.PATIENT_BOLUS_LOCKOUT.absolute_max:g} min",
        )
    reachable = reachable_per_day(limits.lockout_min)
    if limits.max_per_day > reachable:
        raise CommandRejected(
            "max_per_day",
            f"{limits.max_per_day} a day cannot be reached with a {limits.lockout_min:g} min "
            f"lockout (at most {reachable} fit in 24 h); allowed 0 to {reachable}",
        )


def check_patient_bolus_fits(setting: BolusSetting, limits: PatientBolusLimits) -> None:
    """An enabled patient bolus the pump could ever give on ``setting``'s program and
    concentration: planned by the gate's own planner (:func:`plan_bolus`: its duration on top of
    the fastest basal step, refused naming the shortest duration), and one dose plus the
    program's largest 24 h within the rolling maximum. Time and history do not enter."""
    if not patient_bolus_enabled(limits):
        return
    plan_bolus(setting, BolusRequest(BolusKind.PATIENT, limits.dose_ug, None, limits.duration_min))
    maximum_ug = guardrails.ROLLING_24H_DOSE.absolute_max
    basal_ug = setting.program.profile.max_window_ug(ROLLING_WINDOW_S)
    if basal_ug + limits.dose_ug > maximum_ug:
        raise CommandRejected(
            "dose_ug",
            f"{limits.dose_ug:g} µg on top of the program's {basal_ug:.1f} µg in 24 h would "
            f"exceed the {maximum_ug:g} µg maximum: the pump could never give it; allowed "
            f"up to {math.floor(max(maximum_ug - basal_ug, 0.0) * 10.0) / 10.0:.1f} µg",
        )


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
    if not patient_bolus_enabled(limits):
        return None
    assert limits is not None
    wait = patient_bolus_wait(limits, given_at_s, now_s).next_s
    return now_s if wait is None else max(wait, now_s)


def next_patient_bolus_at(
    limits: PatientBolusLimits | None, given_at: Sequence[datetime], now: datetime
) -> datetime | None:
    """:func:`next_patient_bolus_s` on the pump's clock, for callers that hold datetimes."""
    next_s = next_patient_bolus_s(limits, [to_pump_s(t) for t in given_at], to_pump_s(now))
    return None if next_s is None else from_pump_s(next_s)
