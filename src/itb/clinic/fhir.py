"""A patient's record as a FHIR R4 Bundle (type ``collection``), for clinical systems.

Theory of operation: :func:`load_record` reads the clinic's rows for one patient (the only
function here that touches the database); :func:`patient_bundle` maps them, purely, to FHIR
resources: Patient; Device (each pump, each catheter); MedicationRequest (the program in force,
its daily dose and every flex step in numbers, words and units); Procedure (implant, refill,
replacement); Observation (MAS scores of the screening trial and of follow-up visits, the
pump's last reservoir volume); Encounter (every visit). :func:`validated` checks the bundle
with ``fhir.resources``.

``fhir.resources`` 8 ships FHIR R5 at its root and R4B (4.3) as a module, not plain R4 (4.0.1);
every element used here is the same in R4 and R4B, so the R4B model checks it.

Times: the clinic's times are naive local times; FHIR wants a time zone on every time, so the
caller passes ``localize`` (naive -> aware; the adapters use the machine's zone, DST-aware).
Codes: concepts are given as text (``CodeableConcept.text``), never as an unchecked code; the
only code systems used are UCUM for units and HL7's own value sets (Encounter class, Observation
category, Device name type). Scores: Modified Ashworth 0 to 5, 1+ coded 2 (docs/domain.md S74 S75).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic.dose_words import number_words
from itb.clinic.models import (
    Catheter,
    FollowUp,
    Patient,
    ProgramVersion,
    Pump,
    RefillRecord,
    Visit,
    VisitKind,
    VisitStatus,
)
from itb.clinic.services.lookups import current_program, visits
from itb.therapy import WEEKDAYS, FlexStep, PeriodicBolus, Program, format_clock, program_from_dict

UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN_SYSTEM = "urn:openitb:mrn"  # the clinic's own MRNs; a site sets its real system here
_NAMESPACE = uuid.UUID("6f1c1d2e-3a0b-5c4d-9e8f-0a1b2c3d4e5f")  # fullUrl uuids, stable per row

Localize = Callable[[datetime], datetime]
Resource = dict[str, Any]

MAS_TEXT = "Modified Ashworth Scale (0 to 5; 1+ coded 2)"

_VISIT_WORDS: dict[str, str] = {
    VisitKind.SCREENING_TRIAL: "screening trial",
    VisitKind.IMPLANT: "pump implant",
    VisitKind.REFILL: "pump refill",
    VisitKind.PROGRAMMING: "pump programming",
    VisitKind.FOLLOW_UP: "follow-up",
    VisitKind.REPLACEMENT: "pump replacement",
}
_PROCEDURE_WORDS: dict[str, str] = {
    VisitKind.IMPLANT: "Implantation of an intrathecal baclofen pump and catheter",
    VisitKind.REFILL: "Refill of the intrathecal pump reservoir",
    VisitKind.REPLACEMENT: "Replacement of the intrathecal baclofen pump",
}
_DONE: frozenset[str] = frozenset({VisitStatus.COMPLETED, VisitStatus.COMPLETED_AFTER_RESTART})
_PENDING: frozenset[str] = frozenset({VisitStatus.OPEN, VisitStatus.PUMP_COMMAND_SENT})


def system_local(naive: datetime) -> datetime:
    """A clinic time in the machine's time zone, with the offset in force on that date."""
    return naive.astimezone()


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """The rows one export reads (loaded once, then mapped without the database)."""

    patient: Patient
    pumps: tuple[Pump, ...]
    catheters: tuple[Catheter, ...]
    programs: tuple[tuple[Pump, ProgramVersion], ...]  # the program in force per active pump
    visits: tuple[Visit, ...]
    refills: dict[int, RefillRecord]  # by visit id
    follow_ups: tuple[FollowUp, ...] = ()  # scored follow-ups (MAS on the program in force)


