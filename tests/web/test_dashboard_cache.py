"""The dashboard's cache and its query plan, on SQLite and PostgreSQL.

Two app instances share one database, as two uvicorn workers would: each caches the ranking
it rendered; a write through one (a refill, an interrogation, a new patient) or straight into
the database shows at once on the other; the clock's next minute does too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, text, update

from itb.clinic.db import make_engine, upgrade_to_head
from itb.clinic.models import Alarm, Patient, Pump
from itb.clinic.services.views import dashboard_query
from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.support import DEMO_PASSWORD, Clinic, pg_admin, pg_url, postgres_reachable
from tests.conftest import require
from tests.web.markup import find, find_all

ALEX = "DEMO-001"  # Alex Near-Empty: the reservoir runs dry in about three days


@pytest.fixture
def other(clinic: Clinic) -> Iterator[TestClient]:
    """A second app on the same database and pumps (a second worker), a nurse signed in."""
    app = create_app(
        ClinicSettings(database_url=clinic.url, links=clinic.pumps, clock=clinic.clock)
    )
    with TestClient(app) as client:
        _page_login(client, "nurse_demo")
        yield client
    app.state.engine.dispose()


def _page_login(client: TestClient, username: str) -> None:
    response = client.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text


def _days_to_harm(client: TestClient, mrn: str) -> float:
    page = client.get("/")
    assert page.status_code == 200
    return float(find(page.text, "tr", data_mrn=mrn)["data-days-to-harm"])


def _mrns(client: TestClient) -> list[str]:
    return [row["data-mrn"] for row in find_all(client.get("/").text, "tr", data_mrn=None)]


def _both_cached(clinic: Clinic, other: TestClient) -> float:
    clinic.login("nurse_demo")
    days = _days_to_harm(clinic.client, ALEX)
    assert _days_to_harm(other, ALEX) == days  # each instance has rendered (and cached) it
    assert days < 4
    return days


def test_a_refill_on_one_worker_shows_at_once_on_the_other(
    clinic: Clinic, other: TestClient
) -> None:
    _both_cached(clinic, other)
    pid = clinic.patient_id(ALEX)
    refill = {"withdrawn_ml": 2.8, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0}
    assert clinic.client.post(f"/api/patients/{pid}/refill", json=refill).status_code == 200
    # 20 mL at 0.9 mL/day, dry at the fast end of the accuracy band after about 19 days
    assert _days_to_harm(other, ALEX) > 15
    assert _days_to_harm(clinic.client, ALEX) > 15


def test_an_interrogation_on_one_worker_shows_at_once_on_the_other(
    clinic: Clinic, other: TestClient
) -> None:
    before = _both_cached(clinic, other)
    clinic.pumps.firmware("SIM-001").refill(clinic.clock(), 10.0, 500.0)  # unknown to the clinic
    assert _days_to_harm(other, ALEX) == before  # nothing read yet: the cached page holds
    pid = clinic.patient_id(ALEX)
    assert clinic.client.post(f"/api/patients/{pid}/interrogate").status_code == 200
    assert _days_to_harm(other, ALEX) > before + 5


def test_a_new_patient_on_one_worker_shows_at_once_on_the_other(
    clinic: Clinic, other: TestClient
) -> None:
    _both_cached(clinic, other)
    assert "NEW-001" not in _mrns(other)
    clinic.login("dr_demo")
    new = {"name": "Gale Newcomer", "mrn": "NEW-001", "age_years": 34, "origin": "spinal"}
    assert clinic.client.post("/api/patients", json=new).status_code == 201
    assert "NEW-001" in _mrns(other)


def test_a_write_straight_into_the_database_shows_at_once(
    clinic: Clinic, other: TestClient
) -> None:
    """Any writer (a script, another server): the database's triggers bump the version."""
    before = _both_cached(clinic, other)
    with clinic.sessions() as db:
        db.execute(update(Patient).where(Patient.mrn == ALEX).values(name="Alex Renamed"))
        db.commit()
    assert "Alex Renamed" in other.get("/").text
    with clinic.sessions() as db:
        pump_id = db.execute(text("SELECT id FROM pumps WHERE serial = 'SIM-001'")).scalar_one()
        at = clinic.clock() - timedelta(hours=1)
        db.execute(
            insert(Alarm).values(
                pump_id=pump_id, kind="low_reservoir", priority="high", raised_at=at
            )
        )
        db.execute(update(Pump).where(Pump.id == pump_id).values(harm_at=at))
        db.commit()
    assert _days_to_harm(other, ALEX) < before


