"""Onboarding on SQLite and PostgreSQL: a new patient, the implant, a pump replacement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from itb.clinic.models import (
    AuditEntry,
    Catheter,
    Patient,
    ProgramVersion,
    Pump,
    PumpEvent,
    Visit,
)
from tests.clinic.support import Clinic, csrf_in
from tests.web.markup import find, find_all

NEW_PATIENT = {"name": "Gale Newcomer", "mrn": "NEW-001", "age_years": 34, "origin": "spinal"}
# S31: 110 cm catheter, 0.0026 mL/cm; 40 cm cut off leaves 70 cm = 0.182 mL
IMPLANT = {
    "model": "peristaltic-20",
    "serial": "NEW-PUMP-1",
    "catheter_trimmed_cm": 40.0,
    "concentration_ug_per_ml": 500.0,
    "filled_ml": 20.0,
    "program": {"rate_ug_per_day": 600.0},
    "low_reservoir_alarm_ml": 2.0,
}


def _counts(clinic: Clinic) -> dict[str, int]:
    with clinic.sessions() as db:
        return {
            m.__name__: int(db.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (Patient, Pump, Catheter, Visit, ProgramVersion, AuditEntry)
        }


def _new_patient(clinic: Clinic) -> int:
    response = clinic.client.post("/api/patients", json=NEW_PATIENT)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _implanted(clinic: Clinic) -> int:
    patient_id = _new_patient(clinic)
    response = clinic.client.post(f"/api/patients/{patient_id}/implant", json=IMPLANT)
    assert response.status_code == 201, response.text
    return patient_id


def test_a_physician_creates_a_patient_and_records_the_implant(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    patient_id = _new_patient(clinic)
    row = clinic.row(patient_id)
    assert row["serial"] is None and row["clinician"] == "dr_demo"

    answer = clinic.client.post(f"/api/patients/{patient_id}/implant", json=IMPLANT).json()
    assert answer["catheter_length_cm"] == 70.0
    assert answer["catheter_volume_ml"] == pytest.approx(0.182)
    # priming: catheter 0.182 mL + the peristaltic pump's internal tubing 0.2 mL [R]
    assert answer["priming"]["priming_volume_ml"] == pytest.approx(0.382)
    # 600 µg/day at 500 µg/mL = 1.2 mL/day; the priming bolus takes 0.382 mL first (Q2):
    # (20 − 0.382 − 2) mL / 1.2 mL/day = 14.68 days
    row = clinic.row(patient_id)
    assert row["serial"] == "NEW-PUMP-1"
    assert row["days_to_low_reservoir"] == 14.7
    assert row["days_to_empty"] == pytest.approx((20 - 0.382) / 1.2, abs=0.05)
    page = clinic.client.get(f"/patients/{patient_id}")
    pump = find(page.text, id="serial")
    assert (pump["data-serial"], pump["data-model"]) == ("NEW-PUMP-1", "peristaltic-20")
    summary = clinic.client.get(f"/api/patients/{patient_id}").json()
    assert summary["program"]["version"] == 1
    assert summary["program"]["daily_dose_ug"] == 600.0
    assert [v["kind"] for v in summary["visits"]] == ["implant"]
    # the simulated pump answers an interrogation
    assert clinic.client.post(f"/api/patients/{patient_id}/interrogate").status_code == 200


def test_a_second_patient_with_the_same_mrn_is_refused(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    _new_patient(clinic)
    before = _counts(clinic)
    response = clinic.client.post("/api/patients", json={**NEW_PATIENT, "name": "Other"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "mrn"
    assert _counts(clinic) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"filled_ml": 25.0}, "filled_ml"),  # overfill: the reservoir holds 20 mL
        ({"concentration_ug_per_ml": 750.0}, "concentration_ug_per_ml"),  # not in the library
        ({"serial": "SIM-001"}, "serial"),  # Alex Near-Empty's pump
        ({"program": {"rate_ug_per_day": 6000.0}}, "daily_dose_ug"),  # above 2000 µg/day (S25)
        ({"catheter_trimmed_cm": 110.0}, "catheter_trimmed_cm"),  # nothing left implanted
    ],
)
def test_a_bad_implant_is_refused_naming_the_field_and_changes_nothing(
    clinic: Clinic, change: dict[str, Any], field: str
) -> None:
    clinic.login("dr_demo")
    patient_id = _new_patient(clinic)
    before = _counts(clinic)
    response = clinic.client.post(f"/api/patients/{patient_id}/implant", json={**IMPLANT, **change})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == field
    assert "allowed" in detail["msg"] or "above the absolute maximum" in detail["msg"]
    assert _counts(clinic) == before
    assert clinic.row(patient_id)["serial"] is None


@pytest.mark.parametrize("username", ["nurse_demo", "viewer_demo"])
def test_nurses_and_viewers_may_not_onboard(clinic: Clinic, username: str) -> None:
    clinic.login("dr_demo")
    patient_id = _new_patient(clinic)
    clinic.login(username)
    before = _counts(clinic)
    other = {**NEW_PATIENT, "mrn": "NEW-002"}
    assert clinic.client.post("/api/patients", json=other).status_code == 403
    assert (
        clinic.client.post(f"/api/patients/{patient_id}/implant", json=IMPLANT).status_code == 403
    )
    blake = clinic.patient_id("DEMO-002")
    replacement = {"model": "peristaltic-40", "serial": "NEW-PUMP-9", "filled_ml": 40.0}
    response = clinic.client.post(f"/api/patients/{blake}/replacement", json=replacement)
    assert response.status_code == 403
    assert _counts(clinic) == before


def test_an_implant_for_a_patient_who_has_a_pump_is_refused(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    patient_id = _implanted(clinic)
    other = {**IMPLANT, "serial": "NEW-PUMP-2"}
    assert clinic.client.post(f"/api/patients/{patient_id}/implant", json=other).status_code == 409


def test_a_replacement_retires_the_old_pump_and_keeps_the_catheter(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    blake = clinic.patient_id("DEMO-002")  # past ERI (S3 S21)
    with clinic.sessions() as db:
        catheter_before = db.execute(
            select(Catheter.id, Catheter.length_cm).where(Catheter.patient_id == blake)
        ).one()
    old_program = clinic.client.get(f"/api/patients/{blake}").json()["program"]["program"]
    response = clinic.client.post(
        f"/api/patients/{blake}/replacement",
        json={"model": "peristaltic-40", "serial": "NEW-PUMP-40", "filled_ml": 40.0},
    )
    assert response.status_code == 201, response.text
    row = clinic.row(blake)
    assert row["serial"] == "NEW-PUMP-40"
    # a new battery: ERI years away, not overdue
    assert row["days_to_eri"] is not None and row["days_to_eri"] > 365
    summary = clinic.client.get(f"/api/patients/{blake}").json()
    assert summary["program"]["program"] == old_program  # carried over
    assert summary["pump"]["concentration_ug_per_ml"] == 1000.0  # carried over
    assert summary["visits"][0]["kind"] == "replacement"
    with clinic.sessions() as db:
        pumps = db.execute(
            select(Pump.serial, Pump.active, Pump.explanted_at)
            .where(Pump.patient_id == blake)
            .order_by(Pump.id)
        ).all()
        catheters = db.execute(
            select(Catheter.id, Catheter.length_cm, Pump.serial)
            .join(Pump, Pump.id == Catheter.pump_id)
            .where(Catheter.patient_id == blake)
        ).all()
    assert [(p.serial, p.active) for p in pumps] == [("SIM-002", False), ("NEW-PUMP-40", True)]
    assert pumps[0].explanted_at is not None
    assert [(c.id, c.length_cm, c.serial) for c in catheters] == [
        (catheter_before.id, catheter_before.length_cm, "NEW-PUMP-40")
    ]


def test_a_physician_onboards_a_patient_through_the_pages(clinic: Clinic) -> None:
    clinic.login("dr_demo")  # the API cookie works for the pages too
    dashboard = clinic.client.get("/")
    assert find(dashboard.text, "a", href="/patients/new")
    form = {"name": "Harper Pages", "mrn": "NEW-PAGE", "birth_date": "1980-05-01",
            "origin": "cerebral", "csrf_token": csrf_in(dashboard.text)}  # fmt: skip
    created = clinic.client.post("/patients/new", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    patient_url = created.headers["location"].split("?")[0]
    page = clinic.client.get(patient_url)
    assert find(page.text, "a", href=f"{patient_url}/implant")
    implant = {key: str(value) for key, value in IMPLANT.items() if key != "program"}
    implant |= {"rate_ug_per_day": "600", "csrf_token": csrf_in(page.text)}
    review = clinic.client.post(f"{patient_url}/implant", data={**implant, "action": "review"})
    assert review.status_code == 200, review.text
    # (110 − 40) cm × 0.0026 mL/cm = 0.182 mL (S31), + 0.2 mL of the pump's internal tubing
    assert find(review.text, id="catheter-volume")["data-catheter-volume-ml"] == "0.182"
    assert find(review.text, id="priming-volume")["data-priming-volume-ml"] == "0.382"
    assert clinic.row(int(patient_url.rsplit("/", 1)[1]))["serial"] is None  # nothing saved yet
    saved = clinic.client.post(
        f"{patient_url}/implant", data={**implant, "action": "save"}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    page = clinic.client.get(patient_url)
    assert find(page.text, id="serial")["data-serial"] == "NEW-PUMP-1"
    assert find(page.text, "a", href=f"{patient_url}/replacement")


def test_an_overfill_on_the_implant_page_names_the_field(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    patient_id = _new_patient(clinic)
    token = csrf_in(clinic.client.get(f"/patients/{patient_id}/implant").text)
    implant = {key: str(value) for key, value in IMPLANT.items() if key != "program"}
    implant |= {"rate_ug_per_day": "600", "filled_ml": "25", "csrf_token": token}
    answer = clinic.client.post(
        f"/patients/{patient_id}/implant", data={**implant, "action": "save"}
    )
    assert answer.status_code == 422
    assert find(answer.text, "p", data_field="filled_ml")
    assert clinic.row(patient_id)["serial"] is None


def test_a_viewer_cannot_open_the_onboarding_pages(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    assert not find_all(clinic.client.get("/").text, "a", href="/patients/new")
    assert clinic.client.get("/patients/new").status_code == 403
    frankie = clinic.patient_id("DEMO-006")
    assert clinic.client.get(f"/patients/{frankie}/implant").status_code == 403


def test_the_priming_bolus_of_an_implant_leaves_the_reservoir_and_is_in_the_pump_log(
    clinic: Clinic,
) -> None:
    """Q2: the implant record primes the new pump (the firmware's priming bolus, replacing the
    basal), the priming volume leaves the reservoir, the pump's log has it, and a second
    priming is never sent to a pump whose log already has one."""
    clinic.login("dr_demo")
    patient_id = _implanted(clinic)
    fw = clinic.pumps.firmware("NEW-PUMP-1")
    primings = [e for e in fw.log.entries() if e.kind == "bolus_start"]
    assert [(e.data["kind"], round(float(str(e.data["volume_ml"])), 4)) for e in primings] == [
        ("priming", 0.382)  # catheter 0.182 mL + pump tubing 0.2 mL
    ]
    visit = clinic.client.get(f"/api/patients/{patient_id}/visits").json()[0]
    assert visit["kind"] == "implant" and visit["details"]["priming_sent"] is True
    # an hour later: 0.382 mL at the 24 mL/day maximum flow takes 0.382 / 24 × 1440 = 22.9 min
    # (no basal meanwhile), then 1.2 mL/day for the other 37.1 min: 0.0309 mL
    clinic.clock.advance(1 / 24)
    read = clinic.client.post(f"/api/patients/{patient_id}/interrogate").json()["status"]
    basal_ml = 1.2 * (60 - 0.382 / 24 * 1440) / 1440
    assert read["reservoir_ml"] == pytest.approx(20.0 - 0.382 - basal_ml, abs=1e-3)
    query = select(PumpEvent.data_json).where(
        PumpEvent.serial == "NEW-PUMP-1", PumpEvent.kind == "bolus_start"
    )
    with clinic.sessions() as db:
        stored = list(db.execute(query).scalars())
    assert len(stored) == 1 and '"kind":"priming"' in stored[0]


def test_a_replacement_sends_no_priming_bolus_through_the_full_catheter(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    blake = clinic.patient_id("DEMO-002")
    response = clinic.client.post(
        f"/api/patients/{blake}/replacement",
        json={"model": "peristaltic-40", "serial": "NEW-PUMP-40", "filled_ml": 40.0},
    )
    assert response.status_code == 201, response.text
    kinds = [e.kind for e in clinic.pumps.firmware("NEW-PUMP-40").log.entries()]
    assert "bolus_start" not in kinds
