"""Issue 11 through the JSON API: what you review is what you send (H32), the review's context
from the clinic's records (titration stacking H29, unknown origin H30, a child's age), and the
dashboard ranked by days until harm (H35)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from itb.clinic.db import make_engine, upgrade_to_head
from itb.clinic.models import ProgramVersion, Pump, Visit
from itb.clinic.services.views import dashboard_query
from itb.clinic.urgency import Harm, ObservedState, due_dates, soonest_harm
from tests.clinic.support import Clinic, send_reviewed
from tests.web.markup import find, find_all


def _count(clinic: Clinic, model: type) -> int:
    with clinic.sessions() as db:
        return int(db.execute(select(func.count()).select_from(model)).scalar_one())


def _review(clinic: Clinic, pid: int, body: dict[str, Any]) -> dict[str, Any]:
    response = clinic.client.post(f"/api/patients/{pid}/program/review", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _dose(clinic: Clinic, serial: str) -> float:
    return clinic.pumps.firmware(serial).status().daily_dose_ug


# H32: what you review is what you send ----------------------------------------------------------
def test_a_program_edited_after_its_review_is_refused_naming_the_token_and_nothing_is_sent(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")  # 200 µg/day at 500 µg/mL
    review = _review(clinic, pid, {"rate_ug_per_day": 230})
    token = review["review_token"]
    assert len(token) == 64 and review["serial"] == "SIM-003"
    # 230 µg/day at 500 µg/mL = 0.46 mL/day, in words and units
    assert review["confirmation"].startswith(
        "230 µg/day (two hundred thirty micrograms per day), 0.46 mL/day at 500 µg/mL"
    )
    visits, versions = _count(clinic, Visit), _count(clinic, ProgramVersion)
    for edited in ({"rate_ug_per_day": 280}, {"rate_ug_per_day": 231},
                   {"steps": [{"start": "00:00", "rate_ug_per_h": 230 / 24}]}):  # fmt: skip
        response = clinic.client.post(
            f"/api/patients/{pid}/program", json={**edited, "review_token": token}
        )
        assert response.status_code == 422, edited
        detail = response.json()["detail"][0]
        assert detail["loc"][-1] == "review_token" and "review it again" in detail["msg"]
    missing = clinic.client.post(f"/api/patients/{pid}/program", json={"rate_ug_per_day": 230})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"][-1] == "review_token"
    garbage = {"rate_ug_per_day": 230, "review_token": "x" * 64}
    bad = clinic.client.post(f"/api/patients/{pid}/program", json=garbage)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "review_token"
    assert _dose(clinic, "SIM-003") == pytest.approx(200.0)
    assert (_count(clinic, Visit), _count(clinic, ProgramVersion)) == (visits, versions)

    sent = clinic.client.post(
        f"/api/patients/{pid}/program", json={"rate_ug_per_day": 230, "review_token": token}
    )
    assert sent.status_code == 200, sent.text
    assert "two hundred thirty micrograms per day" in sent.json()["confirmation"]
    assert _dose(clinic, "SIM-003") == pytest.approx(230.0)
    visit = clinic.client.get(f"/api/patients/{pid}/visits").json()[0]
    assert "two hundred thirty" in visit["details"]["dose_words"]


def test_a_token_does_not_survive_a_program_change_in_between(clinic: Clinic) -> None:
    """The token carries the pump's current program: once another change went out, a token
    reviewed against the old current program is stale, even for the same new program."""
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-005")  # flex 15 / 25 / 18 µg/h on another pump
    steps = [{"start": "00:00", "rate_ug_per_h": 16}, {"start": "07:00", "rate_ug_per_h": 25},
             {"start": "21:00", "rate_ug_per_h": 18}]  # fmt: skip
    stale = _review(clinic, pid, {"steps": steps})["review_token"]
    first = send_reviewed(
        clinic, pid, {"rate_ug_per_day": 470, "confirm": True, "reason": "flattened"}
    )
    assert first.status_code == 200, first.text
    response = clinic.client.post(
        f"/api/patients/{pid}/program", json={"steps": steps, "review_token": stale}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "review_token"
    assert _dose(clinic, "SIM-005") == pytest.approx(470.0)


def test_the_same_program_on_another_pump_has_another_token(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    casey = _review(clinic, clinic.patient_id("DEMO-003"), {"rate_ug_per_day": 210})
    alex = _review(clinic, clinic.patient_id("DEMO-001"), {"rate_ug_per_day": 210})
    assert casey["review_token"] != alex["review_token"]


# H29, H30: the review's context from the clinic's records ------------------------------------
def test_two_increases_minutes_apart_are_judged_against_the_program_of_24_hours_ago(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id("DEMO-003")  # spinal, titrating: +30 % a day; 200 µg/day since 24 h
    first = send_reviewed(clinic, pid, {"rate_ug_per_day": 250})  # +25 %: within the limit
    assert first.status_code == 200, first.text
    clinic.clock.advance(10 / (24 * 60))  # ten minutes later
    # 250 -> 320 is +28 % against the current program, but +60 % against the 200 µg/day in
    # force 24 h earlier: beyond the +30 % a day, so it needs a confirmation with a reason
    review = _review(clinic, pid, {"rate_ug_per_day": 320})
    assert review["verdict"] == "warn"
    warnings = [c["reason"] for c in review["checks"] if c["verdict"] == "warn"]
    assert any("+60.0%" in w for w in warnings), warnings
    unconfirmed = send_reviewed(clinic, pid, {"rate_ug_per_day": 320})
    assert unconfirmed.status_code == 422
    assert unconfirmed.json()["detail"][0]["loc"][-1] == "confirm"
    assert _dose(clinic, "SIM-003") == pytest.approx(250.0)
    # a day after the first change, 250 is the program of 24 h ago: +28 % is within the limit
    clinic.clock.advance(1.0)
    assert _review(clinic, pid, {"rate_ug_per_day": 320})["verdict"] == "ok"


def _patient_with_pump(clinic: Clinic, origin: str, age_years: int, mrn: str) -> int:
    patient = {"name": f"Test {mrn}", "mrn": mrn, "age_years": age_years, "origin": origin}
    created = clinic.client.post("/api/patients", json=patient)
    assert created.status_code == 201, created.text
    pid = int(created.json()["id"])
    implant = {"model": "peristaltic-20", "serial": f"P-{mrn}", "catheter_trimmed_cm": 40.0,
               "concentration_ug_per_ml": 500.0, "filled_ml": 20.0,
               "program": {"rate_ug_per_day": 100.0}}  # fmt: skip
    response = clinic.client.post(f"/api/patients/{pid}/implant", json=implant)
    assert response.status_code == 201, response.text
    return pid


def test_an_unknown_origin_gets_the_strictest_limits_and_the_page_says_so(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    pid = _patient_with_pump(clinic, "unknown", 40, "UNK-1")
    clinic.clock.advance(2.0)
    # 100 -> 125 µg/day is +25 %: within +30 % (spinal titration) but beyond +20 % (cerebral,
    # the strictest of the origins, S46): it needs a confirmation
    review = _review(clinic, pid, {"rate_ug_per_day": 125, "phase": "titration"})
    assert review["verdict"] == "warn"
    limits = next(c for c in review["checks"] if c["name"] == "change_limits")
    assert "origin not given: the strictest limits apply" in limits["reason"]
    page = clinic.client.get(f"/patients/{pid}/program")
    assert find(page.text, id="origin-unknown")
    known = _patient_with_pump(clinic, "spinal", 40, "SPI-1")
    clinic.clock.advance(2.0)
    assert _review(clinic, known, {"rate_ug_per_day": 125, "phase": "titration"})["verdict"] == "ok"
    assert not find_all(clinic.client.get(f"/patients/{known}/program").text, id="origin-unknown")


def test_a_childs_dose_is_reviewed_against_the_childrens_range(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    child = _patient_with_pump(clinic, "spinal", 8, "KID-1")
    clinic.clock.advance(2.0)
    # 1250 µg/day at 500 µg/mL: above the 1199 µg/day reported under 12 years (S25)
    review = _review(clinic, child, {"rate_ug_per_day": 1250, "phase": "maintenance"})
    daily = next(c for c in review["checks"] if c["name"] == "daily_dose")
    assert daily["verdict"] == "warn" and "children" in daily["reason"]


# H35: the dashboard by days until harm ----------------------------------------------------------
def test_a_patient_past_eri_with_months_left_ranks_below_one_days_from_an_empty_reservoir(
    clinic: Clinic,
) -> None:
    clinic.login("viewer_demo")
    rows = clinic.client.get("/api/patients").json()
    order = [r["name"] for r in rows]
    alex, blake = (next(r for r in rows if r["name"] == n)
                   for n in ("Alex Near-Empty", "Blake Battery-ERI"))  # fmt: skip
    assert blake["days_to_eri"] < 0 < alex["days_to_harm"] < 3.5
    assert order.index("Alex Near-Empty") < order.index("Blake Battery-ERI")
    assert alex["harm"] == "reservoir_empty" and "runs dry" in alex["harm_words"]
    # the page names the harm in the row
    page = clinic.client.get("/").text
    row = find(page, "tr", data_mrn="DEMO-001")
    assert row["data-harm"] == "reservoir_empty"


def test_a_pump_near_eos_ranks_by_eos_and_a_refill_after_eos_is_a_conflict(
    clinic: Clinic,
) -> None:
    clinic.login("viewer_demo")
    blake = clinic.patient_id("DEMO-002")
    with clinic.sessions() as db:
        pump = db.execute(select(Pump).where(Pump.patient_id == blake)).scalar_one()
        # EOS in 2 days, the next refill in 10: the battery stops first
        pump.eos_at = clinic.clock() + timedelta(days=2)
        pump.next_refill_at = clinic.clock() + timedelta(days=10)
        pump.harm_at, harm = soonest_harm(
            clinic.clock(), pump.mode, pump.empty_at, pump.eos_at, pump.stability_at
        )
        pump.harm = harm.value if harm else None
        db.commit()
    rows = clinic.client.get("/api/patients").json()
    assert rows[0]["name"] == "Blake Battery-ERI"
    assert rows[0]["harm"] == "battery_eos" and rows[0]["refill_after_eos"] is True
    row = find(clinic.client.get("/").text, "tr", data_mrn="DEMO-002")
    assert row["data-harm"] == "battery_eos" and row["data-conflict"] == "refill_after_eos"
    ics = clinic.client.get("/api/calendar.ics").text.replace("\r\n ", "")
    assert "SUMMARY:CONFLICT ITB refill after end of service: DEMO-002 (SIM-002)" in ics


def test_a_stopped_pump_is_harm_now(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    dana = clinic.patient_id("DEMO-004")  # drug expiry in 20 days otherwise
    clinic.pumps.firmware("SIM-004").stop(clinic.clock())
    assert clinic.client.post(f"/api/patients/{dana}/interrogate").status_code == 200
    rows = clinic.client.get("/api/patients").json()
    assert rows[0]["name"] == "Dana Stability" and rows[0]["harm"] == "not_delivering"
    assert rows[0]["days_to_harm"] == pytest.approx(0.0, abs=0.05)


def test_harm_is_the_soonest_of_dry_reservoir_eos_and_expiry() -> None:
    at = datetime(2026, 1, 1)
    # 20 mL pump, 3 mL left at 450 µg/day of 500 µg/mL = 0.9 mL/day: dry at the fast end of
    # the accuracy band before 3 / 0.9 = 3.33 days
    state = ObservedState(
        at, "peristaltic-20", at - timedelta(days=800), 3.0, 2.0, 450.0, 500.0,
        at - timedelta(days=19), battery_eri_at=at - timedelta(days=25),
        battery_eos_at=at + timedelta(days=65), mode="running",
    )  # fmt: skip
    dates = due_dates(state)
    assert dates.harm is Harm.RESERVOIR_EMPTY
    assert dates.harm_at == dates.empty_at_fastest_flow
    assert dates.empty_at is not None and dates.harm_at is not None
    assert dates.harm_at <= dates.empty_at < at + timedelta(days=3.34)
    # the same pump with a full reservoir: the battery's EOS comes first
    full = due_dates(ObservedState(
        at, "peristaltic-20", at - timedelta(days=800), 20.0, 2.0, 50.0, 500.0, at,
        battery_eri_at=at - timedelta(days=25), battery_eos_at=at + timedelta(days=65),
    ))  # fmt: skip
    assert (full.harm, full.harm_at) == (Harm.BATTERY_EOS, at + timedelta(days=65))


def test_the_dashboard_walks_the_index_on_the_harm_date(tmp_path: Path) -> None:
    """The first page of 10,000 patients reads the index on (active, harm_at), not a sort of
    every row (SQLite's plan, on the migrated schema)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    upgrade_to_head(engine)
    statement = dashboard_query().limit(100)
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    engine.dispose()
    assert "ix_pumps_active_harm_at" in plan and "TEMP B-TREE" not in plan, plan
