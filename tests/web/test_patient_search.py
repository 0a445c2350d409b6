"""Issue 14: patient search from every page, editing a patient's details (audited, the
same checks as a new record), the follow-up visit, and flagged refills marked on the dashboard
until a physician reviews them. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select, text

from itb.clinic.models import AuditEntry, FollowUp, Patient
from itb.clinic.services.follow_up import mas_observations
from itb.clinic.services.search import search_patients
from tests.clinic.support import Clinic


def _csrf(clinic: Clinic, path: str) -> str:
    page = clinic.client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _found_mrns(clinic: Clinic, q: str) -> list[str]:
    page = clinic.client.get("/search", params={"q": q})
    assert page.status_code == 200, page.text
    return re.findall(r'<tr data-patient-id="\d+" data-mrn="([^"]+)"', page.text)


def test_search_finds_a_patient_by_name_last_name_mrn_or_serial_in_any_case(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    assert 'id="header-search"' in clinic.client.get("/").text  # the box on every page
    assert _found_mrns(clinic, "casey") == ["DEMO-003"]  # first name, lower case
    assert _found_mrns(clinic, "TITRA") == ["DEMO-003"]  # start of the last name
    assert _found_mrns(clinic, "demo-00") == [f"DEMO-00{i}" for i in range(1, 7)]  # MRN
    assert _found_mrns(clinic, "sim-003") == ["DEMO-003"]  # the pump's serial
    assert _found_mrns(clinic, "zz-nobody") == []
    assert "No patient" in clinic.client.get("/search", params={"q": "zz-nobody"}).text
    refused = clinic.client.get("/search", params={"q": "x" * 65})
    assert refused.status_code == 422 and "1 to 64 characters" in refused.text


def test_search_probes_indexes_not_every_patient(clinic: Clinic) -> None:
    """Each match is a range on its own index (no scan of the patients) on both databases."""
    with clinic.sessions() as db:
        postgres = db.get_bind().dialect.name == "postgresql"
        assert [h.mrn for h in search_patients(db, "Dana")] == ["DEMO-004"]
        if postgres:
            db.execute(text("SET enable_seqscan = off"))  # a 6-row table: ask for the plan
            lines = db.execute(
                text(
                    "EXPLAIN SELECT id FROM patients WHERE lower(mrn) COLLATE \"C\" >= 'demo' "
                    "AND lower(mrn) COLLATE \"C\" < 'demo' || chr(1114111)"
                )
            ).scalars()
            assert "ix_patients_mrn_lower" in " ".join(lines)
        else:
            plan = db.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM patients "
                    "WHERE search_surname >= 'fl' AND search_surname < 'fl' || char(1114111)"
                )
            ).all()
            assert "ix_patients_search_surname" in " ".join(str(r) for r in plan)


def test_a_physician_edits_a_patient_with_the_new_records_checks_audited(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-005")
    assert clinic.client.get(f"/patients/{pid}/edit").status_code == 403  # nurses may not

    clinic.login("dr_demo")
    csrf = _csrf(clinic, f"/patients/{pid}/edit")
    form = {
        "csrf_token": csrf, "name": "Eli Flexington", "mrn": "DEMO-005B",
        "birth_date": "1990-04-02", "origin": "spinal", "clinician_id": "",
    }  # fmt: skip
    with clinic.sessions() as db:
        form["clinician_id"] = str(db.get(Patient, pid).clinician_id)  # type: ignore[union-attr]
    # the same checks as a new record: an MRN already used is refused, nothing changes
    clash = clinic.client.post(f"/patients/{pid}/edit", data={**form, "mrn": "DEMO-001"})
    assert clash.status_code == 422
    assert "Medical record number: already used by another patient" in clash.text
    future = clinic.client.post(f"/patients/{pid}/edit", data={**form, "birth_date": "2999-01-01"})
    assert future.status_code == 422 and "Date of birth" in future.text
    with clinic.sessions() as db:
        assert db.get(Patient, pid).mrn == "DEMO-005"  # type: ignore[union-attr]

    saved = clinic.client.post(f"/patients/{pid}/edit", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].endswith("notice=edited")
    with clinic.sessions() as db:
        entry = db.execute(
            select(AuditEntry).where(AuditEntry.action == "patient.edit")
        ).scalar_one()
    before, after = json.loads(entry.before_json), json.loads(entry.after_json)
    assert (before["name"], before["mrn"]) == ("Eli Flex", "DEMO-005")
    assert (after["name"], after["mrn"]) == ("Eli Flexington", "DEMO-005B")
    assert after["birth_date"].startswith("1990-04-02")
    assert _found_mrns(clinic, "flexing") == ["DEMO-005B"]  # searchable by the new name
    assert _found_mrns(clinic, "eli flexi") == ["DEMO-005B"]


def test_a_nurse_records_a_follow_up_with_mas_on_the_program_in_force(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-003")
    page = f"/patients/{pid}/follow-up"
    csrf = _csrf(clinic, page)
    soon = (clinic.clock() + timedelta(days=30)).replace(second=0, microsecond=0)
    form = {
        "csrf_token": csrf, "mas": "2,5", "side_effects": ["somnolence", "constipation"],
        "next_appointment_at": soon.strftime("%Y-%m-%dT%H:%M"), "notes": "walking better",
    }  # fmt: skip
    for field, bad, words in (
        ("mas", "6", "MAS score: allowed 0 to 5"),
        ("side_effects", ["itching"], "Side effects: allowed"),
        ("next_appointment_at", "2001-01-01T10:00", "Next appointment: allowed after now"),
    ):
        refused = clinic.client.post(page, data={**form, field: bad})
        assert refused.status_code == 422 and words in refused.text, refused.text
    done = clinic.client.post(page, data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("notice=followed_up")

    shown = clinic.client.get(page).text
    assert "Drowsiness (somnolence), Constipation" in shown
    assert soon.strftime("%Y-%m-%d %H:%M") in shown and "walking better" in shown
    with clinic.sessions() as db:
        patient = db.get(Patient, pid)
        assert patient is not None
        (observation,) = mas_observations(db, patient)
        assert observation.mas == 2.5
        assert observation.daily_dose_ug == patient.pumps[0].daily_dose_ug
        assert observation.program_version_id is not None
        recorded = select(FollowUp).where(FollowUp.patient_id == pid)  # the demo has its own
        assert db.execute(recorded).scalar_one().next_appointment_at == soon
    # the next appointment on the calendar (by MRN), and the MAS in the FHIR bundle
    ics = clinic.client.get("/api/calendar.ics").text
    assert f"DTSTART:{soon:%Y%m%dT%H%M}00" in ics and "ITB follow-up: DEMO-003" in ics
    bundle = clinic.client.get(f"/api/patients/{pid}/fhir").json()
    follow_up_mas = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["id"].startswith("follow-up-mas-")
    ]
    assert [o["valueQuantity"]["value"] for o in follow_up_mas] == [2.5]

    clinic.login("viewer_demo")  # a viewer reads the follow-ups, cannot record one
    assert "walking better" in clinic.client.get(page).text
    assert 'id="follow-up-form"' not in clinic.client.get(page).text


def _flag_a_refill(clinic: Clinic) -> int:
    pid = clinic.patient_id("DEMO-001")
    clinic.pumps.firmware("SIM-001").refill(clinic.clock(), 5.0, 500.0)  # it now expects 5.0 mL
    body = {
        "withdrawn_ml": 3.5, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0,
        "acknowledge_discrepancy": True, "discrepancy_note": "pocket checked",
    }  # fmt: skip
    done = clinic.client.post(f"/api/patients/{pid}/refill", json=body)
    assert done.status_code == 200 and done.json()["discrepancy_flagged"] is True
    return pid


def _dashboard_mark(clinic: Clinic, pid: int) -> bool:
    row = re.search(rf'<tr data-patient-id="{pid}"[^>]*>', clinic.client.get("/").text)
    assert row is not None
    return "data-flagged-refill" in row.group(0)


def test_a_flagged_refill_is_marked_on_the_dashboard_until_a_physician_reviews_it(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    pid = _flag_a_refill(clinic)
    assert _dashboard_mark(clinic, pid)
    assert clinic.row(pid)["flagged_refill"] is True
    review_page = clinic.client.get(f"/patients/{pid}/flagged-refills").text
    assert "only a physician" in review_page and "pocket checked" in review_page
    record_id = int(re.findall(r'data-refill-id="(\d+)"', review_page)[0])
    action = f"/patients/{pid}/flagged-refills/{record_id}/review"
    csrf = _csrf(clinic, f"/patients/{pid}/flagged-refills")
    refused = clinic.client.post(action, data={"csrf_token": csrf, "note": "seen"})
    assert refused.status_code == 403  # a nurse cannot review
    assert _dashboard_mark(clinic, pid)

    clinic.login("dr_demo")
    csrf = _csrf(clinic, f"/patients/{pid}/flagged-refills")
    reviewed = clinic.client.post(
        action, data={"csrf_token": csrf, "note": "catheter study normal"}, follow_redirects=False
    )
    assert reviewed.status_code == 303
    assert not _dashboard_mark(clinic, pid)  # the cached dashboard moved with the review
    again = clinic.client.post(action, data={"csrf_token": csrf, "note": ""})
    assert again.status_code == 409 and "already reviewed" in again.text
    with clinic.sessions() as db:
        entry = db.execute(
            select(AuditEntry).where(AuditEntry.action == "refill.review")
        ).scalar_one()
    assert entry.username == "dr_demo"
    assert json.loads(entry.after_json)["note"] == "catheter study normal"


def test_a_follow_up_reads_in_words_on_the_patient_page(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    csrf = _csrf(clinic, f"/patients/{pid}/follow-up")
    form = {"csrf_token": csrf, "mas": "3", "side_effects": ["urinary_retention"]}
    assert clinic.client.post(f"/patients/{pid}/follow-up", data=form).status_code == 200
    page = clinic.client.get(f"/patients/{pid}").text
    assert "Scored: 3 MAS points" in page and "Urinary retention" in page
    assert "urinary_retention" not in page.replace('value="urinary_retention"', "")
