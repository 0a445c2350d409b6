"""The dashboard with 10,000 patients: p50/p95 latency and requests per second, SQLite and
PostgreSQL (skipped with a note when the server at 127.0.0.1:5432 is not reachable).

The server runs in this process (uvicorn in a thread) and the client in a few threads, so the
figures include the client's share of the GIL: compare the two databases with each other.
"""

from __future__ import annotations

import random
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from argon2 import PasswordHasher
from sqlalchemy import create_engine, insert, text

from itb.clinic import auth
from itb.clinic.db import make_engine, make_session_factory, upgrade_to_head
from itb.clinic.models import Patient, Pump, Role
from itb.clinic.urgency import ObservedState, due_dates
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.web.app import create_app
from itb.web.settings import ClinicSettings

PATIENTS = 10_000
CLIENT_THREADS = 4
REQUESTS = 200
NOW = datetime(2026, 11, 25, 12, 0)
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_BENCH_DB = "itb_bench_clinic"
PASSWORD = "bench-password-1"


def seed(url: str) -> None:
    engine = make_engine(url)
    upgrade_to_head(engine)
    rng = random.Random(7)
    auth._HASHER = PasswordHasher(time_cost=1, memory_cost=1024)  # seeding speed only
    with make_session_factory(engine)() as db:
        doctors = [auth.add_user(db, f"dr_{i}", Role.PHYSICIAN.value, PASSWORD) for i in range(10)]
        db.commit()
        db.execute(
            insert(Patient),
            [
                {"mrn": f"B{i:06d}", "name": f"Patient {i}", "origin": "spinal",
                 "clinician_id": doctors[i % 10].id, "created_at": NOW}
                for i in range(PATIENTS)
            ],
        )  # fmt: skip
        rows = []
        for i in range(PATIENTS):
            implanted = NOW - timedelta(days=rng.uniform(10, 2500))
            filled = NOW - timedelta(days=rng.uniform(0, 120))
            reservoir_ml, dose_ug = rng.uniform(0, 20), rng.uniform(50, 900)
            d = due_dates(ObservedState(NOW, "peristaltic-20", implanted, reservoir_ml,
                                        DEFAULT_LOW_RESERVOIR_ALARM_ML, dose_ug, 500.0,
                                        filled))  # fmt: skip
            rows.append(
                {"patient_id": i + 1, "model": "peristaltic-20", "serial": f"B-{i:06d}",
                 "implanted_at": implanted, "active": True, "drug": "baclofen", "state_at": NOW,
                 "mode": "running", "reservoir_ml": reservoir_ml, "concentration_ug_per_ml": 500.0,
                 "daily_dose_ug": dose_ug, "filled_at": filled,
                 "low_reservoir_alarm_ml": DEFAULT_LOW_RESERVOIR_ALARM_ML,
                 "last_event_seq": 0, "low_reservoir_at": d.low_reservoir_at,
                 "empty_at": d.empty_at, "stability_at": d.stability_at, "eri_at": d.eri_at,
                 "next_due_at": d.next_due_at, "next_refill_at": d.next_refill_at,
                 "eos_at": d.eos_at, "harm_at": d.harm_at,
                 "harm": d.harm.value if d.harm else None}
            )  # fmt: skip
        db.execute(insert(Pump), rows)
        db.commit()
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(
    base: str, path: str, cookies: dict[str, str], requests: int
) -> tuple[float, float, float]:
    """(p50 ms, p95 ms, requests/s) over ``requests`` requests from CLIENT_THREADS threads."""

    def one(_: int) -> float:
        started = time.perf_counter()
        response = client.get(path)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000.0

    with httpx.Client(base_url=base, cookies=cookies, timeout=60) as client:
        one(0)  # warm the pool and the caches
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            latencies = list(pool.map(one, range(requests)))
        elapsed_s = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=20)
    return statistics.median(latencies), cuts[18], requests / elapsed_s


def run(label: str, url: str) -> None:
    t0 = time.perf_counter()
    seed(url)
    print(f"{label}: seeded {PATIENTS} patients in {time.perf_counter() - t0:.1f} s", flush=True)
    app = create_app(ClinicSettings(database_url=url, clock=lambda: NOW))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        login = httpx.post(f"{base}/api/login", json={"username": "dr_0", "password": PASSWORD})
        login.raise_for_status()
        cookies = dict(login.cookies)
        for name, path, requests in (
            ("API first 100 rows", "/api/patients?limit=100", REQUESTS),
            ("HTML dashboard page", "/", REQUESTS),
            ("HTML, one clinician", "/?clinician_id=3", REQUESTS),
            ("API all 10,000 rows", "/api/patients?limit=10000", REQUESTS // 10),
        ):
            p50, p95, rate = measure(base, path, cookies, requests)
            print(f"{label:<10} {name:<22} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {rate:7.1f} req/s")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.engine.dispose()


def postgres_url() -> str | None:
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{PG_BENCH_DB}"'))
        admin.dispose()
    except Exception as exc:
        print(f"PostgreSQL: skipped ({type(exc).__name__}: not reachable at 127.0.0.1:5432)")
        return None
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


def main() -> None:
    print(
        f"{PATIENTS} patients, {REQUESTS} requests a line (all rows: {REQUESTS // 10}), "
        f"{CLIENT_THREADS} client threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
    url = postgres_url()
    if url:
        run("PostgreSQL", url)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
