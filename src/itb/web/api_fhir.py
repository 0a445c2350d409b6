"""``GET /api/patients/{id}/fhir``: a patient's record as a FHIR R4 Bundle (itb.clinic.fhir).

Any signed-in role may read it, as it may read the patient page; the export is a disclosure of
the whole record, so each one is written to the audit log (who, when, which patient).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from itb.clinic import audit, services
from itb.web.deps import Caller, Db, need, now

router = APIRouter(prefix="/api", tags=["api"])

DB_ID_MAX = 2**31 - 1
PatientId = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="patient id")]
FHIR_JSON = "application/fhir+json"


@router.get(
    "/patients/{patient_id}/fhir",
    response_class=JSONResponse,
    responses={200: {"content": {FHIR_JSON: {}}, "description": "a FHIR R4 Bundle"}},
)
def patient_fhir(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("view")
) -> JSONResponse:
    """The patient's record as a FHIR R4 Bundle (type collection): Patient, Device (pump,
    catheter), MedicationRequest (the program in force), Procedure (implant, refill,
    replacement), Observation (MAS scores, reservoir volume) and Encounter (visits)."""
    from itb.clinic import fhir  # the first export imports it: the app starts without it

    patient = services.get_patient(db, patient_id)
    record = fhir.load_record(db, patient)
    bundle: dict[str, Any] = fhir.validated(
        fhir.patient_bundle(record, now(request), fhir.system_local)
    )
    audit.record(
        db, caller.user, "patient.export_fhir", "patient", patient.id, None,
        {"resources": len(bundle["entry"])},
    )  # fmt: skip
    db.commit()
    return JSONResponse(bundle, media_type=FHIR_JSON)
