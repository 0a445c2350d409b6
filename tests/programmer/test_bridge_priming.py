"""Concentration change (bridge) and priming volumes, worked by hand."""

from __future__ import annotations

import pytest

from itb.drugs import UnknownDrugError
from itb.guardrails import LimitError
from itb.programmer.bridge import plan_concentration_change
from itb.programmer.priming import plan_priming
from itb.pump.hardware import implanted_catheter_volume_ml, pump_model

P20 = pump_model("peristaltic-20")  # internal tubing 0.2 mL [R]
V20 = pump_model("valve-gated-20")  # internal tubing 0.1 mL [R]


def test_catheter_volume_follows_s31() -> None:
    # (110 − 10) cm × 0.0026 mL/cm = 0.26 mL; untrimmed 110 × 0.0026 = 0.286 mL.
    assert implanted_catheter_volume_ml(10.0) == pytest.approx(0.26)
    assert implanted_catheter_volume_ml(0.0) == pytest.approx(0.286)


@pytest.mark.parametrize("trimmed_cm", [-5.0, 110.0, 200.0, float("nan")])
def test_absurd_catheter_trims_are_refused(trimmed_cm: float) -> None:
    with pytest.raises(LimitError) as info:
        implanted_catheter_volume_ml(trimmed_cm)
    assert info.value.field == "catheter_trimmed_cm"


def test_priming_a_new_pump_fills_catheter_and_tubing_and_states_the_overdose_risk() -> None:
    # 0.26 mL catheter + 0.2 mL tubing = 0.46 mL; at 2000 µg/mL that is 920 µg if the
    # catheter were already full. At 24 mL/day: 0.46 / 24 × 1440 = 27.6 min.
    p = plan_priming(P20, 10.0, 2000.0)
    assert p.priming_volume_ml == pytest.approx(0.46)
    assert p.dose_if_catheter_full_ug == pytest.approx(920.0)
    assert p.duration_min_at_max_flow == pytest.approx(27.6)
    assert any("920 µg" in r for r in p.reasons)


def test_catheter_revision_does_not_prime_the_full_pump_tubing() -> None:
    p = plan_priming(P20, 10.0, 500.0, pump_tubing_empty=False)
    assert p.priming_volume_ml == pytest.approx(0.26)
    assert p.dose_if_catheter_full_ug == pytest.approx(130.0)


def test_priming_refuses_an_unknown_concentration() -> None:
    with pytest.raises(UnknownDrugError):
        plan_priming(P20, 10.0, 250.0)


def test_bridge_to_a_higher_concentration_keeps_the_daily_dose() -> None:
    # Dead space 0.2 + 0.26 = 0.46 mL of 500 µg/mL = 230 µg. Bridge at 500/500 = 1 mL/day for
    # 0.46 × 500 / 500 = 0.46 day = 11.04 h. Then 500/2000 = 0.25 mL/day.
    # Without the bridge the old drug leaves at 0.25 mL/day: 0.25 × 500 = 125 µg/day (a
    # quarter of the dose) for 0.46 / 0.25 = 1.84 days = 44.16 h.
    b = plan_concentration_change(P20, 0.26, 500.0, 2000.0, 500.0)
    assert b.dead_space_ml == pytest.approx(0.46)
    assert b.bridge_dose_ug == pytest.approx(230.0)
    assert b.bridge_volume_rate_ml_per_day == pytest.approx(1.0)
    assert b.bridge_duration_h == pytest.approx(11.04)
    assert b.new_volume_per_day_ml == pytest.approx(0.25)
    assert b.unbridged_dose_ug_per_day == pytest.approx(125.0)
    assert b.unbridged_duration_h == pytest.approx(44.16)
    assert "underdose" in b.reasons[-1]


def test_bridge_to_a_lower_concentration_prevents_an_overdose() -> None:
    # Valve-gated: 0.1 + 0.2 = 0.3 mL of 2000 µg/mL = 600 µg; 800 µg/day: bridge at
    # 800/2000 = 0.4 mL/day for 0.3 × 2000 / 800 = 0.75 day = 18 h. Unbridged at the new
    # 0.8 mL/day: 0.8 × 2000 = 1600 µg/day, twice the dose, for 0.3 / 0.8 day = 9 h.
    b = plan_concentration_change(V20, 0.2, 2000.0, 1000.0, 800.0)
    assert b.bridge_dose_ug == pytest.approx(600.0)
    assert b.bridge_volume_rate_ml_per_day == pytest.approx(0.4)
    assert b.bridge_duration_h == pytest.approx(18.0)
    assert b.unbridged_dose_ug_per_day == pytest.approx(1600.0)
    assert b.unbridged_duration_h == pytest.approx(9.0)
    assert "overdose" in b.reasons[-1]


def test_bridge_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="no concentration change"):
        plan_concentration_change(P20, 0.26, 500.0, 500.0, 500.0)
    with pytest.raises(UnknownDrugError):
        plan_concentration_change(P20, 0.26, 500.0, 1500.0, 500.0)
    with pytest.raises(LimitError, match="catheter_volume_ml"):
        plan_concentration_change(P20, 0.0, 500.0, 2000.0, 500.0)
    with pytest.raises(LimitError, match="catheter_volume_ml"):
        plan_concentration_change(P20, 5.0, 500.0, 2000.0, 500.0)
    with pytest.raises(LimitError, match="daily_dose_ug"):
        plan_concentration_change(P20, 0.26, 500.0, 2000.0, -10.0)
    # 1500 µg/day at 50 µg/mL = 30 mL/day: more than the pump can push (24 mL/day).
    with pytest.raises(LimitError, match="old_volume_per_day_ml"):
        plan_concentration_change(P20, 0.26, 50.0, 500.0, 1500.0)
