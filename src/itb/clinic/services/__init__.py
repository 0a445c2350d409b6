"""The clinic's units of work, one module per job; this package re-exports the public API.

========================  ====================================================================
``lookups``               the rows every service starts from; a visit, a program version
``history``               pump history stored idempotently; the pump's last state, due dates
``commands``              the crash-safe command visit: both commits around a pump command,
                          settling a visit left pending from the pump's event log
``interrogation``         one interrogation = one telemetry session
``programming``           a program change: parse, review, confirm, send
``refill_rules``          a refill's checks and its record
``refill``                a refill visit
``screening``             screening-trial doses
``patients``              a new patient record; the checks of typed text and dates
``implants``              implant and replacement records: pump, catheter, first program
``views``                 read models for the pages and the API (dashboard, patient, refill)
========================  ====================================================================

Each function that changes something commits (a pump command: twice, see ``commands``).
"""

from itb.clinic.services.commands import (
    PROGRAM_EVENT_KINDS,
    REFILL_EVENT_KINDS,
    PumpCommand,
    reconcile_pending,
    settle_pending,
)
from itb.clinic.services.concentration_change import ConcentrationChangeRequired
from itb.clinic.services.history import ingest_reading, refresh_due_dates, stored_status
from itb.clinic.services.implants import (
    ImplantResult,
    PumpInput,
    add_pump_with_catheter,
    catheter_length_cm,
    catheter_preview,
    check_catheter_trimmed_cm,
    preview_implant,
    record_implant,
    record_replacement,
)
from itb.clinic.services.interrogation import interrogate
from itb.clinic.services.lookups import (
    REASON_MAX_CHARS,
    NewVisit,
    active_pump,
    add_program_version,
    add_visit,
    current_program,
    get_patient,
    pump_snapshot,
    visits,
)
from itb.clinic.services.patients import ORIGINS, PatientInput, create_patient, patient_snapshot
from itb.clinic.services.programming import (
    ProgramRequest,
    ReviewedProgram,
    accept_program,
    age_years,
    change_program,
    check_review_token,
    check_reviewed,
    default_phase,
    parse_program_request,
    patient_origin,
    review_context,
    review_program_change,
)
from itb.clinic.services.refill import AcknowledgementRequired, refill
from itb.clinic.services.refill_rules import (
    RefillInput,
    expected_volume_ml,
    validate_refill,
    withdrawn_volume_check,
)
from itb.clinic.services.screening import (
    ScreeningDose,
    record_screening_dose,
    screening_assessment,
    screening_history,
)
from itb.clinic.services.views import (
    DashboardRow,
    alarms,
    dashboard,
    last_interrogation,
    next_refill_at,
    patient_summary,
    pump_dict,
    recent_events,
    refill_summary,
    visit_dict,
)

__all__ = [
    "ORIGINS",
    "PROGRAM_EVENT_KINDS",
    "REASON_MAX_CHARS",
    "REFILL_EVENT_KINDS",
    "AcknowledgementRequired",
    "ConcentrationChangeRequired",
    "DashboardRow",
    "ImplantResult",
    "NewVisit",
    "PatientInput",
    "ProgramRequest",
    "PumpCommand",
    "PumpInput",
    "RefillInput",
    "ReviewedProgram",
    "ScreeningDose",
    "accept_program",
    "active_pump",
    "add_program_version",
    "add_pump_with_catheter",
    "add_visit",
    "age_years",
    "alarms",
    "catheter_length_cm",
    "catheter_preview",
    "change_program",
    "check_catheter_trimmed_cm",
    "check_review_token",
    "check_reviewed",
    "create_patient",
    "current_program",
    "dashboard",
    "default_phase",
    "expected_volume_ml",
    "get_patient",
    "ingest_reading",
    "interrogate",
    "last_interrogation",
    "next_refill_at",
    "parse_program_request",
    "patient_origin",
    "patient_snapshot",
    "patient_summary",
    "preview_implant",
    "pump_dict",
    "pump_snapshot",
    "recent_events",
    "reconcile_pending",
    "record_implant",
    "record_replacement",
    "record_screening_dose",
    "refill",
    "refill_summary",
    "refresh_due_dates",
    "review_context",
    "review_program_change",
    "screening_assessment",
    "screening_history",
    "settle_pending",
    "stored_status",
    "validate_refill",
    "visit_dict",
    "visits",
    "withdrawn_volume_check",
]
