"""What the pump says about itself: one typed status shared by firmware, wire and clinic.

The firmware builds a :class:`PumpStatus`; the telemetry codec carries it field for field (its
wire keys are the field names, with ``battery`` and ``alarms`` nested); the programmer and the
clinic read it typed. Nobody turns it into a loose dict and parses it back, and nobody
re-derives what the pump itself predicts: the ERI and EOS dates the clinic shows are the
firmware's ``predicted_eri_at`` and ``predicted_eos_at``.

The small vocabularies the status speaks (:class:`Mode`, :class:`BolusKind`) live here, once,
so that the firmware, the wire and the clinic share one enum each.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from itb.pump.alarms import AlarmKind, Priority
from itb.therapy import Program


class Mode(str, enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"  # programmed off: minimum rate keeps the catheter open
    SAFE_STATE = "safe_state"  # settings lost: minimum rate until reprogrammed
    EOS = "eos"  # end of service: delivery has stopped for good


class BolusKind(str, enum.Enum):
    CLINICIAN = "clinician"
    BRIDGE = "bridge"  # replaces the basal while the old drug in the catheter is pushed out
    PRIMING = "priming"  # replaces the basal while an empty catheter is filled
    PATIENT = "patient"  # started by the patient's remote, within the clinician's limits


@dataclass(frozen=True, slots=True)
class PatientBolusLimits:
    """What the clinician allows the patient's remote to give."""

    dose_ug: float
    duration_min: float
    lockout_min: float
    max_per_day: int


@dataclass(frozen=True, slots=True)
class BatteryStatus:
    remaining_mah: float
    eri_at: datetime | None  # when the pump entered ERI (None: not yet)
    eos_at: datetime | None  # when the pump entered EOS (None: not yet)
    # The firmware's own prediction at the present flow; equals eri_at/eos_at once entered.
    predicted_eri_at: datetime | None = None
    predicted_eos_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlarmStatus:
    kind: AlarmKind
    priority: Priority
    at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class BolusStatus:
    kind: BolusKind
    dose_ug: float
    remaining_ml: float


@dataclass(frozen=True, slots=True)
class PumpStatus:
    serial: str
    model: str
    now: datetime
    mode: Mode
    program: Program | None  # None only from a pump in safe state that lost its program
    daily_dose_ug: float
    concentration_ug_per_ml: float | None  # None: the pump does not know (both banks lost)
    reservoir_ml: float
    low_reservoir_alarm_ml: float
    battery: BatteryStatus
    alarms: tuple[AlarmStatus, ...]
    delivered_ug: float
    delivered_ml: float
    received_ug: float
    bolus: BolusStatus | None
    patient_bolus_limits: PatientBolusLimits | None
    last_refill_at: datetime | None
    delivered_since_refill_ml: float
    # When the pump would next give the patient a bolus if nothing but time passes: now, a later
    # time (the lockout, the count per rolling day, the rolling 24 h dose, a running bolus or a
    # stall ending), or None when it would not without someone acting (not enabled, stopped,
    # EOS, empty reservoir...). The firmware's own checks (itb.pump.patient_gate, whose
    # ``outlook`` also says why not now).
    next_patient_bolus_at: datetime | None = None
