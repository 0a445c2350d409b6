"""Refill: withdrawn-volume check (S28 + pump accuracy) and the next refill date (S24)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from itb.drugs import UnknownDrugError
from itb.errors import InputError
from itb.guardrails import LimitError
from itb.programmer.refill import RefillInput, check_withdrawn_volume, plan_refill
from itb.pump.hardware import pump_model

P20 = pump_model("peristaltic-20")
P40 = pump_model("peristaltic-40")
V20 = pump_model("valve-gated-20")


# Refill schedule -------------------------------------------------------------------------


def test_20ml_pump_at_100_ug_per_day_comes_back_five_days_before_a_possible_empty() -> None:
    # 100 µg/day at 500 µg/mL = 0.2 mL/day; (20 − 2) mL / 0.2 = 90 days to the alarm,
    # 20 / 0.2 = 100 days to empty, 100 / 1.145 = 87.34 at the fast end of ±14.5 %.
    # Bounds: alarm 90 − 5 = 85, fast-flow empty 87.34 − 5 = 82.34, stability 180: 82.34.
    s = plan_refill(RefillInput(P20, 20.0, 500.0, 100.0, filled_on=date(2027, 1, 4)))
    assert s.volume_per_day_ml == pytest.approx(0.2)
    assert s.days_to_low_reservoir == pytest.approx(90.0)
    assert s.days_to_empty == pytest.approx(100.0)
    assert s.next_refill_days == pytest.approx(100.0 / 1.145 - 5.0)
    assert s.next_refill_bound == "fast_flow_empty"
    assert "fast end" in s.next_refill_reason
    # 2027-01-04 + 82 days: 27 left in January, 28 in February, 27 into March.
    assert s.next_refill_on == date(2027, 3, 27)
    assert s.low_reservoir_on == date(2027, 4, 4)
    assert s.empty_on == date(2027, 4, 14)
    assert s.stability_limit_on == date(2027, 7, 3)
    assert s.warnings == ()


def test_40ml_pump_at_low_dose_is_limited_by_drug_stability() -> None:
    # 50 µg/day at 500 µg/mL = 0.1 mL/day: (40 − 2) / 0.1 = 380 days to the alarm, dry at
    # 400 / 1.145 = 349 at the fast end: stability (180 days) comes first.
    s = plan_refill(RefillInput(P40, 40.0, 500.0, 50.0))
    assert s.days_to_low_reservoir == pytest.approx(380.0)
    assert s.next_refill_days == pytest.approx(180.0)
    assert s.next_refill_bound == "stability"
    assert "stability" in s.next_refill_reason
    assert s.next_refill_on is None  # no fill date given, no dates


def test_dates_round_down_so_they_are_never_later_than_the_event() -> None:
    # 700 µg/day at 2000 µg/mL = 0.35 mL/day; dry at 20 / 0.35 / 1.145 = 49.91 days at the
    # fast end; next 44.91, shown as 2027-01-04 + 44 days = 2027-02-17.
    s = plan_refill(RefillInput(P20, 20.0, 2000.0, 700.0, filled_on=date(2027, 1, 4)))
    assert s.next_refill_days == pytest.approx(20 / 0.35 / 1.145 - 5)
    assert s.next_refill_on == date(2027, 2, 17)


def test_a_three_day_margin_moves_the_refill_two_days_later() -> None:
    s = plan_refill(RefillInput(P20, 20.0, 500.0, 100.0, safety_margin_days=3.0))
    assert s.next_refill_days == pytest.approx(100.0 / 1.145 - 3.0)  # 84.34, was 82.34


def test_the_refill_is_never_after_a_possible_empty_at_the_fast_end_of_accuracy() -> None:
    # Issue 11: 40 mL at 400 µg/day of 2000 µg/mL = 0.2 mL/day; at +14.5 % the reservoir is
    # dry after 200 / 1.145 = 174.7 days. The plan used to recommend day 180 (stability) and
    # warn about day 174.7; now it recommends 174.7 − 5 = 169.7 and says why.
    s40 = plan_refill(RefillInput(P40, 40.0, 2000.0, 400.0))
    assert s40.days_to_empty_at_fastest_flow == pytest.approx(174.67, abs=0.01)
    assert s40.next_refill_days == pytest.approx(200.0 / 1.145 - 5.0)
    assert s40.next_refill_bound == "fast_flow_empty"
    assert "174.7" in s40.next_refill_reason
    assert s40.warnings == ()
    s20 = plan_refill(RefillInput(P20, 20.0, 500.0, 100.0))
    assert s20.days_to_empty_at_fastest_flow == pytest.approx(87.34, abs=0.01)
    assert s20.warnings == ()


def test_a_dose_too_small_for_the_pump_is_flagged() -> None:
    # 20 µg/day at 2000 µg/mL = 0.01 mL/day, below the peristaltic pump's 0.048 mL/day.
    s = plan_refill(RefillInput(P20, 20.0, 2000.0, 20.0))
    assert any("lowest flow" in w for w in s.warnings)
    assert s.next_refill_days == pytest.approx(180.0)  # 1800 days to alarm: stability


def test_reservoir_below_the_alarm_says_refill_now() -> None:
    s = plan_refill(RefillInput(P20, 1.5, 500.0, 100.0))
    assert s.days_to_low_reservoir == 0.0
    assert s.next_refill_days == 0.0
    assert s.days_to_empty == pytest.approx(7.5)
    assert any("refill now" in w for w in s.warnings)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reservoir_ml": 20.5}, "reservoir_ml"),  # overfill
        ({"reservoir_ml": -1.0}, "reservoir_ml"),
        ({"reservoir_ml": math.nan}, "reservoir_ml"),
        ({"daily_dose_ug": 0.0}, "daily_dose_ug"),
        ({"daily_dose_ug": 2500.0}, "daily_dose_ug"),
        ({"low_reservoir_alarm_ml": 0.2}, "low_reservoir_alarm_ml"),
        ({"safety_margin_days": -1.0}, "safety_margin_days"),
    ],
)
def test_bad_plan_input_names_the_field_and_range(kwargs: dict[str, float], field: str) -> None:
    args: dict[str, float] = {
        "reservoir_ml": 20.0,
        "concentration_ug_per_ml": 500.0,
        "daily_dose_ug": 100.0,
    } | kwargs
    with pytest.raises(LimitError) as info:
        plan_refill(RefillInput(P20, **args))  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)
    assert "allowed range" in str(info.value)


def test_overfill_error_gives_the_reservoir_size() -> None:
    with pytest.raises(LimitError, match="0 to 20 mL"):
        plan_refill(RefillInput(P20, 21.0, 500.0, 100.0))


def test_unknown_concentration_is_refused_with_the_marketed_list() -> None:
    with pytest.raises(UnknownDrugError, match="50, 500, 1000, 2000"):
        plan_refill(RefillInput(P20, 20.0, 300.0, 100.0))


def test_a_volume_rate_above_the_pump_maximum_is_refused() -> None:
    # 2000 µg/day at 50 µg/mL = 40 mL/day, above 24 mL/day.
    with pytest.raises(LimitError) as info:
        plan_refill(RefillInput(P20, 20.0, 50.0, 2000.0))
    assert info.value.field == "volume_per_day_ml"


# Fill volume ------------------------------------------------------------------------------


def test_fill_up_to_the_reservoir_is_accepted_and_overfill_refused() -> None:
    # The pump model's own rule (itb.pump.hardware.PumpModel.check_fill), asked by the programmer.
    assert P20.check_fill(20.0, "fill_ml") == 20.0
    assert P40.check_fill(40.0, "fill_ml") == 40.0
    with pytest.raises(InputError, match=r"fill_ml.*never overfill") as over:
        P20.check_fill(20.1, "fill_ml")
    assert over.value.field == "fill_ml"
    with pytest.raises(InputError, match="fill_ml") as negative:
        P40.check_fill(-2.0, "fill_ml")
    assert negative.value.field == "fill_ml"


# Withdrawn volume -------------------------------------------------------------------------


def test_1_2_ml_short_in_a_20ml_pump_is_a_possible_pocket_fill() -> None:
    # Expected 3.0, withdrawn 1.8: gap 1.2 mL > 1 mL (S28). Band 14.5 % × 17 mL = 2.465 mL.
    r = check_withdrawn_volume(P20, expected_ml=3.0, withdrawn_ml=1.8, delivered_since_fill_ml=17.0)
    assert r.discrepancy_ml == pytest.approx(-1.2)
    assert r.pocket_fill_tolerance_ml == pytest.approx(1.0)
    assert r.accuracy_band_ml == pytest.approx(2.465)
    assert r.flagged
    assert "pocket" in r.reasons[0] and "less than expected" in r.reasons[0]


def test_0_8_ml_gap_in_a_20ml_pump_is_within_tolerance() -> None:
    r = check_withdrawn_volume(P20, 3.0, 2.2, 17.0)
    assert not r.flagged
    assert "within" in r.reasons[0]


def test_40ml_pump_tolerates_up_to_2_ml() -> None:
    # 1.5 mL short: flagged in a 20 mL pump, not in a 40 mL pump (S28: 1 vs 2 mL).
    assert check_withdrawn_volume(P20, 5.0, 3.5, 15.0).flagged
    r40 = check_withdrawn_volume(P40, 5.0, 3.5, 35.0)
    assert r40.pocket_fill_tolerance_ml == pytest.approx(2.0)
    assert not r40.flagged
    assert check_withdrawn_volume(P40, 5.0, 2.5, 35.0).flagged


def test_exactly_at_the_tolerance_is_not_flagged() -> None:
    assert not check_withdrawn_volume(P20, 3.0, 2.0, 17.0).flagged


def test_more_than_the_accuracy_band_allows_is_flagged_even_below_1_ml() -> None:
    # Only 2 mL delivered since the fill: band 0.145 × 2 = 0.29 mL. 0.5 mL too much is
    # within S28's 1 mL but beyond what the pump's accuracy explains: under-delivery.
    r = check_withdrawn_volume(
        P20, expected_ml=18.0, withdrawn_ml=18.5, delivered_since_fill_ml=2.0
    )
    assert r.flagged
    assert "accuracy band" in r.reasons[1]
    assert "within the 1 mL tolerance" in r.reasons[0]
    assert r.accuracy_band_ml == pytest.approx(0.29)


def test_valve_gated_pump_uses_its_own_accuracy() -> None:
    # 10 % of 10 mL = 1 mL band.
    r = check_withdrawn_volume(V20, 10.0, 10.9, 10.0)
    assert r.accuracy_band_ml == pytest.approx(1.0)
    assert not r.flagged


@pytest.mark.parametrize(
    ("expected", "withdrawn", "delivered", "field"),
    [
        (3.0, 21.0, 17.0, "withdrawn_ml"),  # more than the reservoir holds
        (3.0, -0.5, 17.0, "withdrawn_ml"),
        (25.0, 3.0, 17.0, "expected_ml"),
        (3.0, 3.0, -1.0, "delivered_since_fill_ml"),
        (3.0, math.inf, 17.0, "withdrawn_ml"),
    ],
)
def test_bad_withdrawal_input_is_refused(
    expected: float, withdrawn: float, delivered: float, field: str
) -> None:
    with pytest.raises(LimitError) as info:
        check_withdrawn_volume(P20, expected, withdrawn, delivered)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("model", "dose_ug", "conc", "next_days"),
    [
        # docs/refill.md table: about one to six months, as clinics see (S24 S25).
        # Each is the fast-flow empty (volume / rate / 1.145) minus 5 days, earlier than the
        # alarm minus 5 days (the alarm counts the nominal flow).
        ("peristaltic-20", 1000.0, 2000.0, 20 / 0.5 / 1.145 - 5),  # 0.5 mL/day: 29.93
        ("peristaltic-40", 1000.0, 2000.0, 40 / 0.5 / 1.145 - 5),  # 64.87
        ("peristaltic-20", 100.0, 500.0, 20 / 0.2 / 1.145 - 5),  # 82.34
        ("peristaltic-40", 100.0, 500.0, 40 / 0.2 / 1.145 - 5),  # 169.67 < stability 180
    ],
)
def test_documented_refill_intervals(
    model: str, dose_ug: float, conc: float, next_days: float
) -> None:
    m = pump_model(model)
    assert plan_refill(
        RefillInput(m, m.reservoir_ml, conc, dose_ug)
    ).next_refill_days == pytest.approx(next_days)


@pytest.mark.parametrize(
    ("kwargs", "bound", "next_days"),
    [
        # 20 mL at 0.2 mL/day: fast-flow empty 87.34 − 5 = 82.34 unless a bound comes first.
        ({"days_to_eos": 60.0}, "eos", 55.0),  # EOS on day 60, minus the 5-day margin
        ({"days_to_eos": 87.34}, "fast_flow_empty", 100 / 1.145 - 5),  # EOS later
        ({"days_to_drug_expiry": 40.0}, "drug_expiry", 40.0),  # the drug's own expiry
        ({"days_to_eos": 3.0}, "eos", 0.0),  # EOS within the margin: now
    ],
)
def test_the_next_refill_is_never_after_eos_or_the_drugs_expiry_and_names_the_bound(
    kwargs: dict[str, float], bound: str, next_days: float
) -> None:
    s = plan_refill(RefillInput(P20, 20.0, 500.0, 100.0, **kwargs))  # type: ignore[arg-type]
    assert s.next_refill_bound == bound
    assert s.next_refill_days == pytest.approx(next_days)
    assert s.to_dict()["next_refill_bound"] == bound


@pytest.mark.parametrize("model", ["peristaltic-20", "peristaltic-40", "valve-gated-20"])
@pytest.mark.parametrize("dose_ug", [25.0, 100.0, 400.0, 1000.0])
@pytest.mark.parametrize("conc", [500.0, 1000.0, 2000.0])
def test_no_plan_recommends_a_date_it_calls_unsafe(model: str, dose_ug: float, conc: float) -> None:
    # The class of problem, not the example: over pumps, doses and concentrations the
    # recommendation is never after the fast-flow empty minus the margin, nor after stability.
    m = pump_model(model)
    s = plan_refill(RefillInput(m, m.reservoir_ml, conc, dose_ug))
    assert s.next_refill_days <= s.days_to_empty_at_fastest_flow - s.safety_margin_days + 1e-9
    assert s.next_refill_days <= s.days_to_low_reservoir - s.safety_margin_days + 1e-9
    assert s.next_refill_days <= s.stability_days
    assert not any("accuracy band" in w for w in s.warnings)


@pytest.mark.parametrize("field", ["days_to_eos", "days_to_drug_expiry"])
def test_a_bad_eos_or_expiry_bound_names_its_field(field: str) -> None:
    with pytest.raises(LimitError) as info:
        plan_refill(RefillInput(P20, 20.0, 500.0, 100.0, **{field: -1.0}))  # type: ignore[arg-type]
    assert info.value.field == field
