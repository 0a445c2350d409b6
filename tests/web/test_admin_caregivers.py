"""An administrator manages a caregiver's account too: sees whom it is linked to, resets a
forgotten password (a one-time password the caregiver replaces at the next log-in), disables
and enables it; a role never crosses between a caregiver and the care team. Every change is
audited with who, before and after. Through the real pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from itb.clinic.models import User
from tests.clinic.support import DEMO_PASSWORD, Clinic
from tests.web.test_admin import ADMIN, NEW_PASSWORD, _entries, _error, _log_in, _one_time_password
from tests.web.test_admin import _user_id as user_id

PARENT = "parent_demo"


def _row(page: str, username: str) -> str:
    match = re.search(rf'<tr data-username="{username}".*?</tr>', page, flags=re.S)
    assert match, f"no row for {username}"
    return match.group(0)


def test_the_account_list_names_the_patients_a_caregiver_is_linked_to(clinic: Clinic) -> None:
    _log_in(clinic.client, ADMIN)
    page = clinic.client.get("/admin/users").text
    row = _row(page, PARENT)
    assert "Caregiver of Casey Titration" in row
    assert "/role" not in row  # no role form for a family account
    assert "/reset" in row and "Disable" in row
    assert "/role" in _row(page, "nurse_demo")


def test_a_parent_who_forgot_the_password_gets_a_one_time_one_and_chooses_their_own(
    clinic: Clinic,
) -> None:
    family = TestClient(clinic.app)
    _log_in(family, PARENT)
    assert family.get("/family", follow_redirects=False).status_code == 303  # to the child
    csrf = _log_in(clinic.client, ADMIN)
    parent_id = user_id(clinic, PARENT)
    reset = clinic.client.post(f"/admin/users/{parent_id}/reset", data={"csrf_token": csrf})
    assert reset.status_code == 200 and "Their open sessions have ended" in reset.text
    one_time = _one_time_password(reset.text)
    assert "expires in 7 days" in reset.text
    assert family.get("/family", follow_redirects=False).headers["location"] == "/login"
    assert family.post(
        "/api/login", json={"username": PARENT, "password": DEMO_PASSWORD}
    ).status_code == 401  # fmt: skip

    # the one-time password opens only the "choose your own" page
    csrf = _log_in(family, PARENT, one_time)
    home = family.get("/family", follow_redirects=False)
    assert home.headers["location"] == "/family/password"
    assert family.get("/api/family/patients").status_code == 403
    chosen = {"csrf_token": csrf, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    assert family.post("/family/password", data=chosen, follow_redirects=False).status_code == 303
    _log_in(family, PARENT, NEW_PASSWORD)
    assert family.get("/api/family/patients").json()[0]["first_name"] == "Casey"

    [entry] = _entries(clinic, "user.password_reset")
    assert entry.username == ADMIN and entry.entity_id == str(parent_id)
    before, after = json.loads(entry.before_json), json.loads(entry.after_json)
    assert before["one_time_password_until_utc"] is None and after["one_time_password_until_utc"]
    assert after["role"] == "caregiver" and one_time not in entry.after_json


def test_a_caregiver_disabled_cannot_log_in_until_enabled(clinic: Clinic) -> None:
    family = TestClient(clinic.app)
    _log_in(family, PARENT)
    csrf = _log_in(clinic.client, ADMIN)
    parent_id = user_id(clinic, PARENT)
    action = f"/admin/users/{parent_id}/active"
    off = clinic.client.post(action, data={"csrf_token": csrf, "active": "no"})
    assert off.status_code == 200 and 'data-active="no"' in _row(off.text, PARENT)
    assert family.get("/api/family/patients").status_code == 401  # the session ended at once
    login = {"username": PARENT, "password": DEMO_PASSWORD}
    assert family.post("/api/login", json=login).status_code == 401
    on = clinic.client.post(action, data={"csrf_token": csrf, "active": "yes"})
    assert on.status_code == 200 and 'data-active="yes"' in _row(on.text, PARENT)
    assert family.post("/api/login", json=login).status_code == 200
    [disabled] = _entries(clinic, "user.disable")
    assert disabled.username == ADMIN
    assert json.loads(disabled.before_json)["active"] is True
    assert json.loads(disabled.after_json)["active"] is False
    assert len(_entries(clinic, "user.enable")) == 1


def test_a_caregiver_no_longer_linked_is_not_enabled_here(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    patient_id = clinic.patient_id("DEMO-003")
    [link] = clinic.client.get(f"/api/patients/{patient_id}/caregivers").json()
    revoked = clinic.client.post(f"/api/patients/{patient_id}/caregivers/{link['id']}/revoke")
    assert revoked.status_code in (200, 204), revoked.text
    csrf = _log_in(clinic.client, ADMIN)
    row = _row(clinic.client.get("/admin/users").text, PARENT)
    assert "no longer linked to a patient" in row and 'data-active="no"' in row
    refused = clinic.client.post(
        f"/admin/users/{user_id(clinic, PARENT)}/active", data={"csrf_token": csrf, "active": "yes"}
    )
    assert refused.status_code == 409
    assert "no longer linked to any patient" in _error(refused.text, "admin-error")
    assert _entries(clinic, "user.enable") == []


def test_a_role_never_crosses_between_a_caregiver_and_the_care_team(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, ADMIN)
    to_staff = clinic.client.post(
        f"/admin/users/{user_id(clinic, PARENT)}/role",
        data={"csrf_token": csrf, "role": "physician"},
    )
    assert to_staff.status_code == 409
    assert "cannot become a care-team account" in _error(to_staff.text, "admin-error")
    to_family = clinic.client.post(
        f"/admin/users/{user_id(clinic, 'nurse_demo')}/role",
        data={"csrf_token": csrf, "role": "caregiver"},
    )
    assert to_family.status_code == 422
    assert "cannot become a caregiver" in _error(to_family.text, "admin-error")
    with clinic.sessions() as db:
        roles = {u.username: u.role for u in db.query(User).all()}
    assert roles[PARENT] == "caregiver" and roles["nurse_demo"] == "nurse"
    assert _entries(clinic, "user.role_change") == []


def test_an_invitation_does_not_undo_an_administrators_disable(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, ADMIN)
    off = {"csrf_token": csrf, "active": "no"}
    clinic.client.post(f"/admin/users/{user_id(clinic, PARENT)}/active", data=off)
    clinic.login("nurse_demo")
    patient_id = clinic.patient_id("DEMO-001")
    body = {"username": PARENT, "first_name": "Alex", "clinic_phone": "+44 1 2345"}
    refused = clinic.client.post(f"/api/patients/{patient_id}/caregivers", json=body)
    assert refused.status_code == 409 and "disabled by an administrator" in refused.text
    with clinic.sessions() as db:
        parent = db.get(User, user_id(clinic, PARENT))
        assert parent is not None and not parent.active
