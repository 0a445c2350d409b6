"""FHIR R4 export (issue 14): every demo patient's record is a valid Bundle that says what the
clinic knows (pump, catheter, program, visits, scores), through the API and the command line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from typer.testing import CliRunner

from itb.cli import app
from itb.clinic import fhir
from itb.clinic.models import AuditEntry
from tests.clinic.support import DEMO_PASSWORD, Clinic

DEMO_MRNS = ("DEMO-001", "DEMO-002", "DEMO-003", "DEMO-004", "DEMO-005", "DEMO-006")
HOURLY_POSITIVE = {"0": 3, "1": 3, "2": 2, "3": 2, "4": 1, "5": 1, "6": 2, "7": 2, "8": 3}


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _bundle(clinic: Clinic, mrn: str) -> dict[str, Any]:
    response = clinic.client.get(f"/api/patients/{clinic.patient_id(mrn)}/fhir")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle: dict[str, Any] = response.json()
    return bundle


def test_every_demo_patients_bundle_validates_as_fhir_r4b(clinic: Clinic) -> None:
    clinic.login("viewer_demo")  # any role that may see the patient page may export it
    for mrn in DEMO_MRNS:
        bundle = _bundle(clinic, mrn)
        Bundle.model_validate(bundle)  # the reference model, independently of fhir.validated
        assert bundle["type"] == "collection"
        (patient,) = _resources(bundle, "Patient")
        assert patient["identifier"][0]["value"] == mrn
        urls = [e["fullUrl"] for e in bundle["entry"]]
        assert len(urls) == len(set(urls))  # every entry its own id


def test_the_flex_patients_bundle_carries_pump_catheter_program_steps_and_visits(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    bundle = _bundle(clinic, "DEMO-005")  # Eli Flex: 15, 25 and 18 µg/h from 00:00, 07:00, 21:00
    pump, catheter = _resources(bundle, "Device")
    assert pump["serialNumber"] == "SIM-005" and pump["status"] == "active"
    assert pump["deviceName"] == [{"name": "valve-gated-20", "type": "model-name"}]
    # S31: 110 cm catheter, 15 cm trimmed -> 95 cm implanted
    length = catheter["property"][0]["valueQuantity"][0]
    assert (length["value"], length["code"]) == (95.0, "cm")
    (request,) = _resources(bundle, "MedicationRequest")
    assert (
        request["status"] == "active"
        and "500 µg/mL" in request["medicationCodeableConcept"]["text"]
    )
    steps = request["dosageInstruction"]
    assert [s["timing"]["repeat"]["timeOfDay"] for s in steps] == [
        ["00:00:00"], ["07:00:00"], ["21:00:00"]
    ]  # fmt: skip
    assert [s["doseAndRate"][0]["rateQuantity"]["value"] for s in steps] == [15.0, 25.0, 18.0]
    assert {s["doseAndRate"][0]["rateQuantity"]["code"] for s in steps} == {"ug/h"}
    assert "twenty-five micrograms per hour" in steps[1]["text"]
    # 7 h × 15 + 14 h × 25 + 3 h × 18 = 105 + 350 + 54 = 509 µg/day
    assert "509 µg/day (five hundred nine micrograms per day)" in request["note"][0]["text"]
    encounters = _resources(bundle, "Encounter")
    procedures = _resources(bundle, "Procedure")
    kinds = [p["code"]["text"] for p in procedures]
    assert kinds[0].startswith("Implantation") and any(k.startswith("Refill") for k in kinds)
    assert len(encounters) >= len(procedures)
    refill = next(p for p in procedures if p["code"]["text"].startswith("Refill"))
    assert "filled 20 mL of 500 µg/mL" in refill["note"][0]["text"]
    (reservoir,) = [o for o in _resources(bundle, "Observation") if o["id"].startswith("reservoir")]
    assert reservoir["valueQuantity"]["code"] == "mL"
    assert reservoir["device"]["display"] == "SIM-005"


def test_screening_scores_are_exported_as_mas_observations(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    answer = clinic.client.post(
        f"/api/patients/{pid}/screening", json={"dose_ug": 50, "scores": HOURLY_POSITIVE}
    )
    assert answer.status_code == 200, answer.text
    visit_id = answer.json()["id"]
    bundle = _bundle(clinic, "DEMO-006")
    scores = [
        o for o in _resources(bundle, "Observation") if o["id"].startswith(f"mas-{visit_id}-")
    ]
    assert [o["valueQuantity"]["value"] for o in scores] == [3, 3, 2, 2, 1, 1, 2, 2, 3]
    assert all(o["code"]["text"].startswith("Modified Ashworth") for o in scores)
    assert "before the trial bolus" in scores[0]["note"][0]["text"]
    encounter = next(e for e in _resources(bundle, "Encounter") if e["id"] == f"visit-{visit_id}")
    assert encounter["type"][0]["text"] == "screening trial"
    assert all(o["encounter"] == scores[0]["encounter"] for o in scores)


def test_an_export_is_audited_and_an_unknown_patient_is_a_404_in_words(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    assert clinic.client.get(f"/api/patients/{pid}/fhir").status_code == 200
    with clinic.sessions() as db:
        last = db.execute(select(AuditEntry).order_by(AuditEntry.id.desc())).scalars().first()
        assert last is not None
        assert (last.action, last.entity_id, last.username) == (
            "patient.export_fhir", str(pid), "nurse_demo"
        )  # fmt: skip
    missing = clinic.client.get("/api/patients/999999/fhir")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "patient 999999 not found"}
    clinic.client.cookies.clear()
    assert clinic.client.get(f"/api/patients/{pid}/fhir").status_code == 401


@pytest.mark.parametrize(
    "breakage",
    ["encounter status not in its value set", "reference to no entry", "field FHIR lacks"],
)
def test_an_invalid_bundle_is_never_exported(clinic: Clinic, breakage: str) -> None:
    clinic.login("dr_demo")
    good = _bundle(clinic, "DEMO-003")
    bad = copy.deepcopy(good)
    encounter = _resources(bad, "Encounter")[0]
    if breakage.startswith("encounter"):
        encounter["status"] = "done"
    elif breakage.startswith("reference"):
        encounter["subject"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    else:
        encounter["refill_ml"] = 20
    assert fhir.validated(good) is good
    with pytest.raises(fhir.InvalidBundleError):
        fhir.validated(bad)


def test_itb_clinic_export_writes_one_valid_bundle_per_patient(
    clinic: Clinic, tmp_path: Path
) -> None:
    out = tmp_path / "fhir"
    runner = CliRunner()
    result = runner.invoke(
        app, ["clinic", "export", "--fhir", str(out), "--database-url", clinic.url]
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.json"))
    assert len(files) == len(DEMO_MRNS)
    for path in files:
        bundle = json.loads(path.read_text())
        Bundle.model_validate(bundle)
        (patient,) = _resources(bundle, "Patient")
        assert path.name.endswith(f"-{patient['identifier'][0]['value']}.json")
    assert f"exported {len(DEMO_MRNS)} patient record(s)" in result.output

    one = runner.invoke(
        app,
        ["clinic", "export", "--fhir", str(tmp_path / "one"), "--mrn", "DEMO-002",
         "--database-url", clinic.url],
    )  # fmt: skip
    assert one.exit_code == 0 and len(list((tmp_path / "one").glob("*.json"))) == 1
    unknown = runner.invoke(
        app,
        ["clinic", "export", "--fhir", str(tmp_path / "x"), "--mrn", "NOPE",
         "--database-url", clinic.url],
    )  # fmt: skip
    assert unknown.exit_code == 2
    assert "no patient with MRN NOPE" in unknown.output


def test_a_caregiver_account_cannot_export_a_patients_record(clinic: Clinic) -> None:
    from itb.clinic import auth

    with clinic.sessions() as db:
        auth.add_user(db, "parent.of.eli", "caregiver", DEMO_PASSWORD)
        db.commit()
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-005")
    clinic.login("parent.of.eli")
    refused = clinic.client.get(f"/api/patients/{pid}/fhir")
    assert refused.status_code == 403  # a family sees its own family page, not the record
