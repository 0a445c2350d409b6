"""The demo clinic shows a reviewer what issue 14 added: a follow-up visit read in words on its
patient's page, and a refill flagged for a physician's review, marked on the dashboard until
one reviews it."""

from __future__ import annotations

import re

from itb.clinic.demo import DEMO_FLAGGED_NOTE, DEMO_FLAGGED_REFILL_MRN, DEMO_FOLLOW_UP
from tests.clinic.support import Clinic


def _dashboard_row(clinic: Clinic, patient_id: int) -> str:
    row = re.search(rf'<tr data-patient-id="{patient_id}"[^>]*>', clinic.client.get("/").text)
    assert row is not None
    return row.group(0)


def test_the_demo_dashboard_marks_a_flagged_refill_until_a_physician_reviews_it(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id(DEMO_FLAGGED_REFILL_MRN)
    assert 'data-flagged-refill="awaiting_review"' in _dashboard_row(clinic, pid)
    others = [f"DEMO-00{i}" for i in range(1, 7) if f"DEMO-00{i}" != DEMO_FLAGGED_REFILL_MRN]
    for mrn in others:  # only the one refill the demo acknowledged is marked
        assert "data-flagged-refill" not in _dashboard_row(clinic, clinic.patient_id(mrn))
    review_page = clinic.client.get(f"/patients/{pid}/flagged-refills")
    assert DEMO_FLAGGED_NOTE in review_page.text and "mL" in review_page.text
    record_id = re.findall(r'data-refill-id="(\d+)"', review_page.text)[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', review_page.text)
    assert csrf is not None
    reviewed = clinic.client.post(
        f"/patients/{pid}/flagged-refills/{record_id}/review",
        data={"csrf_token": csrf.group(1), "note": "catheter study booked"},
        follow_redirects=False,
    )
    assert reviewed.status_code == 303
    assert "data-flagged-refill" not in _dashboard_row(clinic, pid)


def test_the_demo_patient_page_shows_a_follow_up_in_words(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id(DEMO_FOLLOW_UP.mrn)
    page = clinic.client.get(f"/patients/{pid}").text
    assert "Scored: 2 MAS points" in page and "Constipation" in page
    visits = clinic.client.get(f"/patients/{pid}/follow-up").text
    assert "replacement discussed with the family" in visits
    assert re.search(r"\d{4}-\d\d-\d\d 09:00", visits)  # the next appointment, to the minute
