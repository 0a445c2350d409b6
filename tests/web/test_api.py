"""The JSON API, on SQLite and on PostgreSQL: log-in, roles, dashboard, program, refill."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from itb.clinic.models import (
    AuditEntry,
    Interrogation,
    ProgramVersion,
    Pump,
    PumpEvent,
    Visit,
)
from itb.web.app import app_routes
from tests.clinic.support import Clinic, send_reviewed


def _count(clinic: Clinic, model: type) -> int:
    with clinic.sessions() as db:
        return int(db.execute(select(func.count()).select_from(model)).scalar_one())


def test_every_api_route_but_login_answers_401_without_a_session(clinic: Clinic) -> None:
    checked = 0
    for route in app_routes():
        path = route.path
        if not path.startswith("/api") or path == "/api/login":
            continue
        for method in route.methods or ():
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
    # ranked by days until harm (H35): the soonest of a dry reservoir (fast end of the
    # accuracy band), the pump's EOS and the drug's stability limit
    with_pump = [r for r in rows if r["serial"]]
    harm_days = [r["days_to_harm"] for r in with_pump]
    assert harm_days == sorted(harm_days)
    for r in with_pump:
        soonest = min(
            d for d in (r["days_to_empty"], r["days_to_eos"], r["days_to_stability_limit"]) if d
        )
        assert r["days_to_harm"] <= soonest + 0.05, r
    by_name = {r["name"]: r for r in rows}
    assert by_name["Alex Near-Empty"]["days_to_low_reservoir"] < 3
    assert by_name["Dana Stability"]["days_to_stability_limit"] < 30
    assert by_name["Dana Stability"]["harm"] == "drug_expired"
    # past ERI, the row says when delivery stops: 90 days after ERI (S3 S21)
    blake = by_name["Blake Battery-ERI"]
    assert blake["days_to_eri"] < 0
    assert blake["days_to_eos"] == pytest.approx(blake["days_to_eri"] + 90.0, abs=0.1)
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
    before = clinic.pumps.firmware("SIM-001").status().program
    visits = _count(clinic, Visit)
    response = clinic.client.post(f"/api/patients/{pid}/program", json={"rate_ug_per_day": 300})
    assert response.status_code == 403
    assert clinic.pumps.firmware("SIM-001").status().program == before
    assert _count(clinic, Visit) == visits


def test_a_nurse_may_not_change_a_program_either(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    response = clinic.client.post(f"/api/patients/{pid}/program", json={"rate_ug_per_day": 300})
    assert response.status_code == 403


def test_a_physician_changes_the_program_and_every_version_is_kept(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")
    response = send_reviewed(
        clinic,
        pid,
        {
            "steps": [
                {"start": "00:00", "rate_ug_per_h": 8.0},
                {"start": "08:00", "rate_ug_per_h": 10.0},
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["daily_dose_ug"] == 8 * 8 + 16 * 10
    status = clinic.pumps.firmware("SIM-003").status()
    assert status.daily_dose_ug == 224.0
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
    response = send_reviewed(clinic, pid, {"rate_ug_per_day": 5000})
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
    # 18 mL above the 2 mL alarm at 0.9 mL/day; the next refill 5 days (S24) before the
    # earliest the reservoir can run dry: 20 mL / (0.9 × 1.145) mL/day = 19.4 days at the fast
    # end of the ±14.5 % band, so day 14.4 (plan_refill: never after the fast-flow empty date)
    assert abs(after["days_to_low_reservoir"] - 20.0) < 0.1
    refill_at = clinic.clock() + timedelta(days=20 / (0.9 * 1.145) - 5)
    assert after["next_refill_at"][:10] == refill_at.date().isoformat()
    assert after["next_refill_at"] > before["next_refill_at"]
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 20.0
    visits = clinic.client.get(f"/api/patients/{pid}/visits").json()
    assert visits[0]["kind"] == "refill" and visits[0]["status"] == "completed"


def test_a_flagged_withdrawn_volume_must_be_acknowledged_before_the_refill(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")  # a 20 mL peristaltic pump
    clinic.pumps.firmware("SIM-001").refill(clinic.clock(), 5.0, 500.0)  # it now expects 5.0 mL
    counts = (_count(clinic, Visit), _count(clinic, AuditEntry), _count(clinic, Interrogation))
    body = {"withdrawn_ml": 3.5, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0}
    # 3.5 - 5.0 = -1.5 mL: beyond S28's 1 mL for a 20 mL pump
    refused = clinic.client.post(f"/api/patients/{pid}/refill", json=body)
    assert refused.status_code == 422
    detail = refused.json()["detail"][0]
    assert detail["loc"][-1] == "acknowledge_discrepancy"
    assert "withdrawn 3.50 mL vs expected 5.00 mL" in detail["msg"]
    assert "beyond the 1 mL tolerance of a 20 mL pump" in detail["msg"]
    # nothing sent to the pump, nothing stored (not even the reading taken for the check)
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 5.0
    assert (
        _count(clinic, Visit),
        _count(clinic, AuditEntry),
        _count(clinic, Interrogation),
    ) == counts

    note = "pocket checked, no swelling; catheter study booked"
    done = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={**body, "acknowledge_discrepancy": True, "discrepancy_note": note},
    )
    assert done.status_code == 200, done.text
    assert done.json()["discrepancy_flagged"] is True
    assert done.json()["discrepancy_ml"] == -1.5
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 20.0
    visit = clinic.client.get(f"/api/patients/{pid}/visits").json()[0]
    assert visit["details"]["discrepancy_acknowledged"] is True
    assert visit["details"]["discrepancy_note"] == note
    with clinic.sessions() as db:
        entry = db.execute(
            select(AuditEntry).where(AuditEntry.action == "pump.refill")
        ).scalar_one()
    after = json.loads(entry.after_json)
    assert after["discrepancy_acknowledged"] is True and after["discrepancy_note"] == note
    assert entry.username == "nurse_demo"


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


HOURLY_POSITIVE = {"0": 3, "1": 3, "2": 2, "3": 2, "4": 1, "5": 1, "6": 2, "7": 2, "8": 3}


def test_screening_scores_give_the_comparison_the_result_and_the_first_pump_dose(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    response = clinic.client.post(
        f"/api/patients/{pid}/screening", json={"dose_ug": 50, "scores": HOURLY_POSITIVE}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    result = body["assessment"]
    # baseline 3, lowest 1: a fall of 2.0 >= 1.0 (S51); the fall is >= 1 from 2 h to 7 h, so the
    # effect lasted 7 h (not more than 8): first pump dose 2 × 50 = 100 µg/day (S46)
    assert result["classification"]["positive"] is True
    assert result["classification"]["max_fall_mas"] == 2.0
    assert result["classification"]["effect_lasted_h"] == 7.0
    assert result["decision"]["action"] == "candidate"
    assert result["decision"]["first_daily_dose_ug"] == 100.0
    assert "twice the dose, 100 µg/day" in result["decision"]["reason"]
    # the typical patient's 50 µg bolus acts (fall >= 1) from 0.93 h to about 9.3 h
    # (docs/pharmacology.md): predicted MAS at most 2 at every scored hour
    rows = result["comparison"]["rows"]
    assert [r["hour"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r["observed_mas"] for r in rows] == [3, 2, 2, 1, 1, 2, 2, 3]
    assert all(r["predicted_mas"] <= 2.0 for r in rows)
    # stored with the visit: the bolus 8 h before the last score (clinic clock 12:00)
    assert body["started_at"] == "2026-11-25T04:00:00"
    assert body["details"]["scores"]["4"] == 1.0 and body["details"]["min_fall_mas"] == 1.0


def _screen(clinic: Clinic, pid: int, dose: int, scores: dict, **extra: object):  # type: ignore[no-untyped-def,type-arg]
    return clinic.client.post(
        f"/api/patients/{pid}/screening", json={"dose_ug": dose, "scores": scores, **extra}
    )


def test_screening_sequence_50_75_100_a_day_apart_then_not_a_candidate(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    no = {"0": 3, "1": 3, "2": 2.5, "3": 2.5, "4": 2.5, "5": 3}  # largest fall 0.5
    first = _screen(clinic, pid, 50, no).json()  # bolus at 12:00 - 5 h = 07:00
    decision = first["assessment"]["decision"]
    assert (decision["action"], decision["next_dose_ug"]) == ("next_dose", 75.0)
    assert decision["not_before"] == "2026-11-26T07:00:00"
    visits = _count(clinic, Visit)
    # at once: this bolus would be 3 h before the first one
    assert _screen(clinic, pid, 75, no).json()["detail"][0]["loc"][-1] == "given_at"
    clinic.clock.advance(1.0)  # 2026-11-26 12:00
    # by default the bolus was 8 h before the last score: 04:00, only 21 h after the first
    early = _screen(clinic, pid, 75, {**no, "8": 3})
    assert early.status_code == 422
    assert "21.0 h after the previous one; allowed 24 h or more" in early.json()["detail"][0]["msg"]
    assert _count(clinic, Visit) == visits
    second = _screen(clinic, pid, 75, no, given_at="2026-11-26T07:00:00")  # exactly 24 h
    assert second.status_code == 200, second.text
    assert second.json()["assessment"]["decision"]["next_dose_ug"] == 100.0
    clinic.clock.advance(1.0)
    third = _screen(clinic, pid, 100, no, given_at="2026-11-27T07:00:00").json()
    assert third["assessment"]["decision"]["action"] == "not_candidate"
    assert "not a candidate" in third["assessment"]["decision"]["reason"]


def test_bad_screening_input_names_the_field_and_stores_nothing(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    visits = _count(clinic, Visit)
    for dose, scores, field, words in (
        (60, HOURLY_POSITIVE, "dose_ug", "allowed 25, 50, 75 or 100"),
        (50, {**HOURLY_POSITIVE, "3": 6}, "scores[3]", "allowed 0 to 5"),
        (50, {**HOURLY_POSITIVE, "9": 2}, "scores", "allowed whole hours 0 to 8"),
        (50, {"0": 3, "1": 2, "2": 2, "3": 2}, "scores", "at least 4"),
        (50, {k: v for k, v in HOURLY_POSITIVE.items() if k != "0"}, "scores", "hour 0"),
    ):
        response = _screen(clinic, pid, dose, scores)
        assert response.status_code == 422, (dose, scores)
        detail = response.json()["detail"][0]
        assert detail["loc"][-1] == field and words in detail["msg"], detail
    assert _count(clinic, Visit) == visits


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
    assert "SUMMARY:ITB refill: DEMO-001 (SIM-001)" in unfolded  # MRN, not the name, by default
    assert "ITB pump replacement (ERI): DEMO-002" in unfolded
    assert "Alex Near-Empty" not in unfolded
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
    """Review the program, then send it with the review's token (what you review you send)."""
    return send_reviewed(clinic, pid, body)


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
    assert response.status_code == 422  # flagged: acknowledge first
    assert response.json()["detail"][0]["loc"][-1] == "acknowledge_discrepancy"
    response = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={"withdrawn_ml": expected_ml + 0.5, "filled_ml": 20.0,
              "concentration_ug_per_ml": 500.0, "acknowledge_discrepancy": True},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    check = body["discrepancy_check"]
    assert check["accuracy_band_ml"] == pytest.approx(0.145 * 2.068, abs=1e-3)
    # +0.5 mL is within S28's 1 mL for a 20 mL pump, but beyond the accuracy band
    assert body["discrepancy_flagged"] is True and check["pocket_fill_tolerance_ml"] == 1.0
    assert "within the 1 mL tolerance" in check["reasons"][0]
    assert "+0.50 mL is beyond the pump's accuracy band" in check["reasons"][1]
