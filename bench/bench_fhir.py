"""The FHIR export of one patient, as the API answers it (``GET /api/patients/{id}/fhir``).

The demo clinic's longest record (Blake Battery-ERI: six years of refills, about a hundred
resources) is exported ROUNDS times through the app in-process (TestClient, SQLite in a
temporary directory), against the patient's own JSON summary (``GET /api/patients/{id}``) in the
same run, and the mapping alone against the mapping plus its validation (``fhir.validated``:
the R4B model, value sets, references). Goal: an export costs at most GOAL_RATIO patient
summaries (it reads every visit and checks every resource; the summary reads a few rows).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from itb.clinic import demo, fhir
from itb.clinic.db import make_engine, make_session_factory, upgrade_to_head
from itb.clinic.models import Patient
from itb.clinic.pumps import SimulatedPumps
from itb.web.app import create_app
from itb.web.settings import ClinicSettings, local_now

ROUNDS = 30
MRN = "DEMO-002"
GOAL_RATIO = 20.0
PASSWORD = "bench-password-1"


def _median_ms(call: Callable[[], object]) -> float:
    call()  # warm: imports and caches
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'clinic.sqlite3'}"
        now = local_now()
        pumps = SimulatedPumps(lambda: now)
        engine = make_engine(url)
        upgrade_to_head(engine)
        with make_session_factory(engine)() as db:
            demo.seed_demo(db, pumps, now, password=PASSWORD)
        engine.dispose()
        app = create_app(ClinicSettings(database_url=url, links=pumps, clock=lambda: now))
        with TestClient(app) as client:
            login = {"username": "viewer_demo", "password": PASSWORD}
            assert client.post("/api/login", json=login).status_code == 200
            rows = client.get("/api/patients").json()
            pid = next(r["id"] for r in rows if r["mrn"] == MRN)
            summary_ms = _median_ms(lambda: client.get(f"/api/patients/{pid}").raise_for_status())
            export_ms = _median_ms(
                lambda: client.get(f"/api/patients/{pid}/fhir").raise_for_status()
            )
            with app.state.sessions() as db:
                patient = db.execute(select(Patient).where(Patient.mrn == MRN)).scalar_one()
                record = fhir.load_record(db, patient)
                resources = len(fhir.patient_bundle(record, now, fhir.system_local)["entry"])
                map_ms = _median_ms(lambda: fhir.patient_bundle(record, now, fhir.system_local))
                checked_ms = _median_ms(
                    lambda: fhir.validated(fhir.patient_bundle(record, now, fhir.system_local))
                )
        app.state.engine.dispose()
    ratio = export_ms / summary_ms
    print(f"patient {MRN}: {resources} FHIR resources; median of {ROUNDS} rounds each")
    print(f"GET /api/patients/{{id}}       {summary_ms:8.2f} ms  (baseline)")
    print(f"GET /api/patients/{{id}}/fhir  {export_ms:8.2f} ms  ratio {ratio:.1f}x "
          f"(goal <= {GOAL_RATIO:g}x) {'OK' if ratio <= GOAL_RATIO else 'MISSED'}")  # fmt: skip
    print(f"mapping alone {map_ms:.2f} ms; mapping + validation {checked_ms:.2f} ms "
          f"(validation {checked_ms / map_ms:.1f}x the mapping)")  # fmt: skip


if __name__ == "__main__":
    main()
