"""Patient search on 10,000 patients (``itb.clinic.services.search``), SQLite and PostgreSQL.

The clinic of ``bench_clinic`` (10,000 patients with read pumps, seeded in bulk) is searched by
a name's start, a last name's start, an MRN's start and a serial's start, each ROUNDS times;
the baseline, in the same run on the same database, is the dashboard's first page
(``dashboard_page``: 100 rows walked from its index). Goal: a search costs at most GOAL_RATIO
dashboard pages (a few index probes and at most 50 rows). A full scan would cost 10,000 rows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bench.bench_clinic import PATIENTS, PG_BENCH_DB, _pg_admin, postgres_url, seed
from itb.clinic.db import make_engine, make_session_factory
from itb.clinic.services.search import search_patients
from itb.clinic.services.views import dashboard_page

ROUNDS = 50
GOAL_RATIO = 1.0
QUERIES = {"name": "patient 12", "last name": "4321", "MRN": "b00999", "serial": "b-0077"}


def _median_ms(call: Callable[[], object]) -> float:
    call()  # warm: plans and caches
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _measure(label: str, url: str, now: datetime) -> None:
    seed(url, now)
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        baseline_ms = _median_ms(lambda: dashboard_page(db, now, None, 100, 0))
        print(f"{label}: {PATIENTS} patients; median of {ROUNDS} rounds each")
        print(f"  dashboard first page (100 rows)  {baseline_ms:7.2f} ms  (baseline)")
        for kind, query in QUERIES.items():
            hits = len(search_patients(db, query))
            ms = _median_ms(lambda q=query: search_patients(db, q))  # type: ignore[misc]
            ratio = ms / baseline_ms
            verdict = "OK" if ratio <= GOAL_RATIO else "MISSED"
            print(
                f"  search by {kind:<9} {query!r:<13} {hits:3d} found {ms:7.2f} ms  "
                f"ratio {ratio:.2f}x (goal <= {GOAL_RATIO:g}x) {verdict}"
            )
    engine.dispose()


def main() -> None:
    now = datetime(2026, 12, 1, 12, 0)
    with tempfile.TemporaryDirectory() as tmp:
        _measure("SQLite", f"sqlite:///{Path(tmp) / 'clinic.sqlite3'}", now)
    url = postgres_url()
    if url is not None:
        try:
            _measure("PostgreSQL", url, now)
        finally:
            _pg_admin(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