def load_record(db: Session, patient: Patient) -> PatientRecord:
    pumps = tuple(patient.pumps)
    catheters = db.execute(
        select(Catheter).where(Catheter.patient_id == patient.id).order_by(Catheter.id)
    ).scalars()
    programs = tuple(
        (pump, version)
        for pump in pumps
        if pump.active and (version := current_program(db, pump)) is not None
    )
    refills = db.execute(
        select(RefillRecord).join(Visit, RefillRecord.visit_id == Visit.id)
        .where(Visit.patient_id == patient.id)
    ).scalars()  # fmt: skip
    return PatientRecord(
        patient,
        pumps,
        tuple(catheters),
        programs,
        tuple(reversed(visits(db, patient))),  # oldest first
        {r.visit_id: r for r in refills},
        tuple(
            db.execute(
                select(FollowUp)
                .where(FollowUp.patient_id == patient.id, FollowUp.mas.is_not(None))
                .order_by(FollowUp.seen_at, FollowUp.id)
            ).scalars()
        ),
    )


class _Ids:
    """Resource ids and fullUrls: ``urn:uuid`` derived from the patient's MRN and the row."""

    def __init__(self, mrn: str) -> None:
        self.mrn = mrn

    def url(self, key: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.mrn}/{key}')}"

    def ref(self, key: str, display: str | None = None) -> dict[str, str]:
        ref = {"reference": self.url(key)}
        return ref | {"display": display} if display else ref


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": round(value, 6), "unit": unit, "system": UCUM, "code": code}


def _when(localize: Localize, at: datetime) -> str:
    return localize(at.replace(microsecond=0)).isoformat()


def _words_when(at: datetime) -> str:
    """A clinic time in a note, as a person reads it: ``21 October 2025, 12:00``."""
    return f"{at.day} {at:%B %Y, %H:%M}"


def _words(value: float, unit_words: str) -> str:
    return f"{number_words(value)} {unit_words}"


def patient_bundle(record: PatientRecord, generated_at: datetime, localize: Localize) -> Resource:
    """The patient's record as a Bundle of type collection (``generated_at``: a clinic time)."""
    ids = _Ids(record.patient.mrn)
    resources: list[Resource] = [_patient(record.patient)]
    resources += [_pump_device(ids, p) for p in record.pumps]
    resources += _catheter_devices(ids, record.catheters)
    resources += [_encounter(ids, v, localize) for v in record.visits]
    resources += [
        _procedure(ids, v, record.refills.get(v.id), localize)
        for v in record.visits
        if v.kind in _PROCEDURE_WORDS and v.pump_id is not None
    ]
    resources += [
        _medication_request(ids, pump, version, localize) for pump, version in record.programs
    ]
    resources += _mas_observations(ids, record.visits, localize)
    resources += [_follow_up_mas(ids, f, localize) for f in record.follow_ups]
    resources += [
        _reservoir(ids, p, localize)
        for p in record.pumps
        if p.reservoir_ml is not None and p.state_at is not None
    ]
    entries = [{"fullUrl": ids.url(r.pop("_key")), "resource": r} for r in resources]
    return {
        "resourceType": "Bundle",
        "id": f"patient-{record.patient.id}",
        "type": "collection",
        "timestamp": _when(localize, generated_at),
        "entry": entries,
    }


def _codes(words: str) -> frozenset[str]:
    return frozenset(words.split())


# The required bindings of the codes this module writes (FHIR R4 value sets; the R4B model
# checks structure and types, not these codes).
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Bundle", "type"): frozenset({"collection"}),
    ("Device", "status"): _codes("active inactive entered-in-error unknown"),
    ("Encounter", "status"): _codes(
        "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown"
    ),
    ("Procedure", "status"): _codes(
        "preparation in-progress not-done on-hold stopped completed entered-in-error unknown"
    ),
    ("MedicationRequest", "status"): _codes(
        "active on-hold cancelled completed entered-in-error stopped draft unknown"
    ),
    ("MedicationRequest", "intent"): _codes(
        "proposal plan order original-order reflex-order filler-order instance-order option"
    ),
    ("Observation", "status"): _codes(
        "registered preliminary final amended corrected cancelled entered-in-error unknown"
    ),
}


class InvalidBundleError(ValueError):
    """The export would not be valid FHIR: a bug in the mapping, never sent."""


