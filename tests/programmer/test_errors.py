"""Every programmer and pharmacology error is an InputError that names its field (issue 10)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime

import pytest

from itb.errors import InputError
from itb.pharmacology.exact import Bolus, Piece
from itb.pharmacology.population import draw_patients
from itb.pharmacology.titration import first_pump_dose, parse_origin
from itb.programmer.programming import Origin, Phase, ReviewContext, review_program
from itb.programmer.report import build_report
from itb.programmer.screening import dose_from_hourly_scores
from itb.pump.hardware import pump_model
from itb.therapy import continuous, parse_clock_min, program_from_dict, to_pump_s
from tests.programmer.test_report import status

P20 = pump_model("peristaltic-20")


def _refused() -> None:
    review = review_program(
        P20, None, continuous(2500.0), 2000.0, ReviewContext(Origin.SPINAL, Phase.TITRATION)
    )
    review.accept("a reason")


def _unconfirmed() -> None:
    review = review_program(
        P20,
        continuous(100.0),
        continuous(1000.0),
        2000.0,
        ReviewContext(Origin.SPINAL, Phase.MAINTENANCE),
    )
    review.accept(None)


CASES: list[tuple[Callable[[], object], str, str]] = [
    (lambda: parse_clock_min("25:00", "steps[0].start"), "steps[0].start", "'25:00'"),
    (lambda: program_from_dict({"rate_ug_per_day": "x"}), "rate_ug_per_day", "finite number"),
    (lambda: program_from_dict({}), "program", "exactly one"),
    (lambda: to_pump_s(datetime.fromisoformat("2027-01-04T00:00+01:00")), "time", "UTC offset"),
    (lambda: parse_origin("cardiac"), "origin", "allowed spinal"),
    (lambda: first_pump_dose(500.0, 2.0), "screening_dose_ug", "more than 0 to 100"),
    (lambda: Bolus(0.0, -1.0), "dose_ug", "0 or more"),
    (lambda: Piece(2.0, 1.0, 5.0), "end_h", "start_h or later"),
    (lambda: draw_patients(None, 0), "n", "n=0"),  # type: ignore[arg-type]
    (lambda: dose_from_hourly_scores(60.0, {0: 3.0}), "dose_ug", "25, 50, 75 or 100"),
    (lambda: build_report(status(), [{"seq": 1}], datetime(2027, 1, 1)), "events[0]", "missing"),
    (_refused, "program", "program refused"),
    (_unconfirmed, "confirmation_reason", "confirmation_reason: a reason is required"),
]


@pytest.mark.parametrize(("call", "field", "words"), CASES)
def test_each_error_is_an_input_error_with_its_field(
    call: Callable[[], object], field: str, words: str
) -> None:
    with pytest.raises(InputError) as info:
        call()
    assert info.value.field == field
    assert words in str(info.value)
    again = pickle.loads(pickle.dumps(info.value))  # crosses the simulator's process pool
    assert type(again) is type(info.value)
    assert (again.field, str(again)) == (field, str(info.value))
