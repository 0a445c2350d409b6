"""Issue 11's holes in the program review: stacking, loosest defaults, reshaping, boundaries,
children, the review token and ambiguous input (unit level; the CLI over telemetry is in
test_cli_program_holes.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from itb.guardrails import CHANGE_LIMITS, Origin, Phase, Verdict, strictest_change_limit
from itb.programmer.programming import (
    ProgramChange,
    ProgramReview,
    ReviewContext,
    program_in_force_at,
    review_program,
    review_token,
)
from itb.pump.hardware import pump_model
from itb.therapy import FlexStep, Program, ProgramError, continuous, flex, program_from_dict

P20 = pump_model("peristaltic-20")
SPINAL_TITRATION = ReviewContext(Origin.SPINAL, Phase.TITRATION)
T0 = datetime(2027, 3, 1, 9, 0)


def review(
    old: Program | None, new: Program, context: ReviewContext = SPINAL_TITRATION
) -> ProgramReview:
    return review_program(P20, old, new, 2000.0, context)


def warned(r: ProgramReview) -> set[str]:
    return {c.name for c in r.checks if c.verdict is Verdict.WARN}


# Titration stacking -----------------------------------------------------------------------------
def test_a_second_increase_within_24_hours_is_judged_against_the_program_of_24_hours_ago() -> None:
    # 400 → 520 (+30 %, at the spinal titration limit) then 520 → 670 (+28.8 % alone) an hour
    # later: against the 400 µg/day in force 24 h ago it is +67.5 %, beyond +30 %.
    first = review(continuous(400.0), continuous(520.0))
    assert first.verdict is Verdict.OK
    context = ReviewContext(Origin.SPINAL, Phase.TITRATION, program_24h_ago=continuous(400.0))
    second = review(continuous(520.0), continuous(670.0), context)
    assert warned(second) == {"dose_change_24h"}
    (reason,) = second.reasons(Verdict.WARN)
    assert "+67.5%" in reason and "24 h" in reason
    with pytest.raises(ValueError, match="reason"):
        second.accept(None)
    assert second.accept("reviewed with the physician").daily_dose_ug() == pytest.approx(670.0)


def test_small_steps_that_stay_within_the_limit_over_24_hours_pass() -> None:
    context = ReviewContext(Origin.SPINAL, Phase.TITRATION, program_24h_ago=continuous(400.0))
    assert review(continuous(440.0), continuous(520.0), context).verdict is Verdict.OK  # +30 %


def test_the_program_in_force_24_hours_ago_is_walked_back_from_the_log() -> None:
    p400, p520, p670 = continuous(400.0), continuous(520.0), continuous(670.0)
    changes = [
        ProgramChange(T0 + timedelta(hours=1), p520, p670),
        ProgramChange(T0, p400, p520),
    ]  # out of order on purpose
    assert program_in_force_at(changes, T0 - timedelta(minutes=1), p670) == p400
    assert program_in_force_at(changes, T0, p670) == p520  # logged at `at`: in force
    assert program_in_force_at(changes, T0 + timedelta(hours=2), p670) == p670
    assert program_in_force_at([], T0, p670) == p670


# Loosest limits by default ---------------------------------------------------------------------
def test_without_origin_or_phase_the_strictest_limits_apply_and_the_review_says_so() -> None:
    # 400 → 480 is +20 %: fine for spinal maintenance (+40 %), beyond cerebral titration (+15 %).
    r = review(continuous(400.0), continuous(480.0), ReviewContext())
    assert warned(r) == {"dose_change"}
    limits = next(c for c in r.checks if c.name == "change_limits")
    assert "origin not given" in limits.reason and "phase not given" in limits.reason
    assert "+15%" in limits.reason
    # Spinal given, phase not: spinal titration's +30 % applies, so +20 % passes and says why.
    given = review(continuous(400.0), continuous(480.0), ReviewContext(Origin.SPINAL))
    assert given.verdict is Verdict.OK
    limits = next(c for c in given.checks if c.name == "change_limits")
    assert "phase not given" in limits.reason and "origin not given" not in limits.reason
    assert "+30%" in limits.reason


@pytest.mark.parametrize("origin", [None, *Origin])
@pytest.mark.parametrize("phase", [None, *Phase])
def test_a_missing_origin_or_phase_never_loosens_a_limit(
    origin: Origin | None, phase: Phase | None
) -> None:
    applied = strictest_change_limit(origin, phase).limit
    for (o, p), limit in CHANGE_LIMITS.items():
        if (origin is None or o is origin) and (phase is None or p is phase):
            assert applied.max_increase_percent <= limit.max_increase_percent
            assert applied.max_decrease_percent <= limit.max_decrease_percent
    assert bool(strictest_change_limit(origin, phase).assumed) is (origin is None or phase is None)


# Children ------------------------------------------------------------------------------------
def test_a_child_above_the_dose_range_reported_under_12_years_needs_a_confirmation() -> None:
    # S25: under 12 years, 24 to 1199 µg/day. 1150 → 1250 is +8.7 % (within every limit).
    child = ReviewContext(Origin.SPINAL, Phase.MAINTENANCE, age_years=8.0)
    r = review(continuous(1150.0), continuous(1250.0), child)
    assert "daily_dose" in warned(r) and "under 12 years" in r.reasons(Verdict.WARN)[0]
    adult = ReviewContext(Origin.SPINAL, Phase.MAINTENANCE, age_years=30.0)
    assert (
        "warning level"
        in review(continuous(1150.0), continuous(1250.0), adult).reasons(Verdict.WARN)[0]
    )
    assert review(continuous(1100.0), continuous(1190.0), child).verdict is Verdict.OK


@pytest.mark.parametrize("age", [-1.0, float("nan"), 200.0])
def test_an_impossible_age_names_the_field(age: float) -> None:
    with pytest.raises(ValueError) as info:
        ReviewContext(age_years=age)
    assert getattr(info.value, "field", None) == "age_years"


# Reshaping a flex schedule ---------------------------------------------------------------------
def test_the_same_daily_total_with_one_hour_at_four_times_its_rate_needs_a_confirmation() -> None:
    # Old 600 µg/day = 25 µg/h. New: 8 h × 25 + 1 h × 100 + 15 h × 20 = 600 µg/day, the same
    # total, but 08:00 is 4× (+300 %) and 09:00 is −20 % (exactly the limit: allowed).
    new = flex([FlexStep(0, 25.0), FlexStep(8 * 60, 100.0), FlexStep(9 * 60, 20.0)])
    r = review(continuous(600.0), new, ReviewContext(Origin.SPINAL, Phase.MAINTENANCE))
    assert r.new_daily_dose_ug == pytest.approx(600.0)
    assert warned(r) == {"step_rate_change"}
    (reason,) = r.reasons(Verdict.WARN)
    assert "08:00" in reason and "+300.0%" in reason and "09:00" not in reason


def test_a_per_weekday_reshape_is_caught_on_its_day() -> None:
    plain = [FlexStep(0, 25.0)]
    sunday = [FlexStep(0, 25.0), FlexStep(12 * 60, 60.0), FlexStep(13 * 60, 25.0)]
    new = flex([plain] * 6 + [sunday])
    r = review(continuous(600.0), new, ReviewContext(Origin.SPINAL, Phase.MAINTENANCE))
    assert "step_rate_change" in warned(r) and "sun 12:00" in r.reasons(Verdict.WARN)[-1]


# Limits at the boundary -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "warns"),
    [
        (400.0, 520.0, False),  # +30 % exactly: allowed
        (400.0, 520.0001, True),  # a hair beyond
        (333.3, 433.29, False),  # +30 % exactly in decimals, not in binary floating point
        (333.3, 433.2901, True),
        (400.0, 320.0, False),  # −20 % exactly
        (400.0, 319.9999, True),
        (123.45, 160.485, False),  # +30 %
    ],
)
def test_a_change_of_exactly_the_limit_is_allowed_and_a_hair_beyond_is_not(
    old: float, new: float, warns: bool
) -> None:
    r = review(continuous(old), continuous(new))
    assert ("dose_change" in warned(r)) is warns, r.checks
    flat_old, flat_new = flex([FlexStep(0, old / 24)]), flex([FlexStep(0, new / 24)])
    assert ("step_rate_change" in warned(review(flat_old, flat_new))) is warns


def test_the_absolute_maximum_itself_is_not_refused_for_rounding() -> None:
    r = review(continuous(1900.0), continuous(2000.0))
    assert not r.refused


# The review token ------------------------------------------------------------------------------
def test_the_review_token_survives_a_wire_round_trip_and_changes_with_anything_reviewed() -> None:
    old, new = continuous(400.0), continuous(520.0)
    token = review_token("S1", old, new)
    assert token == review_token("S1", program_from_dict(old.to_dict()), continuous(520.0))
    assert len(token) == 64
    assert token != review_token("S2", old, new)
    assert token != review_token("S1", continuous(401.0), new)
    assert token != review_token("S1", old, continuous(521.0))
    assert token != review_token("S1", None, new)


# Ambiguous input ---------------------------------------------------------------------------------
def test_a_daily_rate_and_steps_together_are_refused_naming_both() -> None:
    data: dict[str, object] = {
        "rate_ug_per_day": 400.0,
        "steps": [{"start": "00:00", "rate_ug_per_h": 20.0}],
    }
    with pytest.raises(ProgramError) as info:
        program_from_dict(data)
    assert info.value.field == "rate_ug_per_day"
    assert "rate_ug_per_day and steps" in str(info.value)