def validated(bundle: Resource) -> Resource:
    """``bundle`` if FHIR R4B's model accepts it, its status codes are in their value sets and
    every ``urn:uuid`` reference names an entry; :class:`InvalidBundleError` otherwise."""
    from fhir.resources.R4B.bundle import Bundle  # a large model: imported when exporting
    from pydantic import ValidationError

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        raise InvalidBundleError(str(exc)) from None
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    for resource in (bundle, *(entry["resource"] for entry in bundle["entry"])):
        kind = resource["resourceType"]
        for (of, name), allowed in REQUIRED_CODES.items():
            if of == kind and name in resource and resource[name] not in allowed:
                raise InvalidBundleError(f"{kind}.{name} {resource[name]!r} is not a FHIR code")
        for reference in _references(resource):
            if reference.startswith("urn:uuid:") and reference not in urls:
                raise InvalidBundleError(f"{kind} refers to {reference}, not in the bundle")
    return bundle


def _references(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _patient(patient: Patient) -> Resource:
    resource: Resource = {
        "_key": "patient",
        "resourceType": "Patient",
        "id": f"patient-{patient.id}",
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": patient.mrn}],
        "name": [{"text": patient.name}],
    }
    if patient.birth_date is not None:
        resource["birthDate"] = patient.birth_date.date().isoformat()
    if patient.clinician is not None:
        who = patient.clinician.display_name or patient.clinician.username
        resource["generalPractitioner"] = [{"display": who}]
    return resource


def _subject(ids: _Ids) -> dict[str, str]:
    return ids.ref("patient")


def _pump_device(ids: _Ids, pump: Pump) -> Resource:
    implanted = f"Implanted {_words_when(pump.implanted_at)}"
    if pump.explanted_at is not None:
        implanted += f"; explanted {_words_when(pump.explanted_at)}"
    return {
        "_key": f"pump{pump.id}",
        "resourceType": "Device",
        "id": f"pump-{pump.id}",
        "status": "active" if pump.active else "inactive",
        "serialNumber": pump.serial,
        "deviceName": [{"name": pump.model, "type": "model-name"}],
        "type": {"text": "Implantable intrathecal infusion pump"},
        "patient": _subject(ids),
        "note": [{"text": f"{implanted}. Drug: {pump.drug}."}],
    }


def _catheter_devices(ids: _Ids, catheters: tuple[Catheter, ...]) -> list[Resource]:
    latest = max(catheters, key=lambda c: (c.implanted_at, c.id), default=None)
    out: list[Resource] = []
    for catheter in catheters:
        resource: Resource = {
            "_key": f"catheter{catheter.id}",
            "resourceType": "Device",
            "id": f"catheter-{catheter.id}",
            "status": "active" if catheter is latest else "inactive",
            "type": {"text": "Intrathecal catheter"},
            "patient": _subject(ids),
            "property": [
                {
                    "type": {"text": "Implanted length"},
                    "valueQuantity": [_quantity(catheter.length_cm, "cm", "cm")],
                },
                {
                    "type": {"text": "Implanted volume"},
                    "valueQuantity": [_quantity(catheter.volume_ml, "mL", "mL")],
                },
            ],
            "note": [{"text": f"Implanted {_words_when(catheter.implanted_at)}."}],
        }
        if catheter.pump_id is not None:
            resource["parent"] = ids.ref(f"pump{catheter.pump_id}")
        out.append(resource)
    return out


def _visit_words(visit: Visit) -> str:
    return _VISIT_WORDS.get(visit.kind, visit.kind.replace("_", " "))


def _performer(visit: Visit) -> str | None:
    if visit.user is None:
        return None
    return visit.user.display_name or visit.user.username


def _encounter(ids: _Ids, visit: Visit, localize: Localize) -> Resource:
    status = visit.status
    period = {"start": _when(localize, visit.started_at)}
    if visit.completed_at is not None and status not in _PENDING:
        period["end"] = _when(localize, max(visit.completed_at, visit.started_at))
    resource: Resource = {
        "_key": f"visit{visit.id}",
        "resourceType": "Encounter",
        "id": f"visit-{visit.id}",
        "status": "in-progress" if status in _PENDING else "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"text": _visit_words(visit)}],
        "subject": _subject(ids),
        "period": period,
    }
    if (who := _performer(visit)) is not None:
        resource["participant"] = [{"individual": {"display": who}}]
    return resource


def _procedure(
    ids: _Ids, visit: Visit, refill: RefillRecord | None, localize: Localize
) -> Resource:
    status = visit.status
    fhir_status = "completed" if status in _DONE else "in-progress"
    if status in (VisitStatus.NOT_APPLIED, VisitStatus.FAILED):
        fhir_status = "not-done"
    resource: Resource = {
        "_key": f"procedure{visit.id}",
        "resourceType": "Procedure",
        "id": f"procedure-{visit.id}",
        "status": fhir_status,
        "code": {"text": _PROCEDURE_WORDS[visit.kind]},
        "subject": _subject(ids),
        "encounter": ids.ref(f"visit{visit.id}"),
        "performedDateTime": _when(localize, visit.started_at),
        "focalDevice": [{"manipulated": ids.ref(f"pump{visit.pump_id}")}],
    }
    if (who := _performer(visit)) is not None:
        resource["performer"] = [{"actor": {"display": who}}]
    if refill is not None:
        resource["note"] = [{"text": _refill_words(refill)}]
    return resource


def _refill_words(refill: RefillRecord) -> str:
    words = (
        f"Withdrawn {refill.withdrawn_ml:g} mL (expected {refill.expected_ml:g} mL); "
        f"filled {refill.filled_ml:g} mL of {refill.concentration_ug_per_ml:g} µg/mL."
    )
    if refill.discrepancy_flagged:
        words += (
            f" Withdrawn volume flagged ({refill.discrepancy_ml:+g} mL): possible pocket fill, "
            "catheter or pump problem."
        )
    return words


def _medication_request(
    ids: _Ids, pump: Pump, version: ProgramVersion, localize: Localize
) -> Resource:
    program = program_from_dict(json.loads(version.program_json))
    concentration = pump.concentration_ug_per_ml
    drug = f"{pump.drug} intrathecal"
    drug += f", {concentration:g} µg/mL" if concentration else ""
    daily = (
        f"Program version {version.version}: {version.daily_dose_ug:g} µg/day "
        f"({_words(version.daily_dose_ug, 'micrograms per day')})"
    )
    if concentration:
        daily += f", {version.daily_dose_ug / concentration:.4g} mL/day at {concentration:g} µg/mL"
    resource: Resource = {
        "_key": f"program{version.id}",
        "resourceType": "MedicationRequest",
        "id": f"program-{version.id}",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "subject": _subject(ids),
        "authoredOn": _when(localize, version.created_at),
        "dosageInstruction": _dosages(program),
        "note": [{"text": daily + "."}],
    }
    if version.visit_id is not None:
        resource["encounter"] = ids.ref(f"visit{version.visit_id}")
    return resource


_ROUTE = {"text": "Intrathecal (implanted pump)"}


def _dosages(program: Program) -> list[Resource]:
    if program.is_continuous:
        rate_ug_per_day = program.daily_dose_ug()
        dosages = [
            {
                "sequence": 1,
                "text": f"Continuous infusion {rate_ug_per_day:g} µg/day "
                f"({_words(rate_ug_per_day, 'micrograms per day')})",
                "route": _ROUTE,
                "doseAndRate": [{"rateQuantity": _quantity(rate_ug_per_day, "µg/day", "ug/d")}],
            }
        ]
    else:
        days = [(None, program.week[0])] if not program.varies_by_day else enumerate(program.week)
        dosages = [
            _step_dosage(step, weekday)
            for weekday, steps in days
            for step in steps
        ]  # fmt: skip
    dosages += [_bolus_dosage(bolus) for bolus in program.periodic_boluses]
    for i, dosage in enumerate(dosages, start=1):
        dosage["sequence"] = i
    return dosages


def _step_dosage(step: FlexStep, weekday: int | None) -> Resource:
    start = format_clock(step.start_min)
    on = f"{WEEKDAYS[weekday].capitalize()} " if weekday is not None else "Daily "
    repeat: Resource = {"timeOfDay": [f"{start}:00"]}
    if weekday is not None:
        repeat["dayOfWeek"] = [WEEKDAYS[weekday]]
    return {
        "text": f"{on}from {start}: {step.rate_ug_per_h:g} µg/h "
        f"({_words(step.rate_ug_per_h, 'micrograms per hour')}) until the next step",
        "timing": {"repeat": repeat},
        "route": _ROUTE,
        "doseAndRate": [{"rateQuantity": _quantity(step.rate_ug_per_h, "µg/h", "ug/h")}],
    }


def _bolus_dosage(bolus: PeriodicBolus) -> Resource:
    start = format_clock(bolus.start_min)
    return {
        "text": f"Daily bolus at {start}: {bolus.dose_ug:g} µg "
        f"({_words(bolus.dose_ug, 'micrograms')}) over {bolus.duration_min:g} min",
        "timing": {
            "repeat": {
                "timeOfDay": [f"{start}:00"],
                "duration": bolus.duration_min,
                "durationUnit": "min",
            }
        },
        "route": _ROUTE,
        "doseAndRate": [{"doseQuantity": _quantity(bolus.dose_ug, "µg", "ug")}],
    }


def _mas_observations(ids: _Ids, visits_: tuple[Visit, ...], localize: Localize) -> list[Resource]:
    out: list[Resource] = []
    for visit in visits_:
        if visit.kind != VisitKind.SCREENING_TRIAL:
            continue
        details = json.loads(visit.details_json)
        given_at = datetime.fromisoformat(details.get("given_at") or visit.started_at.isoformat())
        for hour, score in sorted(details.get("scores", {}).items(), key=lambda i: int(i[0])):
            at = given_at + timedelta(hours=int(hour))
            when = "before the trial bolus" if int(hour) == 0 else f"{hour} h after the bolus"
            resource = {
                "_key": f"mas{visit.id}h{hour}",
                "resourceType": "Observation",
                "id": f"mas-{visit.id}-{hour}",
                "status": "final",
                "category": [_category("exam", "Exam")],
                "code": {"text": MAS_TEXT},
                "subject": _subject(ids),
                "encounter": ids.ref(f"visit{visit.id}"),
                "effectiveDateTime": _when(localize, at),
                "valueQuantity": _quantity(float(score), "score", "{score}"),
                "note": [{"text": f"Screening trial, {details.get('dose_ug', 0):g} µg, {when}."}],
            }
            out.append(resource)
    return out


def _category(code: str, display: str) -> Resource:
    return {"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}


def _reservoir(ids: _Ids, pump: Pump, localize: Localize) -> Resource:
    assert pump.reservoir_ml is not None and pump.state_at is not None  # filtered by the caller
    return {
        "_key": f"reservoir{pump.id}",
        "resourceType": "Observation",
        "id": f"reservoir-{pump.id}",
        "status": "final",
        "category": [_category("procedure", "Procedure")],
        "code": {"text": "Pump reservoir volume (the pump's last reading)"},
        "subject": _subject(ids),
        "device": ids.ref(f"pump{pump.id}", pump.serial),
        "effectiveDateTime": _when(localize, pump.state_at),
        "valueQuantity": _quantity(pump.reservoir_ml, "mL", "mL"),
    }


def _follow_up_mas(ids: _Ids, follow_up: FollowUp, localize: Localize) -> Resource:
    """A follow-up visit's MAS, with the daily dose of the program in force then."""
    assert follow_up.mas is not None  # filtered by load_record
    dose = follow_up.daily_dose_ug
    on = f"on {dose:g} µg/day" if dose is not None else "with no program"
    return {
        "_key": f"followup{follow_up.id}",
        "resourceType": "Observation",
        "id": f"follow-up-mas-{follow_up.id}",
        "status": "final",
        "category": [_category("exam", "Exam")],
        "code": {"text": MAS_TEXT},
        "subject": _subject(ids),
        "encounter": ids.ref(f"visit{follow_up.visit_id}"),
        "effectiveDateTime": _when(localize, follow_up.seen_at),
        "valueQuantity": _quantity(follow_up.mas, "score", "{score}"),
        "note": [{"text": f"Follow-up visit, {on} (the program in force)."}],
    }
