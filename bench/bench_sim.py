"""Cohort simulator throughput: a 1,000-patient, 10-year cohort with pharmacology, on one
worker and on two local processes, in the same run."""

from __future__ import annotations

from itb.sim.config import parse_cohort
from itb.sim.engine import run_cohort

COHORT = {"cohort": {"patients": 1000, "years": 10, "seed": 7}}


def main() -> None:
    config = parse_cohort(COHORT)
    one = run_cohort(config, workers=1)
    two = run_cohort(config, workers=2)
    years = one.summary()["patient_years"]
    rate_one = years / one.elapsed_s
    rate_two = years / two.elapsed_s
    assert one.summary()["withdrawal_days"] == two.summary()["withdrawal_days"]
    print(f"{years:,.0f} patient-years (1,000 patients x 10 years, pharmacology on)")
    print(f"1 worker:  {one.elapsed_s:6.2f} s  = {rate_one:,.0f} pump-years/s")
    print(f"2 workers: {two.elapsed_s:6.2f} s  = {rate_two:,.0f} pump-years/s")
    print(f"scaling 1 -> 2 workers: {rate_two / rate_one:.2f}x")
    print(f"10,000 patient-years would take {10_000 / rate_two:.1f} s on 2 workers (target < 60 s)")
    print(f"withdrawal days in the cohort: {one.summary()['withdrawal_days']:.1f}")
