"""A concentration change at a refill (H33): a physician's, with the bridge and the program.

Theory of operation. After a refill at another concentration, the pump's tubing and the catheter
(the dead space) still hold the old drug. Pushed at the new volume rate it reaches the patient
at the wrong dose for hours: under-dosed when the new concentration is higher, over-dosed when
it is lower (:mod:`itb.programmer.bridge` computes both). So a refill whose concentration
differs from the one read back from the pump:

1. needs the physician role (the clinic's ``prescribe`` permission): a concentration change is
   a prescription, not a refill step. The clinic records the physician who performs it; a
   nurse's refill at another concentration is refused, naming ``concentration_ug_per_ml``.
   (Chosen over "a physician's order typed in by the nurse": the clinic cannot verify a typed
   name, and a physician's own log-in is what the audit log can prove.)
2. shows the dose the patient would get without a bridge and during it (``BridgePlan``), and
   needs ``confirm_concentration_change``; without it nothing is sent or stored and the answer
   carries the plan (:class:`ConcentrationChangeRequired`);
3. reviews the current program at the new concentration (the pump's flow range at the new
   volume rate) and refuses it if a check refuses;
4. sends, in one command visit: the refill, the bridge bolus (the dead space at the old volume
   rate, over the bridge's duration) and the program again at the new concentration. Every
   check ran before anything left; if the pump refuses the bridge or the program after the
   refill was applied, the refill is still recorded (it happened) and the visit says what was
   not given (``bridge_sent`` / ``program_sent`` false, with the pump's reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import auth
from itb.clinic.models import Catheter, Pump, User
from itb.clinic.pumps import PumpCommandRefusedError, PumpLink
from itb.clinic.services.lookups import current_program
from itb.errors import InputError
from itb.guardrails import Verdict
from itb.programmer.bridge import BridgePlan, plan_concentration_change
from itb.programmer.programming import ReviewContext, review_program
from itb.pump.hardware import pump_model
from itb.therapy import Program, program_from_dict
from itb.units import SECONDS_PER_HOUR, SECONDS_PER_MINUTE


class ConcentrationChangeRequired(InputError):
    """A concentration change not yet confirmed: nothing sent, nothing stored (HTTP 422). The
    plan says what the patient would get without the bridge and during it."""

    def __init__(self, plan: BridgePlan) -> None:
        self.plan = plan
        reason = (
            f"a concentration change {plan.old_concentration_ug_per_ml:g} → "
            f"{plan.new_concentration_ug_per_ml:g} µg/mL sends a bridge bolus and the program at "
            "the new concentration; confirm it (confirm_concentration_change): "
            + "; ".join(plan.reasons)
        )
        super().__init__("confirm_concentration_change", reason)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (ConcentrationChangeRequired, (self.plan,))


@dataclass(frozen=True, slots=True)
class ConcentrationChange:
    """A checked, confirmed change: the bridge to send and the program to send again."""

    plan: BridgePlan
    program: Program

    @property
    def bridge_duration_min(self) -> float:
        return self.plan.bridge_duration_h * SECONDS_PER_HOUR / SECONDS_PER_MINUTE

    def to_dict(self) -> dict[str, Any]:
        return {
            "bridge": self.plan.to_dict(),
            "bridge_volume_ml": round(self.plan.dead_space_ml, 4),
            "bridge_duration_min": round(self.bridge_duration_min, 1),
            "program": self.program.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """What the refill asks: the concentration read from the pump, the one refilled."""

    old_concentration_ug_per_ml: float | None
    new_concentration_ug_per_ml: float
    confirmed: bool


def is_change(request: ChangeRequest) -> bool:
    old = request.old_concentration_ug_per_ml
    return old is not None and old != request.new_concentration_ug_per_ml


def check_prescriber(user: User, request: ChangeRequest) -> None:
    """A concentration change is the physician's (the ``prescribe`` permission)."""
    if is_change(request) and not auth.authorize(user.role, "prescribe"):
        reason = (
            f"a concentration change {request.old_concentration_ug_per_ml:g} → "
            f"{request.new_concentration_ug_per_ml:g} µg/mL needs a physician (bridge bolus and "
            f"program at the new concentration); refill at "
            f"{request.old_concentration_ug_per_ml:g} µg/mL or ask a physician"
        )
        raise InputError("concentration_ug_per_ml", reason)


def plan_change(
    db: Session, pump: Pump, user: User, request: ChangeRequest
) -> ConcentrationChange | None:
    """None when the concentration stays; else every check of the module's steps 1 to 3."""
    if not is_change(request):
        return None
    check_prescriber(user, request)
    old = request.old_concentration_ug_per_ml
    assert old is not None  # is_change
    current = current_program(db, pump)
    if current is None or not pump.daily_dose_ug:
        raise InputError(
            "concentration_ug_per_ml",
            "a concentration change needs the pump's running program (none delivering)",
        )
    program = program_from_dict(json.loads(current.program_json))
    plan = plan_concentration_change(
        pump_model(pump.model),
        _catheter_volume_ml(db, pump),
        old,
        request.new_concentration_ug_per_ml,
        program.daily_dose_ug(),
    )
    _review_at_new_concentration(pump, program, request.new_concentration_ug_per_ml)
    if not request.confirmed:
        raise ConcentrationChangeRequired(plan)
    return ConcentrationChange(plan, program)


def _catheter_volume_ml(db: Session, pump: Pump) -> float:
    volume = db.execute(
        select(Catheter.volume_ml)
        .where(Catheter.patient_id == pump.patient_id)
        .order_by(Catheter.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if volume is None:
        raise InputError("concentration_ug_per_ml", "no catheter on record: the bridge needs it")
    return float(volume)


def _review_at_new_concentration(pump: Pump, program: Program, concentration: float) -> None:
    """The program's volume rate at the new concentration must be one the pump delivers."""
    review = review_program(
        pump_model(pump.model), program, program, concentration, ReviewContext()
    )
    refused = review.reasons(Verdict.REFUSE)
    if refused:
        raise InputError(
            "concentration_ug_per_ml", "at the new concentration: " + "; ".join(refused)
        )


def send_bridge_and_program(link: PumpLink, change: ConcentrationChange) -> dict[str, Any]:
    """After the refill: the bridge bolus, then the program again. A refusal is recorded, not
    raised: the refill was applied and must be recorded (the module's step 4)."""
    sent: dict[str, Any] = {"bridge_sent": False, "program_sent": False}
    try:
        link.bridge(change.plan.dead_space_ml, change.bridge_duration_min)
        sent["bridge_sent"] = True
        link.set_program(change.program)
        sent["program_sent"] = True
    except PumpCommandRefusedError as exc:
        sent["not_given_reason"] = f"the pump refused: {exc}"
    return sent
