"""May the patient have a bolus now, and if not, when? One rule for the command and the status.

Theory of operation
-------------------
A bolus passes these checks in this order; the first that fails is the refusal. After
``enabled``, six are the pump's ability to deliver (a clinician's bolus asks them too); the rest
are the patient's own limits (S37) and the rolling 24 h maximum.

    check             refuses when                                  time alone ends it?
    enabled           no patient limits, max_per_day or dose 0      no
    concentration     lost with both memory banks                   no (a refill)
    end of service    the pump is in EOS                            no
    mode              stopped or safe state                         no (resume, reprogram)
    reservoir         the estimate is empty                         no (a refill)
    motor             a stall                                       at its recovery; valve: no
    bolus             a bolus is running                            at its end
    lockout/count     the lockout, max_per_day in the rolling 24 h  at the lockout's end, when
                                                                    the oldest leaves the window
    plan              the dose cannot be given on top of the basal  no
    rolling maximum   24 h total would exceed its maximum           when enough leaves the
                                                                    window (searched)

``Firmware.patient_bolus`` raises the first refusal (:func:`admit`). The status asks the same
checks (:func:`outlook`): available now when none refuses; otherwise the time at which none
would, if nothing but time passes (the pump is projected forward on a copy, so the answer is
the real rule at that time, not a re-derivation); None when a refusal time does not end.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from itb.pump import persistence
from itb.pump.battery import EriPredictor
from itb.pump.bolus import (
    Bolus,
    BolusRequest,
    patient_bolus_enabled,
    patient_bolus_refusal,
    patient_bolus_wait,
)
from itb.pump.checks import CommandRejected
from itb.pump.eventlog import EventLog
from itb.pump.modes import BOLUS_MODES
from itb.pump.spans import ROLLING_WINDOW_S
from itb.pump.status import BolusKind, Mode

if TYPE_CHECKING:
    from itb.pump.firmware import Firmware

NOT_ENABLED = "the clinician has not enabled patient boluses"
ROLLING_FIELD = "rolling_24h_dose_ug"
# The rolling-maximum search stops at this precision (the outlook reports whole seconds).
_SEARCH_PRECISION_S = 1.0
# A projection jumps at most this many times (one per time-bound refusal it waits out).
_MAX_JUMPS = 8


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str
    reason: str
    until_s: float | None  # when time alone ends it (pump seconds); None: it does not


@dataclass(frozen=True, slots=True)
class Outlook:
    """What the pump would do with a patient bolus: ``next_s`` (pump seconds) is when it would
    give one (now, later, or None: not without someone acting); ``refusal`` why not now."""

    next_s: float | None
    refusal: str | None


# ---------------------------------------------------------------------- delivering
def _concentration_known(fw: Firmware, field: str) -> Refusal | None:
    try:
        persistence.require_known_concentration(fw, field)
    except CommandRejected as err:
        return Refusal(err.field, err.reason, None)
    return None


def _end_of_service(fw: Firmware, field: str) -> Refusal | None:
    if fw.mode is Mode.EOS:
        return Refusal(field, "the pump has reached end of service", None)
    return None


def _mode(fw: Firmware, field: str) -> Refusal | None:
    if fw.mode not in BOLUS_MODES:
        return Refusal(field, f"the pump is {fw.mode.value}; resume or reprogram first", None)
    return None


def _reservoir(fw: Firmware, field: str) -> Refusal | None:
    if fw.reservoir_ul <= 0.0:
        return Refusal(field, "the reservoir is empty; refill first", None)
    return None


def _motor(fw: Firmware, field: str) -> Refusal | None:
    until = fw.stall_until_s
    if until is not None and fw.t_s < until:
        return Refusal(field, "the pump motor is stalled", until if math.isfinite(until) else None)
    return None


def _no_bolus(fw: Firmware, field: str) -> Refusal | None:
    bolus = fw.bolus
    if bolus is None:
        return None
    ends_s = fw.t_s + bolus.remaining_ul / bolus.rate_ul_per_s
    return Refusal(field, f"a {bolus.kind.value} bolus is in progress", ends_s)


DELIVERING: tuple[Callable[[Firmware, str], Refusal | None], ...] = (
    _concentration_known,
    _end_of_service,
    _mode,
    _reservoir,
    _motor,
    _no_bolus,
)


def delivering_refusal(fw: Firmware, field: str) -> Refusal | None:
    """The first reason the pump cannot start a bolus now (any kind), or None."""
    for check in DELIVERING:
        refusal = check(fw, field)
        if refusal is not None:
            return refusal
    return None


# ---------------------------------------------------------------------- the patient's bolus
def _first_refusal(fw: Firmware) -> tuple[Refusal | None, Bolus | None, tuple[float, ...]]:
    """The first check that refuses a patient bolus now; or the planned bolus and the start
    times of the earlier ones still in the rolling window."""
    limits = fw.patient_limits
    if limits is None or not patient_bolus_enabled(limits):
        return Refusal("patient_bolus", NOT_ENABLED, None), None, ()
    refusal = delivering_refusal(fw, "patient_bolus")
    if refusal is not None:
        return refusal, None, ()
    wait = patient_bolus_wait(limits, fw.patient_bolus_times_s, fw.t_s)
    limit_refusal = patient_bolus_refusal(limits, wait, fw.t_s)
    if limit_refusal is not None:
        return Refusal("patient_bolus", *limit_refusal), None, ()
    request = BolusRequest(BolusKind.PATIENT, limits.dose_ug, None, limits.duration_min)
    try:
        bolus = fw.plan_bolus(request)
    except CommandRejected as err:
        return Refusal(err.field, err.reason, None), None, ()
    return None, bolus, wait.given_in_window_s


def admit(fw: Firmware) -> tuple[Bolus, tuple[float, ...]]:
    """The patient bolus the pump gives now, and the earlier ones still in the window; or
    :class:`CommandRejected` with the first refusal."""
    refusal, bolus, given = _first_refusal(fw)
    if refusal is not None:
        raise CommandRejected(refusal.field, refusal.reason)
    assert bolus is not None
    return bolus, given


def outlook(fw: Firmware) -> Outlook:
    """What :func:`admit` would answer now, and when it would next give a bolus if nothing but
    time passes. The pump itself is not changed: later times are asked of a projected copy."""
    first, _, _ = _first_refusal(fw)
    if first is None:
        return Outlook(fw.t_s, None)
    refusal: Refusal | None = first
    at = fw
    for _ in range(_MAX_JUMPS):
        assert refusal is not None
        until = _rolling_frees_s(at) if refusal.field == ROLLING_FIELD else refusal.until_s
        if until is None:
            return Outlook(None, first.reason)
        # a whole second at or after it: a time the patient can be told, never too early
        until = float(math.ceil(until))
        at = project(fw, until)
        refusal, _, _ = _first_refusal(at)
        if refusal is None:
            return Outlook(until, first.reason)
    return Outlook(None, first.reason)


def project(fw: Firmware, t_s: float) -> Firmware:
    """A copy of the pump advanced to ``t_s`` with no command on the way (the pump itself and
    its world are not touched; the copy's log is thrown away)."""
    shadow = dataclasses.replace(
        fw,
        world=copy.deepcopy(fw.world),
        bolus=copy.copy(fw.bolus),
        alarms=dict(fw.alarms),
        patient_bolus_times_s=list(fw.patient_bolus_times_s),
        log=EventLog(capacity=64),
        recent=deque(fw.recent),
        received_spans=None,
        _eri=EriPredictor(),
    )
    shadow.advance_s(t_s)
    return shadow


def _rolling_frees_s(fw: Firmware) -> float | None:
    """The first whole second at which the rolling 24 h maximum no longer refuses the patient's
    dose, if nothing but time passes; None when it still would a full window later.

    What was given leaves the window 24 h after it was delivered: the candidate times are the
    ends of the delivered spans plus 24 h. Between the last refusing candidate and the first
    allowing one, bisection finds the time to a second (:func:`outlook` rounds it up)."""
    candidates = sorted(
        {s.end_s + ROLLING_WINDOW_S for s in fw.recent if s.end_s + ROLLING_WINDOW_S > fw.t_s}
        | {fw.t_s + ROLLING_WINDOW_S}
    )
    low_s = fw.t_s
    for high_s in candidates:
        if _rolling_allows(fw, high_s):
            while high_s - low_s > _SEARCH_PRECISION_S:
                mid_s = (low_s + high_s) / 2.0
                low_s, high_s = (low_s, mid_s) if _rolling_allows(fw, mid_s) else (mid_s, high_s)
            return high_s
        low_s = high_s
    return None


def _rolling_allows(fw: Firmware, t_s: float) -> bool:
    refusal, _, _ = _first_refusal(project(fw, t_s))
    return refusal is None or refusal.field != ROLLING_FIELD
