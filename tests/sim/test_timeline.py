"""The patient's timeline (issue 13's faster event loop): the clinic still notices ERI the
moment it comes, and a cohort is exactly its patients run one by one."""

from __future__ import annotations

from typing import Any

import pytest

from itb.sim.config import parse_cohort
from itb.sim.engine import run_cohort
from itb.sim.patient import simulate_patient
from itb.sim.timeline import Clinic
from itb.units import SECONDS_PER_DAY

NO_FAULTS = {
    "catheter_occlusion_per_year": 0.0,
    "motor_stall_per_year": 0.0,
    "low_battery_reset_per_year": 0.0,
    "premature_eri_per_year": 0.0,
    "premature_eos_per_year": 0.0,
}


def quiet(years: float, replacement_days_after_eri: float) -> dict[str, Any]:
    """One patient on 500 µg/day in a 20 mL pump, nothing random: refills every ~56 days."""
    return {
        "cohort": {"patients": 1, "years": years, "seed": 1},
        "population": {
            "spinal_fraction": 1.0,
            "age_min_years": 30,
            "age_max_years": 30,
            "flex_fraction": 0.0,
            "spinal_dose_p10_ug_per_day": 500.0,
            "spinal_dose_p90_ug_per_day": 500.0,
        },
        "pumps": {"models": {"peristaltic-20": 1.0}, "flow_error_sd_of_band": 0.0},
        "policy": {
            "late_visit_days_mean": 0.0,
            "missed_visit_rate": 0.0,
            "replacement_days_after_eri": replacement_days_after_eri,
        },
        "faults": NO_FAULTS,
        "pharmacology": {"enabled": False},
    }


@pytest.mark.parametrize("days_after_eri", [0.0, 30.0])
def test_the_pump_is_replaced_as_the_policy_says_after_it_reaches_eri(
    days_after_eri: float,
) -> None:
    # each refill visit costs the battery a telemetry session, so the predicted ERI moves at
    # every visit: only the latest prediction is watched, and it still brings the patient in
    # at ERI (with 0 days: at ERI itself, not at the next refill weeks later)
    clinic = Clinic(parse_cohort(quiet(10.0, days_after_eri)), 0)
    clinic.run()
    first, second = clinic.eras[0], clinic.eras[1]
    assert first.eri_s is not None
    replaced_s = second.implanted_s
    assert replaced_s is not None
    due_s = first.eri_s + days_after_eri * SECONDS_PER_DAY
    assert due_s <= replaced_s <= due_s + 60.0  # within a minute of when it is due
    assert replaced_s in clinic.visit_times


def test_a_cohort_is_exactly_its_patients_run_one_by_one() -> None:
    config = parse_cohort(
        {
            "cohort": {"patients": 8, "years": 9, "seed": 21},
            "faults": {"catheter_occlusion_per_year": 0.2, "premature_eri_per_year": 0.1},
        }
    )
    cohort = run_cohort(config, workers=2, chunk_size=3)
    one_by_one = [simulate_patient(config, i).to_row() for i in range(8)]
    assert [o.to_row() for o in cohort.outcomes] == one_by_one
    assert cohort.summary()["replacements"] > 0  # the ERI path was exercised
