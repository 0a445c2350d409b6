"""The JSON API, on SQLite and on PostgreSQL: log-in, roles, dashboard, program, refill."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from itb.clinic.models import AuditEntry, ProgramVersion, Pump, PumpEvent, Visit
from itb.web.app import app_routes
from tests.clinic.support import Clinic


def _count(clinic: Clinic, model: type) -> int:
    with clinic.sessions() as db:
        return int(db.execute(select(func.count()).select_from(model)).scalar_one())


def test_every_api_route_but_login_answers_401_without_a_session(clinic: Clinic) -> None:
    checked = 0
    for route in app_routes():
        path = route.path
        if not path.startswith("/api") or path == "/api/login":
            continue
        for method in route.methods:
            response = clinic.client.request(method, path.replace("{patient_id}", "1"), json={})
            assert response.status_code == 401, (method, path)
            checked += 1
    assert checked >= 9


def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(clinic: Clinic) -> None:
    bad = {"username": "nurse_demo", "password": "wrong-password"}
    assert clinic.client.post("/api/login", json=bad).status_code == 401
    for _ in range(4):
        clinic.client.post("/api/login", json=bad)
    good = {"username": "nurse_demo", "password": "demo-password-1"}
    locked = clinic.client.post("/api/login", json=good)
    assert locked.status_code == 429
    assert "set-cookie" not in locked.headers


def test_session_cookie_is_httponly_and_samesite(clinic: Clinic) -> None:
    response = clinic.client.post(
        "/api/login", json={"username": "viewer_demo", "password": "demo-password-1"}
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


def test_logout_ends_the_server_side_session(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    token = dict(clinic.client.cookies)
    assert clinic.client.post("/api/logout").status_code == 204
    clinic.client.cookies.update(token)  # a stolen copy of the old cookie
    assert clinic.client.get("/api/patients").status_code == 401


def test_dashboard_lists_most_urgent_first_with_the_day_counts(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    rows = clinic.client.get("/api/patients").json()
    assert {"id", "name", "days_to_low_reservoir", "days_to_empty", "days_to_eri"} <= set(rows[0])
    urgency = [
        min(
            d
            for d in (r["days_to_low_reservoir"], r["days_to_stability_limit"], r["days_to_eri"])
            if d is not None
        )
        for r in rows
        if r["serial"]
    ]
    assert urgency == sorted(urgency)
    by_name = {r["name"]: r for r in rows}
    assert by_name["Alex Near-Empty"]["days_to_low_reservoir"] < 3
    assert by_name["Dana Stability"]["days_to_stability_limit"] < 30
    assert rows[-1]["serial"] is None  # the screening patient has no pump yet


def test_dashboard_filters_by_clinician(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    with clinic.sessions() as db:
        from itb.clinic.models import User

        other = db.execute(select(User.id).where(User.username == "dr_other")).scalar_one()
    rows = clinic.client.get("/api/patients", params={"clinician_id": other}).json()
    assert {r["clinician"] for r in rows} == {"dr_other"}
    assert len(rows) == 2


def test_a_viewer_may_not_change_a_program(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    pid = clinic.patient_id("DEMO-001")
    before = clinic.pumps.firmware("SIM-001").status().to_dict()["program"]
    visits = _count(clinic, Visit)
    response = clinic.client.post(f"/api/patients/{pid}/program", json={"rate_ug_per_day": 300})
    assert response.status_code == 403
    assert clinic.pumps.firmware("SIM-001").status().to_dict()["program"] == before
    assert _count(clinic, Visit) == visits


def test_a_nurse_may_not_change_a_program_either(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    response = clinic.client.post(f"/api/patients/{pid}/program", json={"rate_ug_per_day": 300})
    assert response.status_code == 403


def test_a_physician_changes_the_program_and_every_version_is_kept(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")
    response = clinic.client.post(
        f"/api/patients/{pid}/program",
        json={
            "steps": [
                {"start": "00:00", "rate_ug_per_h": 8.0},
                {"start": "08:00", "rate_ug_per_h": 10.0},
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["daily_dose_ug"] == 8 * 8 + 16 * 10
    status = clinic.pumps.firmware("SIM-003").status().to_dict()
    assert status["daily_dose_ug"] == 224.0
    with clinic.sessions() as db:
        versions = (
            db.execute(
                select(ProgramVersion.version)
                .join(Pump, Pump.id == ProgramVersion.pump_id)
                .where(Pump.serial == "SIM-003")
            )
            .scalars()
            .all()
        )
        entry = db.execute(
            select(AuditEntry).where(AuditEntry.action == "pump.program")
        ).scalar_one()
    assert body["version"] == max(versions) and len(set(versions)) == len(versions)
    assert '"rate_ug_per_day":200.0' in entry.before_json and "224" in entry.after_json
    assert entry.username == "dr_demo"


def test_an_out_of_range_program_gets_422_naming_the_field_and_changes_nothing(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")
    visits, versions = _count(clinic, Visit), _count(clinic, ProgramVersion)
    response = clinic.client.post(f"/api/patients/{pid}/program", json={"rate_ug_per_day": 5000})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == "daily_dose_ug" and "2000" in detail["msg"]
    bad_step = clinic.client.post(
        f"/api/patients/{pid}/program", json={"steps": [{"start": "25:00", "rate_ug_per_h": 5}]}
    )
    assert bad_step.status_code == 422 and "23:59" in bad_step.json()["detail"][0]["msg"]
    assert (_count(clinic, Visit), _count(clinic, ProgramVersion)) == (visits, versions)


def test_a_nurse_refills_and_the_dashboard_shows_the_new_dates(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    before = clinic.row(pid)
    assert before["days_to_low_reservoir"] < 3
    response = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={"withdrawn_ml": 2.8, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert abs(body["expected_ml"] - 2.9) < 0.05 and not body["discrepancy_flagged"]
    after = clinic.row(pid)
    # 18 mL above the 2 mL alarm at 0.9 mL/day; the next refill 5 days before it (S24)
    assert abs(after["days_to_low_reservoir"] - 20.0) < 0.1
    assert after["next_refill_at"][:10] == (clinic.clock() + timedelta(days=15)).date().isoformat()
    assert after["next_refill_at"] > before["next_refill_at"]
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 20.0
    visits = clinic.client.get(f"/api/patients/{pid}/visits").json()
    assert visits[0]["kind"] == "refill" and visits[0]["status"] == "completed"


def test_a_withdrawn_volume_far_from_the_expected_one_is_flagged(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    response = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={"withdrawn_ml": 0.5, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0},
    )
    assert response.json()["discrepancy_flagged"] is True


def test_an_overfill_is_refused_with_the_field_and_nothing_changes(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    visits, events = _count(clinic, Visit), _count(clinic, PumpEvent)
    for body, field in (
        ({"withdrawn_ml": 2.8, "filled_ml": 25.0, "concentration_ug_per_ml": 500.0}, "filled_ml"),
        ({"withdrawn_ml": 2.8, "filled_ml": 20.0, "concentration_ug_per_ml": 300.0},
         "concentration_ug_per_ml"),
        ({"withdrawn_ml": -1, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0}, "withdrawn_ml"),
    ):  # fmt: skip
        response = clinic.client.post(f"/api/patients/{pid}/refill", json=body)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == field
        assert "allowed" in response.json()["detail"][0]["msg"]
    assert (_count(clinic, Visit), _count(clinic, PumpEvent)) == (visits, events)
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml < 3


def test_screening_dose_is_recorded_with_its_response(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    response = clinic.client.post(
        f"/api/patients/{pid}/screening",
        json={"dose_ug": 50, "ashworth_before": 4, "ashworth_after": 2},
    )
    assert response.status_code == 200
    assert response.json()["details"]["responded"] is True
    refused = clinic.client.post(
        f"/api/patients/{pid}/screening",
        json={"dose_ug": 500, "ashworth_before": 4, "ashworth_after": 2},
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "dose_ug"


def test_calendar_lists_refills_and_replacements_as_rfc5545(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    response = clinic.client.get("/api/calendar.ics")
    assert response.headers["content-type"].startswith("text/calendar")
    text = response.text
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and text.endswith(
        "END:VCALENDAR\r\n"
    )
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    unfolded = text.replace("\r\n ", "")
    assert "SUMMARY:ITB refill: Alex Near-Empty (SIM-001)" in unfolded
    assert "ITB pump replacement (ERI): Blake Battery-ERI" in unfolded
    assert unfolded.count("BEGIN:VEVENT") == unfolded.count("END:VEVENT") >= 5


def test_the_audit_log_is_intact_after_the_changes(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    clinic.client.post(f"/api/patients/{pid}/interrogate")
    clinic.login("dr_demo")
    report = clinic.client.get("/api/audit/verify").json()
    assert report["intact"] and report["entries"] > 5
    clinic.login("nurse_demo")
    assert clinic.client.get("/api/audit/verify").status_code == 403


# Program checks (itb.programmer.programming, docs/refill.md "Programming checks") -------------
def _program(clinic: Clinic, pid: int, body: dict) -> object:  # type: ignore[type-arg]
    return clinic.client.post(f"/api/patients/{pid}/program", json=body)


def test_a_change_beyond_the_titration_limit_needs_confirm_and_a_reason(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")  # spinal origin, titrating, now 200 µg/day
    visits, versions = _count(clinic, Visit), _count(clinic, ProgramVersion)
    # 200 -> 300 µg/day is +50%, beyond the +30% a day of spinal titration (S46)
    unconfirmed = _program(clinic, pid, {"rate_ug_per_day": 300})
    assert unconfirmed.status_code == 422  # type: ignore[attr-defined]
    detail = unconfirmed.json()["detail"][0]  # type: ignore[attr-defined]
    assert detail["loc"][-1] == "confirm"
    assert "+50.0%" in detail["msg"] and "+30% limit" in detail["msg"]
    no_reason = _program(clinic, pid, {"rate_ug_per_day": 300, "confirm": True, "reason": " "})
    assert no_reason.status_code == 422  # type: ignore[attr-defined]
    assert no_reason.json()["detail"][0]["loc"][-1] == "reason"  # type: ignore[attr-defined]
    assert (_count(clinic, Visit), _count(clinic, ProgramVersion)) == (visits, versions)
    assert clinic.pumps.firmware("SIM-003").status().daily_dose_ug == pytest.approx(200.0)

    reason = "MAS still 3 at 200 µg/day; discussed with the patient"
    confirmed = _program(clinic, pid, {"rate_ug_per_day": 300, "confirm": True, "reason": reason})
    assert confirmed.status_code == 200, confirmed.text  # type: ignore[attr-defined]
    review = confirmed.json()["review"]  # type: ignore[attr-defined]
    assert (review["old_daily_dose_ug"], review["new_daily_dose_ug"]) == (200.0, 300.0)
    assert review["change_percent"] == 50.0 and review["verdict"] == "warn"
    assert clinic.pumps.firmware("SIM-003").status().daily_dose_ug == pytest.approx(300.0)
    visit = clinic.client.get(f"/api/patients/{pid}/visits").json()[0]
    assert visit["kind"] == "programming" and visit["details"]["confirmation_reason"] == reason
    with clinic.sessions() as db:
        entry = db.execute(
            select(AuditEntry).where(AuditEntry.action == "pump.program")
        ).scalar_one()
    assert json.loads(entry.after_json)["confirmation_reason"] == reason


def test_a_likely_tenfold_typo_needs_confirmation(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")
    response = _program(clinic, pid, {"rate_ug_per_day": 20})  # 200 -> 20: 0.1×
    assert response.status_code == 422  # type: ignore[attr-defined]
    detail = response.json()["detail"][0]  # type: ignore[attr-defined]
    assert detail["loc"][-1] == "confirm" and "misplaced decimal point" in detail["msg"]


def test_a_rate_the_pump_cannot_deliver_is_refused_naming_the_steps(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")
    # 10 µg/h with one hour at 1500 µg/h: 1730 µg/day, but 1500 µg/h at 500 µg/mL is
    # 1500 × 24 / 500 = 72 mL/day, above the 24 mL/day this pump delivers: refused, even confirmed
    steps = [
        {"start": "00:00", "rate_ug_per_h": 10},
        {"start": "08:00", "rate_ug_per_h": 1500},
        {"start": "09:00", "rate_ug_per_h": 10},
    ]
    response = _program(clinic, pid, {"steps": steps, "confirm": True, "reason": "test"})
    assert response.status_code == 422  # type: ignore[attr-defined]
    detail = response.json()["detail"][0]  # type: ignore[attr-defined]
    assert detail["loc"][-1] == "steps"
    assert "72.000 mL/day" in detail["msg"] and "24 mL/day" in detail["msg"]
    assert clinic.pumps.firmware("SIM-003").status().daily_dose_ug == pytest.approx(200.0)


def test_the_review_shows_every_step_and_uses_the_concentration_read_back(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-005")  # flex: 00:00 15, 07:00 25, 21:00 18 µg/h at 500 µg/mL
    steps = [
        {"start": "00:00", "rate_ug_per_h": 16.5},
        {"start": "07:00", "rate_ug_per_h": 25},
        {"start": "21:00", "rate_ug_per_h": 18},
    ]
    review = clinic.client.post(f"/api/patients/{pid}/program/review", json={"steps": steps})
    assert review.status_code == 200, review.text
    body = review.json()
    # old 7 × 15 + 14 × 25 + 3 × 18 = 509; new 7 × 16.5 + 350 + 54 = 519.5 µg/day: +2.06%
    assert (body["old_daily_dose_ug"], body["new_daily_dose_ug"]) == (509.0, 519.5)
    assert body["change_percent"] == 2.1 and body["verdict"] == "ok"
    rows = {r["start"]: r for r in body["rows"]}
    assert rows["00:00"]["old_rate_ug_per_h"] == 15.0 and rows["00:00"]["change_percent"] == 10.0
    assert rows["07:00"]["change_percent"] == 0.0
    assert body["new_volume_per_day_ml"] == 519.5 / 500 and body["concentration_ug_per_ml"] == 500
    # the pump is refilled at 1000 µg/mL behind the clinic's back: the check keeps the
    # concentration of the last interrogation until the pump is read again
    fw = clinic.pumps.firmware("SIM-005")
    fw.refill(clinic.clock(), 20.0, 1000.0)
    again = clinic.client.post(f"/api/patients/{pid}/program/review", json={"steps": steps})
    assert again.json()["concentration_ug_per_ml"] == 500.0
    assert clinic.client.post(f"/api/patients/{pid}/interrogate").status_code == 200
    read = clinic.client.post(f"/api/patients/{pid}/program/review", json={"steps": steps})
    assert read.json()["new_volume_per_day_ml"] == 519.5 / 1000


def test_a_withdrawn_volume_beyond_the_pump_accuracy_band_is_flagged(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-003")  # filled with 20 mL at implant, 8 days ago
    status = clinic.client.post(f"/api/patients/{pid}/interrogate").json()["status"]
    expected_ml = status["reservoir_ml"]
    # delivered since the fill: 4 days at 100 µg/day, then 120, 144, 170, 200 µg/day, a day each:
    # 1034 µg at 500 µg/mL = 2.068 mL; the peristaltic pump's ±14.5% band (S9) is ±0.30 mL
    assert expected_ml == pytest.approx(20.0 - 2.068, abs=1e-3)
    response = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={"withdrawn_ml": expected_ml + 0.5, "filled_ml": 20.0,
              "concentration_ug_per_ml": 500.0},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    check = body["discrepancy_check"]
    assert check["accuracy_band_ml"] == pytest.approx(0.145 * 2.068, abs=1e-3)
    # +0.5 mL is within S28's 1 mL for a 20 mL pump, but beyond the accuracy band
    assert body["discrepancy_flagged"] is True and check["pocket_fill_tolerance_ml"] == 1.0
    assert "within the 1 mL tolerance" in check["reasons"][0]
    assert "+0.50 mL is beyond the pump's accuracy band" in check["reasons"][1]