def test_the_next_minute_is_a_new_page(clinic: Clinic, other: TestClient) -> None:
    before = _both_cached(clinic, other)
    clinic.clock.advance(1.0)
    assert _days_to_harm(other, ALEX) == pytest.approx(before - 1.0, abs=0.05)


def test_the_pages_list_every_patient_once_most_urgent_first(clinic: Clinic) -> None:
    """Paged by "next" without a total: the read pumps by harm date, then everyone else."""
    clinic.login("viewer_demo")
    with clinic.sessions() as db:
        db.execute(
            insert(Patient),
            [
                {"mrn": f"WAIT-{i:03d}", "name": f"Waiting {i}", "origin": "spinal",
                 "created_at": clinic.clock()}
                for i in range(150)
            ],
        )  # fmt: skip
        db.commit()
    seen: list[str] = []
    page, pages = 1, []
    while True:
        html = clinic.client.get("/", params={"page": page}).text
        rows = find_all(html, "tr", data_mrn=None)
        pages.append(len(rows))
        seen += [row["data-mrn"] for row in rows]
        if not find_all(html, "a", rel="next"):
            break
        page += 1
    assert pages == [100, 56]
    assert len(seen) == len(set(seen)) == 156
    assert seen[0] == ALEX and seen[-1] == "WAIT-149"
    assert clinic.client.get("/", params={"page": 3}).status_code == 200  # past the end: empty


# The plan ------------------------------------------------------------------------------------
PLAN_PATIENTS = 3000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def many_patients(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated clinic of 3,000 read pumps, statistics gathered (ANALYZE)."""
    if request.param == "postgres":
        require(postgres_reachable(), "PostgreSQL not reachable at 127.0.0.1:5432")
        name = f"itb_plan_{random.randrange(10**9)}"
        pg_admin(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    else:
        url = f"sqlite:///{tmp_path / 'plan.sqlite3'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    _seed(engine)
    yield engine
    engine.dispose()
    if request.param == "postgres":
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(engine: Engine) -> None:
    rng = random.Random(3)
    t0 = ClinicSettings("sqlite://").clock().replace(microsecond=0)
    patients = [
        {"mrn": f"P{i:05d}", "name": f"Patient {i}", "origin": "spinal", "created_at": t0}
        for i in range(PLAN_PATIENTS)
    ]
    pumps = [
        {"patient_id": i + 1, "model": "peristaltic-20", "serial": f"S{i:05d}", "active": True,
         "implanted_at": t0, "drug": "baclofen", "low_reservoir_alarm_ml": 2.0,
         "last_event_seq": 0, "harm": "reservoir_empty",
         "harm_at": t0 + timedelta(days=rng.uniform(0, 180))}
        for i in range(PLAN_PATIENTS)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Patient), patients)
        conn.execute(insert(Pump), pumps)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def test_the_ranking_walks_the_index_without_sorting_every_pump(many_patients: Engine) -> None:
    statement = dashboard_query().limit(101)
    compiled = statement.compile(many_patients, compile_kwargs={"literal_binds": True})
    with many_patients.connect() as conn:
        if many_patients.dialect.name == "sqlite":
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            plan = " ".join(str(row[-1]) for row in rows)
            assert "ix_pumps_active_harm_at" in plan and "TEMP B-TREE" not in plan, plan
        else:
            plan = "\n".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {compiled}")))
            assert "Index Scan using ix_pumps_active_harm_at" in plan, plan
            assert "Sort" not in plan, plan  # neither a sort nor an incremental one
