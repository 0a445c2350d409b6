"""Shared fixtures for the clinic and web tests: the demo clinic on SQLite or on PostgreSQL.

The demo clinic is migrated and seeded once per worker and backend (a template), then copied
for each test: a file copy for SQLite, ``CREATE DATABASE ... TEMPLATE`` for PostgreSQL, in a
database named after the xdist worker, so runs and workers never see each other's rows.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from itb.clinic import auth, demo
from itb.clinic.db import make_engine, make_session_factory, upgrade_to_head
from itb.clinic.pumps import SimulatedPumps
from itb.pump.firmware import Firmware
from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.clock import ManualClock
from tests.conftest import require

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEMO_PASSWORD = "demo-password-1"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024)


def postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def _worker() -> str:
    """This worker of this run: two runs at once (two checkouts) share one PostgreSQL server."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"p{os.getpid()}")[:10]
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{run}"


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def pg_admin(*statements: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    admin.dispose()


@dataclass
class Template:
    """A migrated, seeded demo clinic that each test copies."""

    kind: str
    source: str  # SQLite file path or PostgreSQL template database name
    firmware: dict[str, Firmware]

    def copy(self, tmp_path: Path) -> tuple[str, SimulatedPumps, ManualClock]:
        clock = ManualClock()
        pumps = SimulatedPumps(clock)
        for fw in self.firmware.values():
            pumps.add(copy.deepcopy(fw))
        if self.kind == "sqlite":
            target = tmp_path / "clinic.sqlite3"
            shutil.copyfile(self.source, target)
            return f"sqlite:///{target}", pumps, clock
        name = f"itb_test_{_worker()}"
        pg_admin(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{self.source}"',
        )
        return pg_url(name), pumps, clock


def build_template(kind: str, directory: Path) -> Template:
    if kind == "postgres":
        name = f"itb_tpl_{_worker()}"
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        url, source = pg_url(name), name
    else:
        source = str(directory / "template.sqlite3")
        url = f"sqlite:///{source}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    clock = ManualClock()
    pumps = SimulatedPumps(clock)
    with make_session_factory(engine)() as db:
        demo.seed_demo(db, pumps, clock(), password=DEMO_PASSWORD)
    if kind == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # every row in the main file
    engine.dispose()
    return Template(kind, source, {s: pumps.firmware(s) for s in pumps.serials()})


def template_for(kind: str, cache: dict[str, Template], directory: Path) -> Template:
    if kind == "postgres":
        require(postgres_reachable(), "PostgreSQL not reachable at 127.0.0.1:5432")
    if kind not in cache:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(auth, "_HASHER", FAST_HASHER)
            cache[kind] = build_template(kind, directory)
    return cache[kind]


@dataclass
class Clinic:
    url: str
    clock: ManualClock
    pumps: SimulatedPumps
    client: TestClient

    @property
    def app(self) -> FastAPI:
        return cast(FastAPI, self.client.app)

    def sessions(self) -> Session:
        factory: sessionmaker[Session] = self.app.state.sessions
        return factory()

    def login(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        self.client.cookies.clear()
        response = self.client.post("/api/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def patient_id(self, mrn: str) -> int:
        rows: list[dict[str, Any]] = self.client.get("/api/patients").json()
        return int(next(r["id"] for r in rows if r["mrn"] == mrn))

    def row(self, patient_id: int) -> dict[str, Any]:
        rows: list[dict[str, Any]] = self.client.get("/api/patients").json()
        return next(r for r in rows if r["id"] == patient_id)


def send_reviewed(clinic: Clinic, patient_id: int, body: dict[str, Any]) -> Any:
    """POST the program to /program/review, then send it to /program with the review's token
    (a send must carry the token of the review of that very program)."""
    program = {k: v for k, v in body.items() if k not in ("confirm", "reason")}
    review = clinic.client.post(f"/api/patients/{patient_id}/program/review", json=program)
    token = review.json().get("review_token") if review.status_code == 200 else None
    sent = {**body, "review_token": token} if token else body
    return clinic.client.post(f"/api/patients/{patient_id}/program", json=sent)


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters: the tests check behaviour, not the hash cost."""
    monkeypatch.setattr(auth, "_HASHER", FAST_HASHER)


_TEMPLATES: dict[str, Template] = {}  # one per backend and worker process


@pytest.fixture(scope="session")
def templates() -> Iterator[dict[str, Template]]:
    yield _TEMPLATES
    if "postgres" in _TEMPLATES:  # names are unique to this run: drop them, leave no litter
        pg_admin(
            f'DROP DATABASE IF EXISTS "itb_test_{_worker()}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{_TEMPLATES.pop("postgres").source}" WITH (FORCE)',
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def clinic(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> Iterator[Clinic]:
    """The demo clinic, on SQLite and on PostgreSQL, fresh for each test."""
    template = template_for(request.param, templates, tmp_path_factory.getbasetemp())
    url, pumps, clock = template.copy(tmp_path)
    app = create_app(ClinicSettings(database_url=url, links=pumps, clock=clock))
    c = Clinic(url, clock, pumps, TestClient(app))
    with c.client:
        yield c
    app.state.engine.dispose()


def csrf_in(html: str) -> str:
    """The CSRF token of the form in a rendered page (every form post needs it)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
