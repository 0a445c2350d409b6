"""The family's side (issue 16): a caregiver reaches only their own child, by any URL or API
call; the care team invites and revokes (audited); a family's report is urgent on the
dashboard, ranked with the other urgent patients, until a clinician acknowledges it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from itb.clinic import audit
from itb.clinic.models import AuditEntry, CaregiverLink, Patient
from itb.clinic.urgency import HARM_WORDS, Harm
from itb.web.app import PUBLIC_ROUTES, app_routes
from tests.clinic.support import Clinic

PARENT = "parent_demo"
CHILD_MRN = "DEMO-003"
# The family's own routes: the only ones a caregiver may use, and only with their child's id.
FAMILY_PREFIXES = ("/family", "/api/family")
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/api/family/patients/{patient_id}/reports": {"kind": "alarm", "detail": "two_tone"},
    "/api/patients/{patient_id}/caregivers": {
        "username": "someone_else", "first_name": "Sam", "clinic_phone": "+44 1 2345",
    },
}  # fmt: skip


def _patient_ids(clinic: Clinic) -> dict[str, int]:
    with clinic.sessions() as db:
        return {p.mrn: p.id for p in db.execute(select(Patient)).scalars()}


def _call(clinic: Clinic, route: APIRoute, method: str, path: str, csrf: str) -> int:
    if method == "GET":
        answer = clinic.client.get(path, follow_redirects=False)
    elif route.path.startswith("/api"):
        body = VALID_BODIES.get(route.path, {})
        answer = clinic.client.post(path, json=body, follow_redirects=False)
    else:
        form = {"csrf_token": csrf, "kind": "alarm", "detail": "two_tone", "username": "x_y"}
        answer = clinic.client.post(path, data=form, follow_redirects=False)
    return int(answer.status_code)


def _fill(path: str, patient_id: int) -> str:
    """The route's path with this patient's id and 1 for every other id."""
    path = path.replace("{patient_id}", str(patient_id))
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_a_caregiver_reaches_no_other_patient_by_any_route(clinic: Clinic) -> None:
    """Every route of the app (walked, so new routes are covered), every patient's id: only the
    family's routes with their own child's id answer; everything else is 403 or 404."""
    ids = _patient_ids(clinic)
    own = ids[CHILD_MRN]
    csrf = clinic.login(PARENT)["csrf_token"]
    refused: list[str] = []
    for route in app_routes():
        for method in sorted(route.methods or ()):
            if (method, route.path) in PUBLIC_ROUTES or route.path.endswith("/logout"):
                continue
            family = route.path.startswith(FAMILY_PREFIXES)
            has_id = "{patient_id}" in route.path
            for patient_id in [*sorted(ids.values()), 999_999] if has_id else [0]:
                if family and patient_id in (own, 0):
                    continue  # the caregiver's own page: tested below
                status = _call(clinic, route, method, _fill(route.path, patient_id), csrf)
                if status not in (403, 404):
                    refused.append(f"{method} {route.path} id={patient_id}: {status}")
    assert refused == []


def test_the_family_reaches_their_own_child(clinic: Clinic) -> None:
    own = _patient_ids(clinic)[CHILD_MRN]
    clinic.login(PARENT)
    children = clinic.client.get("/api/family/patients").json()
    assert children == [{"id": own, "first_name": "Casey"}]
    view = clinic.client.get(f"/api/family/patients/{own}").json()
    assert view["low_reservoir_alarm_in_words"]
    assert view["withdrawal_onset_h"] > 0
    page = clinic.client.get(f"/family/{own}")
    assert page.status_code == 200
    assert (
        "Casey" in page.text and "Casey Titration" not in page.text and CHILD_MRN not in page.text
    )
    card = clinic.client.get(f"/family/{own}/card")
    assert "Never stop intrathecal baclofen abruptly" in card.text and "MRI" in card.text
    assert "SIM-003" in card.text and "µg/mL" in card.text
    ics = clinic.client.get(f"/family/{own}/visits.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "Casey: pump refill" in ics.text and "Titration" not in ics.text


def test_the_page_login_takes_a_parent_to_the_family_page(clinic: Clinic) -> None:
    form = clinic.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = clinic.client.post(
        "/login",
        data={"username": PARENT, "password": "demo-password-1", "csrf_token": token.group(1)},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    assert "Casey's baclofen pump" in answer.text


def _row(clinic: Clinic, patient_id: int) -> tuple[int, dict[str, Any]]:
    rows: list[dict[str, Any]] = clinic.client.get("/api/patients").json()
    index = next(i for i, r in enumerate(rows) if r["id"] == patient_id)
    return index, rows[index]


def test_a_family_report_is_urgent_on_the_dashboard_until_acknowledged(clinic: Clinic) -> None:
    own = _patient_ids(clinic)[CHILD_MRN]
    clinic.login("nurse_demo")
    _, before = _row(clinic, own)
    assert before["harm"] != Harm.FAMILY_REPORT.value
    clinic.login(PARENT)
    body = {"kind": "withdrawal_sign", "detail": "itchy_skin_without_a_rash", "note": "since noon"}
    report = clinic.client.post(f"/api/family/patients/{own}/reports", json=body)
    assert report.status_code == 201, report.text

    clinic.login("nurse_demo")
    index, row = _row(clinic, own)
    assert row["harm"] == Harm.FAMILY_REPORT.value
    assert row["harm_words"] == HARM_WORDS[Harm.FAMILY_REPORT]
    rows = clinic.client.get("/api/patients").json()
    # ranked with the others by the time of harm: now, ahead of every harm still to come
    assert all(r["days_to_harm"] is None or r["days_to_harm"] >= 0 for r in rows[index + 1 :])
    assert index == 0 or all(r["days_to_harm"] <= 0 for r in rows[:index])
    assert "the family reports" in clinic.client.get("/").text

    # a new reading keeps the report first; only an acknowledgement ends it
    assert clinic.client.post(f"/api/patients/{own}/interrogate").status_code == 200
    assert _row(clinic, own)[1]["harm"] == Harm.FAMILY_REPORT.value
    ack = clinic.client.post(
        f"/api/patients/{own}/family-reports/{report.json()['id']}/acknowledge"
    )
    assert ack.status_code == 200, ack.text
    assert _row(clinic, own)[1]["harm"] == before["harm"]
    with clinic.sessions() as db:
        actions = set(db.execute(select(AuditEntry.action)).scalars())
    assert {"family.report", "family.report.acknowledge"} <= actions


def _first_login(clinic: Clinic, username: str, one_time_password: str) -> str:
    """Log in with the one-time password: every family page leads to choosing one's own, the
    API refuses until then. Returns the new password."""
    csrf = clinic.login(username, one_time_password)["csrf_token"]
    assert clinic.client.get("/api/family/patients").status_code == 403
    home = clinic.client.get("/family", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/family/password"
    mismatch = {"csrf_token": csrf, "password": "a-long-password-1", "repeat": "another-one-22"}
    answer = clinic.client.post("/family/password", data=mismatch)
    assert answer.status_code == 422 and "differ" in answer.text
    new = "a-long-password-1"
    form = {"csrf_token": csrf, "password": new, "repeat": new}
    assert clinic.client.post("/family/password", data=form).status_code == 200
    assert clinic.client.get("/api/family/patients").status_code == 200
    return new


def test_an_expired_one_time_password_opens_nothing(clinic: Clinic) -> None:
    patient_id = _patient_ids(clinic)["DEMO-002"]
    clinic.login("nurse_demo")
    body = {"username": "blake_gran", "first_name": "Blake", "clinic_phone": "+44 1 2345"}
    answer = clinic.client.post(f"/api/patients/{patient_id}/caregivers", json=body)
    password = answer.json()["one_time_password"]
    with clinic.sessions() as db:
        link = db.get(CaregiverLink, answer.json()["id"])
        assert link is not None and link.user.one_time_password_until_utc is not None
        link.user.one_time_password_until_utc = audit.utc_now() - timedelta(minutes=1)  # later
        db.commit()
    csrf = clinic.login("blake_gran", password)["csrf_token"]
    assert clinic.client.get(f"/api/family/patients/{patient_id}").status_code == 403
    assert "has expired" in clinic.client.get(f"/family/{patient_id}").text
    form = {"csrf_token": csrf, "password": "a-long-password-1", "repeat": "a-long-password-1"}
    assert clinic.client.post("/family/password", data=form).status_code == 403


def test_a_viewer_cannot_acknowledge_or_invite(clinic: Clinic) -> None:
    own = _patient_ids(clinic)[CHILD_MRN]
    clinic.login("viewer_demo")
    assert clinic.client.get(f"/api/patients/{own}/caregivers").status_code == 200
    assert clinic.client.post(f"/api/patients/{own}/caregivers", json={}).status_code == 403


def test_invite_shows_a_one_time_password_and_revoke_ends_the_access(clinic: Clinic) -> None:
    ids = _patient_ids(clinic)
    patient_id = ids["DEMO-001"]
    clinic.login("nurse_demo")
    body = {"username": "alex_mum", "first_name": "Alex", "clinic_phone": "+44 20 7946 0001"}
    invited = clinic.client.post(f"/api/patients/{patient_id}/caregivers", json=body)
    assert invited.status_code == 201, invited.text
    password = invited.json()["one_time_password"]
    assert len(password) >= 10
    listed = clinic.client.get(f"/api/patients/{patient_id}/caregivers").json()
    assert "one_time_password" not in listed[0] and listed[0]["username"] == "alex_mum"

    own_password = _first_login(clinic, "alex_mum", password)
    clinic.login("alex_mum", own_password)
    assert clinic.client.get(f"/api/family/patients/{patient_id}").status_code == 200
    assert clinic.client.get(f"/api/family/patients/{ids[CHILD_MRN]}").status_code == 404

    clinic.login("nurse_demo")
    link_id = listed[0]["id"]
    revoked = clinic.client.post(f"/api/patients/{patient_id}/caregivers/{link_id}/revoke")
    assert revoked.status_code == 204
    clinic.client.cookies.clear()
    body = {"username": "alex_mum", "password": own_password}
    assert clinic.client.post("/api/login", json=body).status_code == 401
    with clinic.sessions() as db:
        actions = set(db.execute(select(AuditEntry.action)).scalars())
    assert {"caregiver.invite", "caregiver.revoke"} <= actions


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("username", {"username": "-bad", "first_name": "Al", "clinic_phone": "123"}),
        ("first_name", {"username": "ok_name", "first_name": "4x", "clinic_phone": "123"}),
        ("clinic_phone", {"username": "ok_name", "first_name": "Al", "clinic_phone": "call me"}),
    ],
)
def test_a_bad_invite_names_its_field_and_changes_nothing(
    clinic: Clinic, field: str, body: dict[str, str]
) -> None:
    patient_id = _patient_ids(clinic)["DEMO-001"]
    clinic.login("nurse_demo")
    answer = clinic.client.post(f"/api/patients/{patient_id}/caregivers", json=body)
    assert answer.status_code == 422
    assert field in answer.text
    assert clinic.client.get(f"/api/patients/{patient_id}/caregivers").json() == []


def test_a_report_of_an_unknown_sign_is_refused_in_words(clinic: Clinic) -> None:
    own = _patient_ids(clinic)[CHILD_MRN]
    clinic.login(PARENT)
    body = {"kind": "withdrawal_sign", "detail": "sneezing"}
    answer = clinic.client.post(f"/api/family/patients/{own}/reports", json=body)
    assert answer.status_code == 422
    assert "itchy skin without a rash" in answer.text


def test_a_child_without_a_pump_has_a_page_and_a_report_is_refused_in_words(
    clinic: Clinic,
) -> None:
    """A report that could not rank on the dashboard (no pump row) is refused, not filed unseen."""
    patient_id = _patient_ids(clinic)["DEMO-006"]  # in screening: no pump yet
    clinic.login("nurse_demo")
    body = {"username": "frankie_dad", "first_name": "Frankie", "clinic_phone": "+44 1 2345"}
    password = clinic.client.post(f"/api/patients/{patient_id}/caregivers", json=body).json()[
        "one_time_password"
    ]
    clinic.login("frankie_dad", _first_login(clinic, "frankie_dad", password))
    page = clinic.client.get(f"/family/{patient_id}")
    assert page.status_code == 200 and "no reading of the pump yet" in page.text
    report = {"kind": "alarm", "detail": "not_sure"}
    answer = clinic.client.post(f"/api/family/patients/{patient_id}/reports", json=report)
    assert answer.status_code == 409
    assert "please call the clinic" in answer.json()["detail"]
    assert clinic.client.get(f"/api/family/patients/{patient_id}").json()["open_reports"] == []
