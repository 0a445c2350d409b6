"""The pages' typed forms: text in, numbers, dates and programs out, or an error naming the
field (the parsing alone); and the decimal comma and typed units through the refill page."""

from __future__ import annotations

from datetime import datetime

import pytest

from itb.decimal_input import parse_decimal
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
from tests.clinic.support import DEMO_PASSWORD, Clinic, csrf_in
from tests.web.markup import find

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


# (typed, read as, or a word of the refusal) in a mL field
DECIMALS: list[tuple[str, float | str]] = [
    ("17.93", 17.93),
    ("17,93", 17.93),  # a decimal comma: no thousands group has two digits
    (" 0,5 ", 0.5),
    ("0,500", 0.5),  # a leading zero never starts a thousands group
    ("17,93 mL", 17.93),  # the field's own unit may follow
    ("17.93ml", 17.93),
    ("1,000", "ambiguous"),  # one thousand, or one point zero?
    ("12,500", "ambiguous"),
    ("1,234.5", "both a comma and a dot"),
    ("1.234,5", "both a comma and a dot"),
    ("1,2,3", "one number"),
    ("17 93", "enter a number"),  # never joined into 1793
    ("500 µL", "500 µL is 0.5 mL"),  # another unit is refused, with its value in mL
    ("0.02 L", "0.02 L is 20 mL"),
    ("20 mg", "not a unit of this field"),
    ("nan", "enter a number"),
    ("1e999", "finite"),
]


@pytest.mark.parametrize(("typed", "expected"), DECIMALS, ids=[d[0] for d in DECIMALS])
def test_a_typed_number_is_read_as_meant_or_refused_saying_why(
    typed: str, expected: float | str
) -> None:
    if isinstance(expected, float):
        assert parse_decimal(typed, "filled_ml", "mL") == expected
        return
    with pytest.raises(InputError) as error:
        parse_decimal(typed, "filled_ml", "mL")
    assert _field(error) == "filled_ml" and expected in error.value.reason


def test_a_dose_in_mg_or_a_concentration_in_mg_per_ml_is_refused_not_converted() -> None:
    with pytest.raises(InputError, match=r"0\.5 mg is 500 µg"):
        parse_decimal("0.5 mg", "dose_ug", "µg")
    with pytest.raises(InputError, match="2 mg/mL is 2000 µg/mL"):
        parse_decimal("2 mg/mL", "concentration_ug_per_ml", "µg/mL")
    assert parse_decimal("500 mcg/mL", "concentration_ug_per_ml", "µg/mL") == 500.0
    assert parse_decimal("600 ug/day", "rate_ug_per_day", "µg/day") == 600.0


def _refill_page(clinic: Clinic) -> tuple[int, str]:
    clinic.client.cookies.clear()
    login = clinic.client.get("/login").text
    clinic.client.post(
        "/login",
        data={"username": "nurse_demo", "password": DEMO_PASSWORD, "csrf_token": csrf_in(login)},
    )
    pid = clinic.patient_id("DEMO-001")  # a 20 mL pump of 500 µg/mL, made to expect 5.0 mL
    clinic.pumps.firmware("SIM-001").refill(clinic.clock(), 5.0, 500.0)
    return pid, csrf_in(clinic.client.get(f"/patients/{pid}/refill?step=2").text)


def test_a_refill_typed_with_decimal_commas_is_read_as_the_nurse_meant(clinic: Clinic) -> None:
    pid, token = _refill_page(clinic)
    done = clinic.client.post(
        f"/patients/{pid}/refill",
        data={"withdrawn_ml": "5,0", "filled_ml": "17,93", "concentration_ug_per_ml": "500",
              "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303, done.text
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 17.93


@pytest.mark.parametrize(
    ("field", "typed", "words"),
    [
        ("concentration_ug_per_ml", "1,000", "ambiguous"),
        ("filled_ml", "18000 µL", "18000 µL is 18 mL"),
        ("concentration_ug_per_ml", "0.5 mg/mL", "0.5 mg/mL is 500 µg/mL"),
    ],
)
def test_an_ambiguous_number_or_a_wrong_unit_on_the_refill_page_is_refused_in_words(
    clinic: Clinic, field: str, typed: str, words: str
) -> None:
    pid, token = _refill_page(clinic)
    form = {"withdrawn_ml": "5.0", "filled_ml": "18", "concentration_ug_per_ml": "500"}
    shown = clinic.client.post(
        f"/patients/{pid}/refill", data={**form, field: typed, "csrf_token": token}
    )
    assert shown.status_code == 422
    assert find(shown.text, "p", data_field=field)
    assert words in shown.text.replace("&#39;", "'")
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 5.0  # nothing changed
