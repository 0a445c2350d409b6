"""An administrator manages the care team's accounts (create, reset, disable/enable, change
role; never the last administrator away), everyone changes their own password, and the audit
log is read with filters and its chain verified in words: through the real pages, on SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from itb.cli import app as cli_app
from itb.clinic import audit
from itb.clinic.db import make_engine, make_session_factory
from itb.clinic.models import AuditEntry, User
from tests.clinic.support import DEMO_PASSWORD, Clinic, csrf_in, send_reviewed

ADMIN = "admin_demo"
NEW_PASSWORD = "a-new-password-1"


def _log_in(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> str:
    """Log in through the log-in page; the session's CSRF token for its forms."""
    client.cookies.clear()
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_in(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    landing = client.get(answer.headers["location"])
    return csrf_in(landing.text)


def _user_id(clinic: Clinic, username: str) -> int:
    with clinic.sessions() as db:
        return int(db.execute(select(User.id).where(User.username == username)).scalar_one())


def _entries(clinic: Clinic, action: str) -> list[AuditEntry]:
    with clinic.sessions() as db:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(db.execute(query).scalars())


def _one_time_password(text: str) -> str:
    match = re.search(r"data-otp>([^<]+)<", text)
    assert match, "no one-time password on the page"
    return html.unescape(match.group(1))


def _error(text: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</p>', text, flags=re.S)
    assert match, f"no {element_id} on the page"
    return html.unescape(match.group(1))


def test_a_new_nurse_must_choose_her_own_password_before_anything_else(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, ADMIN)
    created = clinic.client.post(
        "/admin/users", data={"csrf_token": csrf, "username": "j.doe-2@clinic", "role": "nurse"}
    )
    assert created.status_code == 200
    one_time = _one_time_password(created.text)
    assert "shown only now" in created.text
    [added] = [e for e in _entries(clinic, "user.add") if "j.doe-2@clinic" in e.after_json]
    assert json.loads(added.after_json) == {"username": "j.doe-2@clinic", "role": "nurse"}
    assert added.username == ADMIN

    # the one-time password opens the "choose your own" page, and nothing else
    csrf = _log_in(clinic.client, "j.doe-2@clinic", one_time)
    assert clinic.client.get("/", follow_redirects=False).headers["location"] == (
        "/account/password"
    )
    refused = clinic.client.get("/api/patients")
    assert refused.status_code == 403 and "set your own password" in refused.text
    page = clinic.client.get("/account/password")
    assert "Choose your own password" in page.text
    changed = clinic.client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": one_time, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert clinic.client.get("/", follow_redirects=False).status_code == 200

    # from now on her own password, and the one-time one is spent
    _log_in(clinic.client, "j.doe-2@clinic", NEW_PASSWORD)
    assert clinic.client.post(
        "/api/login", json={"username": "j.doe-2@clinic", "password": one_time}
    ).status_code == 401  # fmt: skip


def test_a_username_outside_the_rule_or_taken_is_refused_in_words(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, ADMIN)
    for username, words in (
        ("has space", "Username: 1 to 64 letters, digits, dots, dashes, underscores or @"),
        ("nurse_demo", "Username: nurse_demo is taken; choose another"),
    ):
        answer = clinic.client.post(
            "/admin/users", data={"csrf_token": csrf, "username": username, "role": "nurse"}
        )
        assert answer.status_code == 422
        assert _error(answer.text, "admin-error").startswith(words)
    bad_role = clinic.client.post(
        "/admin/users", data={"csrf_token": csrf, "username": "ok.name", "role": "caregiver"}
    )
    assert bad_role.status_code == 422
    assert _error(bad_role.text, "admin-error") == (
        "Role: physician, nurse, viewer or administrator"
    )


def test_a_reset_ends_the_users_sessions_and_issues_a_one_time_password(clinic: Clinic) -> None:
    nurse = TestClient(clinic.app)
    _log_in(nurse, "nurse_demo")
    assert nurse.get("/api/patients").status_code == 200
    csrf = _log_in(clinic.client, ADMIN)
    nurse_id = _user_id(clinic, "nurse_demo")
    reset = clinic.client.post(f"/admin/users/{nurse_id}/reset", data={"csrf_token": csrf})
    assert reset.status_code == 200 and "Their open sessions have ended" in reset.text
    one_time = _one_time_password(reset.text)
    assert nurse.get("/api/patients").status_code == 401  # the old session is gone
    assert nurse.post(
        "/api/login", json={"username": "nurse_demo", "password": DEMO_PASSWORD}
    ).status_code == 401  # fmt: skip
    _log_in(nurse, "nurse_demo", one_time)
    assert nurse.get("/", follow_redirects=False).headers["location"] == "/account/password"
    [entry] = _entries(clinic, "user.password_reset")
    assert one_time not in entry.after_json and entry.entity_id == str(nurse_id)


def test_disable_and_enable_are_audited_with_before_and_after(clinic: Clinic) -> None:
    nurse = TestClient(clinic.app)
    _log_in(nurse, "nurse_demo")
    csrf = _log_in(clinic.client, ADMIN)
    nurse_id = _user_id(clinic, "nurse_demo")
    disabled = clinic.client.post(
        f"/admin/users/{nurse_id}/active", data={"csrf_token": csrf, "active": "no"}
    )
    assert disabled.status_code == 200 and "Account disabled" in disabled.text
    assert 'data-username="nurse_demo" data-active="no"' in disabled.text
    assert nurse.get("/api/patients").status_code == 401
    assert nurse.post(
        "/api/login", json={"username": "nurse_demo", "password": DEMO_PASSWORD}
    ).status_code == 401  # fmt: skip
    [entry] = _entries(clinic, "user.disable")
    assert json.loads(entry.before_json)["active"] is True
    assert json.loads(entry.after_json)["active"] is False

    clinic.client.post(
        f"/admin/users/{nurse_id}/active", data={"csrf_token": csrf, "active": "yes"}
    )
    _log_in(nurse, "nurse_demo")
    assert nurse.get("/api/patients").status_code == 200
    [enabled] = _entries(clinic, "user.enable")
    assert json.loads(enabled.after_json)["active"] is True


def test_a_role_change_is_audited_and_applies_at_once(clinic: Clinic) -> None:
    nurse = TestClient(clinic.app)
    _log_in(nurse, "nurse_demo")
    csrf = _log_in(clinic.client, ADMIN)
    nurse_id = _user_id(clinic, "nurse_demo")
    answer = clinic.client.post(
        f"/admin/users/{nurse_id}/role", data={"csrf_token": csrf, "role": "viewer"}
    )
    assert answer.status_code == 200 and "Role changed" in answer.text
    [entry] = _entries(clinic, "user.role_change")
    assert json.loads(entry.before_json)["role"] == "nurse"
    assert json.loads(entry.after_json)["role"] == "viewer"
    assert nurse.get("/api/me").json()["role"] == "viewer"  # her next request, same session
    pid = next(r["id"] for r in nurse.get("/api/patients").json() if r["mrn"] == "DEMO-001")
    refill = nurse.get(f"/patients/{pid}/refill")
    assert refill.status_code == 403


def test_the_last_active_administrator_cannot_be_disabled_or_demoted(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, ADMIN)
    admin_id = _user_id(clinic, ADMIN)
    demoted = clinic.client.post(
        f"/admin/users/{admin_id}/role", data={"csrf_token": csrf, "role": "viewer"}
    )
    assert demoted.status_code == 409
    assert "admin_demo is the last active administrator" in _error(demoted.text, "admin-error")

    # a second administrator, then disabled: admin_demo is the last active one again
    created = clinic.client.post(
        "/admin/users", data={"csrf_token": csrf, "username": "it.second", "role": "administrator"}
    )
    assert created.status_code == 200
    second_id = _user_id(clinic, "it.second")
    disabled = clinic.client.post(
        f"/admin/users/{second_id}/active", data={"csrf_token": csrf, "active": "no"}
    )
    assert disabled.status_code == 200
    again = clinic.client.post(
        f"/admin/users/{admin_id}/role", data={"csrf_token": csrf, "role": "nurse"}
    )
    assert again.status_code == 409
    own = clinic.client.post(
        f"/admin/users/{admin_id}/active", data={"csrf_token": csrf, "active": "no"}
    )
    assert own.status_code == 409 and "your own account" in _error(own.text, "admin-error")
    with clinic.sessions() as db:
        admin = db.get(User, admin_id)
        assert admin is not None and admin.role == "administrator" and admin.active
    assert _entries(clinic, "user.role_change") == []


def test_only_administrators_manage_accounts_and_they_see_no_patient(clinic: Clinic) -> None:
    _log_in(clinic.client, "dr_demo")
    assert clinic.client.get("/admin/users").status_code == 403
    assert clinic.client.get("/admin/audit").status_code == 200  # a physician reads the log
    _log_in(clinic.client, "nurse_demo")
    assert clinic.client.get("/admin/audit").status_code == 403
    _log_in(clinic.client, "viewer_demo")
    assert clinic.client.get("/admin/users").status_code == 403
    _log_in(clinic.client, ADMIN)
    assert clinic.client.get("/admin/users").status_code == 200
    assert clinic.client.get("/").status_code == 403
    assert clinic.client.get("/api/patients").status_code == 403


def test_changing_ones_own_password_needs_the_current_one_and_ends_other_sessions(
    clinic: Clinic,
) -> None:
    elsewhere = TestClient(clinic.app)
    _log_in(elsewhere, "dr_demo")
    csrf = _log_in(clinic.client, "dr_demo")
    wrong = clinic.client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": "not-it-at-all", "new": NEW_PASSWORD,
              "repeat": NEW_PASSWORD},
    )  # fmt: skip
    assert wrong.status_code == 422
    assert _error(wrong.text, "password-error") == (
        "Current password: this is not your current password"
    )
    differ = clinic.client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": DEMO_PASSWORD, "new": NEW_PASSWORD,
              "repeat": NEW_PASSWORD + "x"},
    )  # fmt: skip
    assert differ.status_code == 422 and "New password again" in differ.text
    assert elsewhere.get("/api/patients").status_code == 200  # nothing changed yet
    done = clinic.client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": DEMO_PASSWORD, "new": NEW_PASSWORD,
              "repeat": NEW_PASSWORD},
    )  # fmt: skip
    assert done.status_code == 200 and "Password changed" in done.text
    assert clinic.client.get("/api/patients").status_code == 200  # this session goes on
    assert elsewhere.get("/api/patients").status_code == 401  # the other one has ended
    _log_in(elsewhere, "dr_demo", NEW_PASSWORD)
    [entry] = _entries(clinic, "user.password_change")
    assert NEW_PASSWORD not in entry.after_json


