"""Run a cohort: patients in chunks, on one process, on local worker processes, or on a Dask
cluster. Each patient draws from its own seeded generator, so the split does not change the
results: the same file and seed give the same outcomes however many workers run them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from itb.sim.config import CohortConfig
from itb.sim.patient import ALARM_KINDS, PatientOutcome, horizon_days, simulate_patient
from itb.units import UG_PER_MG

Progress = Callable[[int], None]


def simulate_chunk(config: CohortConfig, indices: list[int]) -> list[PatientOutcome]:
    return [simulate_patient(config, i) for i in indices]


def chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


@dataclass
class CohortResult:
    config: CohortConfig
    outcomes: list[PatientOutcome]
    interrupted: bool = False
    elapsed_s: float = 0.0
    workers: str = "1"
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = sorted(self.outcomes, key=lambda o: o.index)
        years = self.config.cohort.years
        alarms = {k: sum(o.alarms.get(k, 0) for o in out) for k in ALARM_KINDS}
        intervals = [
            o.refill_interval_mean_days for o in out if not math.isnan(o.refill_interval_mean_days)
        ]
        weeks = max(1, math.ceil(horizon_days(self.config) / 7.0))
        per_week = np.zeros(weeks)
        for o in out:
            for day in o.visit_days:
                per_week[min(int(day // 7), weeks - 1)] += 1
        return {
            "patients": len(out),
            "patients_planned": self.config.cohort.patients,
            "years": years,
            "seed": self.config.cohort.seed,
            "patient_years": len(out) * years,
            "withdrawal_days": sum(o.withdrawal_h for o in out) / 24.0,
            "patients_with_withdrawal": sum(o.withdrawal_h > 0 for o in out),
            # days with the syndrome's signs expected, by grade (withdrawal_course.py)
            "withdrawal_signs_days": sum(o.withdrawal_signs_h for o in out) / 24.0,
            "withdrawal_severe_days": sum(o.withdrawal_severe_h for o in out) / 24.0,
            "no_delivery_days": sum(o.no_delivery_h for o in out) / 24.0,
            "alarms": alarms,
            "refills": sum(o.refills for o in out),
            "missed_visits": sum(o.missed_visits for o in out),
            "replacements": sum(o.replacements for o in out),
            "catheter_faults": sum(o.catheter_faults for o in out),
            "motor_stalls": sum(o.motor_stalls for o in out),
            "low_battery_resets": sum(o.low_battery_resets for o in out),
            "premature_eris": sum(o.premature_eris for o in out),
            "premature_eoss": sum(o.premature_eoss for o in out),
            "delivered_mg": sum(o.delivered_ug for o in out) / UG_PER_MG,
            "received_mg": sum(o.received_ug for o in out) / UG_PER_MG,
            "refill_interval_mean_days": float(np.mean(intervals)) if intervals else None,
            "visits_per_week_mean": float(per_week.mean()),
            "visits_per_week_max": int(per_week.max()),
            "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 3),
            "workers": self.workers,
        }


def run_cohort(
    config: CohortConfig,
    *,
    workers: int = 1,
    cluster: str | None = None,
    chunk_size: int = 20,  # small enough that the last chunks leave no worker idle for long
    progress: Progress | None = None,
) -> CohortResult:
    """Simulate every patient; Ctrl-C keeps the finished patients (``interrupted`` is set)."""
    started = time.perf_counter()
    n = config.cohort.patients
    outcomes: list[PatientOutcome] = []
    interrupted = False

    def done(batch: list[PatientOutcome]) -> None:
        outcomes.extend(batch)
        if progress is not None:
            progress(len(batch))

    try:
        if cluster is not None:
            label = f"dask:{cluster}"
            _run_dask(config, cluster, chunk_size, done)
        elif workers <= 1 or n <= chunk_size:  # one chunk: a pool would only add start-up
            label = "1"
            for indices in chunks(n, chunk_size):
                done(simulate_chunk(config, indices))
        else:
            label = str(workers)
            _run_processes(config, workers, chunk_size, done)
    except KeyboardInterrupt:
        interrupted = True
        label = "interrupted"
    outcomes.sort(key=lambda o: o.index)
    return CohortResult(config, outcomes, interrupted, time.perf_counter() - started, label)


def _run_processes(
    config: CohortConfig,
    workers: int,
    chunk_size: int,
    done: Callable[[list[PatientOutcome]], None],
) -> None:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: set[Future[list[PatientOutcome]]] = {
            pool.submit(simulate_chunk, config, indices)
            for indices in chunks(config.cohort.patients, chunk_size)
        }
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(future.result())
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise


def _run_dask(
    config: CohortConfig,
    address: str,
    chunk_size: int,
    done: Callable[[list[PatientOutcome]], None],
) -> None:
    from distributed import Client, as_completed

    with Client(address) as client:  # type: ignore[no-untyped-call]
        futures = [
            client.submit(simulate_chunk, config, indices, pure=False)
            for indices in chunks(config.cohort.patients, chunk_size)
        ]
        try:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                done(future.result())
        except KeyboardInterrupt:
            client.cancel(futures)
            raise
