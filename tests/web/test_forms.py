"""The pages' typed forms: text in, numbers, dates and programs out, or an error naming the
field (no database, no app: the parsing alone)."""

from __future__ import annotations

from datetime import datetime

import pytest

from itb.errors import InputError
from itb.web.pages.forms import (
    ImplantForm,
    PatientNewForm,
    ProgramForm,
    RefillForm,
    ReplacementForm,
    ScreeningForm,
    program_from_form,
)

IMPLANT = {"model": "peristaltic-20", "serial": "P-1", "concentration_ug_per_ml": "500",
           "filled_ml": "20", "rate_ug_per_day": "600", "catheter_trimmed_cm": "40"}  # fmt: skip


def _field(error: pytest.ExceptionInfo[InputError]) -> str:
    return error.value.field


def test_flex_steps_become_the_scenario_program_keys() -> None:
    assert program_from_form("", "00:00 15\n07:00 25") == {
        "steps": [
            {"start": "00:00", "rate_ug_per_h": 15.0},
            {"start": "07:00", "rate_ug_per_h": 25.0},
        ]
    }
    assert program_from_form("600", "") == {"rate_ug_per_day": 600.0}


@pytest.mark.parametrize(
    ("rate", "steps", "field"),
    [
        ("", "00:00", "steps[0]"),  # no rate on the line
        ("", "00:00 15\n07:00 lots", "steps[1]"),
        ("six hundred", "", "rate_ug_per_day"),
        ("inf", "", "rate_ug_per_day"),  # a number, but not a finite one
    ],
)
def test_a_bad_program_names_the_field(rate: str, steps: str, field: str) -> None:
    with pytest.raises(InputError) as error:
        program_from_form(rate, steps)
    assert _field(error) == field


def test_an_implant_needs_a_program_and_a_concentration_a_replacement_carries_them_over() -> None:
    with pytest.raises(InputError) as error:
        ImplantForm(**{**IMPLANT, "rate_ug_per_day": ""}).to_input()
    assert _field(error) == "rate_ug_per_day"
    with pytest.raises(InputError) as error:
        ImplantForm(**{**IMPLANT, "concentration_ug_per_ml": ""}).to_input()
    assert _field(error) == "concentration_ug_per_ml"
    carried = ReplacementForm(model="peristaltic-40", serial="P-2", filled_ml="40").to_input()
    assert carried.program is None and carried.concentration_ug_per_ml is None
    assert carried.low_reservoir_alarm_ml is None and carried.at is None


def test_the_pump_date_is_named_as_the_api_names_it_and_must_be_local_time() -> None:
    with pytest.raises(InputError) as error:
        ImplantForm(**{**IMPLANT, "at": "yesterday"}).to_input()
    assert _field(error) == "implanted_at"
    with pytest.raises(InputError) as error:
        ReplacementForm(serial="P-2", filled_ml="40", at="2027-01-04T08:00+01:00").to_input()
    assert _field(error) == "replaced_at"
    data = ImplantForm(**{**IMPLANT, "at": "2027-01-04T08:00", "confirm": "yes"}).to_input()
    assert data.at == datetime(2027, 1, 4, 8, 0) and data.confirm


def test_the_form_shows_back_as_typed_without_the_button() -> None:
    form = ImplantForm(**IMPLANT, action="save")
    assert form.values()["filled_ml"] == "20" and "action" not in form.values()
    # the discrepancy box is ticked again each time, never carried over
    refill = RefillForm(withdrawn_ml="2.8", acknowledge_discrepancy="yes")
    assert "acknowledge_discrepancy" not in refill.values() and refill.acknowledged


def test_a_new_patient_needs_a_birth_date_or_an_age() -> None:
    with pytest.raises(InputError) as error:
        PatientNewForm(name="A", mrn="M").to_input()
    assert _field(error) == "birth_date"
    with pytest.raises(InputError) as error:
        PatientNewForm(name="A", mrn="M", age_years="1000").to_input()
    assert _field(error) == "age_years"
    assert PatientNewForm(name="A", mrn="M", age_years=" 34 ").to_input().age_years == 34


def test_a_phase_outside_the_two_is_refused() -> None:
    with pytest.raises(InputError) as error:
        ProgramForm(rate_ug_per_day="300", phase="induction").to_request()
    assert _field(error) == "phase"


def test_screening_scores_only_the_hours_typed() -> None:
    form = ScreeningForm(dose_ug="50", mas_0="3", mas_4=" 1 ", mas_8="2.5")
    assert form.scores() == {0: 3.0, 4: 1.0, 8: 2.5}
    with pytest.raises(InputError) as error:
        ScreeningForm(mas_0="3", mas_2="two").scores()
    assert _field(error) == "scores[2]"