def test_a_caregiver_changes_their_own_password_on_the_family_page(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, "parent_demo")
    form = clinic.client.get("/family/account")
    assert form.status_code == 200 and "Change your password" in form.text
    assert 'href="/static/family.css"' in form.text
    done = clinic.client.post(
        "/family/account",
        data={"csrf_token": csrf, "current": DEMO_PASSWORD, "new": NEW_PASSWORD,
              "repeat": NEW_PASSWORD},
    )  # fmt: skip
    assert done.status_code == 200 and "Password changed" in done.text
    assert clinic.client.get("/account/password").status_code == 403  # the care team's page
    _log_in(clinic.client, "parent_demo", NEW_PASSWORD)


def test_the_audit_log_filters_by_who_what_patient_and_minute(clinic: Clinic) -> None:
    _log_in(clinic.client, "nurse_demo")  # a log-in entry by the nurse
    _log_in(clinic.client, ADMIN)
    mine = clinic.client.get("/admin/audit", params={"who": "nurse_demo", "what": "login"})
    assert mine.status_code == 200
    rows = re.findall(r'<tr data-entry="\d+">(.*?)</tr>', mine.text, flags=re.S)
    assert rows and all("nurse_demo" in r and "Logged in" in r for r in rows)
    assert not re.search(r"\d{2}:\d{2}:\d{2}", mine.text)  # to the minute
    assert "{" not in "".join(rows)  # before/after in words, never the stored JSON

    # the demo's seeding of each pump is audited on its patient; the MRN in any case
    about = clinic.client.get("/admin/audit", params={"patient": "demo-001"})
    entries = re.findall(r'<tr data-entry="\d+">(.*?)</tr>', about.text, flags=re.S)
    assert entries and all("atient DEMO-001" in e for e in entries)  # itself, visits, pump
    unknown = clinic.client.get("/admin/audit", params={"patient": "NO-SUCH"})
    assert unknown.status_code == 422
    assert _error(unknown.text, "audit-error").startswith("Patient (MRN): the MRN of a patient")

    now = audit.utc_now()
    future = (now.replace(year=now.year + 1)).strftime("%Y-%m-%dT%H:%M")
    later = clinic.client.get("/admin/audit", params={"from_utc": future})
    assert "No entry matches." in later.text
    this_minute = now.strftime("%Y-%m-%dT%H:%M")
    up_to_now = clinic.client.get("/admin/audit", params={"to_utc": this_minute, "who": ADMIN})
    assert 'data-entry="' in up_to_now.text  # the end's whole minute is in the range
    backwards = clinic.client.get(
        "/admin/audit", params={"from_utc": this_minute, "to_utc": "2020-01-01T00:00"}
    )
    assert backwards.status_code == 422
    assert "To (UTC): the end of the range must not be before its start" in backwards.text


