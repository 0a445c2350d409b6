"""The programmer's review of a clinician bolus: each check's verdict and its reason in words."""

from __future__ import annotations

import pytest

from itb.guardrails import BOLUS_DOSE, Verdict
from itb.programmer.bolus_review import bolus_token, review_bolus
from itb.pump.hardware import pump_model
from itb.therapy import continuous

MODEL = pump_model("peristaltic-20")  # at most 24 mL/day
CONC_UG_PER_ML = 500.0


def _verdicts(dose_ug: float, minutes: float | None = 30.0, daily_ug: float = 450.0,
              age_years: float | None = None) -> dict[str, Verdict]:  # fmt: skip
    review = review_bolus(MODEL, continuous(daily_ug), CONC_UG_PER_ML, dose_ug, minutes, age_years)
    return {c.name: c.verdict for c in review.checks}


@pytest.mark.parametrize(
    ("dose_ug", "verdict"),
    [(BOLUS_DOSE.recommended_max, Verdict.OK), (100.5, Verdict.WARN), (200.5, Verdict.REFUSE)],
)
def test_the_single_bolus_limits_are_the_guardrails(dose_ug: float, verdict: Verdict) -> None:
    assert _verdicts(dose_ug)["dose"] is verdict


def test_a_bolus_too_fast_for_the_motor_names_the_shortest_duration() -> None:
    review = review_bolus(MODEL, continuous(450.0), CONC_UG_PER_ML, 100.0, 1.0)
    [motor] = [c for c in review.checks if c.name == "motor"]
    # 24 mL/day at 500 µg/mL less the program's 450 µg/day leaves 8.02 µg/min: 12.47 min
    assert motor.verdict is Verdict.REFUSE and "at least 12.5 min" in motor.reason


def test_the_day_total_is_judged_on_the_patients_range() -> None:
    assert _verdicts(50.0, daily_ug=990.0)["day"] is Verdict.WARN  # 1040 µg > 1000
    # the children's reported range reaches 1199 µg/day (the adults' usual maximum is 1000)
    assert _verdicts(50.0, daily_ug=1100.0, age_years=30.0)["day"] is Verdict.WARN
    assert _verdicts(50.0, daily_ug=1100.0, age_years=8.0)["day"] is Verdict.OK
    assert _verdicts(50.0, daily_ug=1160.0, age_years=8.0)["day"] is Verdict.WARN
    assert _verdicts(60.0, daily_ug=1950.0)["day"] is Verdict.REFUSE  # > 2000


def test_the_token_changes_with_the_dose_the_duration_and_the_program() -> None:
    base = bolus_token("SIM-1", continuous(450.0), 50.0, 10.0)
    assert base == bolus_token("SIM-1", continuous(450.0), 50.0, 10.0)
    others = {
        bolus_token("SIM-1", continuous(450.0), 50.5, 10.0),
        bolus_token("SIM-1", continuous(450.0), 50.0, 11.0),
        bolus_token("SIM-1", continuous(460.0), 50.0, 10.0),
        bolus_token("SIM-2", continuous(450.0), 50.0, 10.0),
    }
    assert base not in others and len(others) == 4


def test_an_absurd_dose_is_refused_with_a_token_not_an_error() -> None:
    review = review_bolus(MODEL, continuous(450.0), CONC_UG_PER_ML, 1e22, 1e22)
    assert review.refused
    assert len(bolus_token("SIM-1", continuous(450.0), 1e22, 1e22)) == 64