def test_verify_chain_says_in_words_whether_the_log_is_intact(clinic: Clinic) -> None:
    csrf = _log_in(clinic.client, "dr_demo")
    intact = clinic.client.post("/admin/audit/verify", data={"csrf_token": csrf})
    assert intact.status_code == 200
    assert 'data-intact="yes"' in intact.text and "The audit log is intact" in intact.text
    with clinic.sessions() as db:
        last = db.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
        forged = AuditEntry(
            at_utc=audit.utc_now(), user_id=None, username="mallory", action="user.role_change",
            entity="user", entity_id="1", before_json="null", after_json="null",
            prev_hash=last.hash, hash="f" * 64,
        )  # fmt: skip
        db.add(forged)
        db.commit()
        forged_id = forged.id
    broken = clinic.client.post("/admin/audit/verify", data={"csrf_token": csrf})
    assert 'data-intact="no"' in broken.text
    sentence = _error(broken.text, "chain-result")
    assert f"NOT intact: entry number {forged_id}" in sentence and " UTC" in sentence


def test_itb_user_add_makes_an_administrator(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    result = CliRunner().invoke(
        cli_app,
        ["user", "add", "it.admin@clinic", "--role", "administrator", "--password-stdin",
         "--database-url", url],
        input="admin-password-1\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added administrator it.admin@clinic" in result.output
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        user = db.execute(select(User).where(User.username == "it.admin@clinic")).scalar_one()
        assert user.role == "administrator" and user.one_time_password_until_utc is None
    engine.dispose()


# what the audit page must never show, whatever an entry holds: stored JSON, a Python field
# name with its unit, Python's None, a time to the second or beyond
RAW = re.compile(
    r'\{"|\b[a-z]+(?:_[a-z]+)*_(?:ml|ug|ug_per_day|ug_per_h|ug_per_ml|cm|mas)\b'
    r"|\b[a-z]+(?:_[a-z]+)+=|\bNone\b|\d\d:\d\d:\d\d"
)


def test_a_refill_and_a_program_read_in_words_in_the_audit_log(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    refill = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={"withdrawn_ml": 2.8, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0},
    )
    assert refill.status_code == 200, refill.text
    clinic.login("dr_demo")
    sent = send_reviewed(clinic, pid, {"rate_ug_per_day": 460})
    assert sent.status_code == 200, sent.text
    _log_in(clinic.client, "dr_demo")
    page = clinic.client.get("/admin/audit", params={"patient": "DEMO-001"})
    rows = re.findall(r'<tr data-entry="\d+">(.*?)</tr>', page.text, flags=re.S)
    assert len(rows) >= 2
    text = html.unescape(re.sub(r"<[^>]+>", " ", "".join(rows)))
    assert not RAW.search(text), RAW.search(text)
