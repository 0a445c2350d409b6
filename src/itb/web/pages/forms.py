"""The pages' forms as typed objects, and the parsing of their text into numbers and dates.

Each form is a pydantic model read from the posted form (``Annotated[Form, Form()]``): every
field is the text as typed (blank: ``""``, at most 4000 characters, else a 422 naming the
field), so that a page can show the form back as it was after an error. Turning the text into
numbers, dates and programs happens here, with an :class:`~itb.errors.InputError` that names
the field and says what to enter; the clinic's services then check the clinical rules.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from itb.clinic import services
from itb.clinic.services.patients import AGE_MAX_YEARS
from itb.clinic.services.screening import NOTES_MAX_CHARS
from itb.decimal_input import parse_decimal
from itb.errors import InputError
from itb.programmer.programming import Phase
from itb.programmer.screening import CLINIC_LAST_HOUR
from itb.web.pages.common import FORM_TEXT_MAX_CHARS

Text = Annotated[str, Field(max_length=FORM_TEXT_MAX_CHARS)]
SCORE_HOURS = tuple(range(CLINIC_LAST_HOUR + 1))  # 0 = baseline, then hourly for 8 h


def number(text: str, field: str, unit: str) -> float:
    """A finite number typed in ``unit``: a decimal comma where unambiguous, the field's unit
    after it allowed, another unit refused (:func:`itb.decimal_input.parse_decimal`)."""
    return parse_decimal(text, field, unit)


def local_datetime(text: str, field: str) -> datetime | None:
    """A date and time on the clinic's clock (naive local time); blank: None."""
    if not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(field, "enter a date and time") from None
    if when.tzinfo is not None:
        raise InputError(field, "the clinic's local time, no time zone")
    return when


def program_from_form(rate_ug_per_day: str, steps: str) -> dict[str, Any]:
    """A continuous rate, or flex steps one per line ``HH:MM rate_ug_per_h``, as the
    scenario's [program] keys."""
    if not steps.strip():
        return {"rate_ug_per_day": number(rate_ug_per_day, "rate_ug_per_day", "µg/day")}
    parsed = []
    for i, line in enumerate(steps.strip().splitlines()):
        parts = line.split()
        if len(parts) != 2:
            expected = "expected 'HH:MM rate_ug_per_h'"
            raise InputError(f"steps[{i}]", expected, f"steps line {i + 1}: {expected}")
        parsed.append({"start": parts[0], "rate_ug_per_h": number(parts[1], f"steps[{i}]", "µg/h")})
    return {"steps": parsed}


def _reason(text: str) -> str:
    return text.strip()[: services.REASON_MAX_CHARS]


class PageForm(BaseModel):
    """A posted form; ``csrf_token`` is checked by the route's dependency, not kept here."""

    model_config = ConfigDict(extra="ignore")

    def values(self) -> dict[str, str]:
        """The fields as typed, to show the form back (``action`` is the button, not a value)."""
        return {k: v for k, v in self.model_dump().items() if k != "action"}


class PatientNewForm(PageForm):
    name: Text = ""
    mrn: Text = ""
    birth_date: Text = ""
    age_years: Text = ""
    origin: Text = ""
    clinician_id: Text = ""

    def to_input(self) -> services.PatientInput:
        birth = None
        if self.birth_date.strip():
            try:
                birth = date.fromisoformat(self.birth_date.strip())
            except ValueError:
                raise InputError("birth_date", "enter a date (YYYY-MM-DD)") from None
        age = None
        if self.age_years.strip():
            digits = self.age_years.strip()
            if not digits.isdigit() or len(digits) > len(str(AGE_MAX_YEARS)):
                raise InputError("age_years", f"whole years, 0 to {AGE_MAX_YEARS}")
            age = int(digits)
        if birth is None and age is None:
            raise InputError("birth_date", "enter the date of birth or the age")
        clinician = int(self.clinician_id) if self.clinician_id.strip().isdigit() else None
        return services.PatientInput(self.name, self.mrn, self.origin, birth, age, clinician)


class PumpForm(PageForm):
    """The fields an implant and a replacement share (the pump, its fill, its program)."""

    model: Text = ""
    serial: Text = ""
    at: Text = ""
    concentration_ug_per_ml: Text = ""
    filled_ml: Text = ""
    rate_ug_per_day: Text = ""
    steps: Text = ""
    low_reservoir_alarm_ml: Text = ""
    confirm: Text = ""
    reason: Text = ""

    # the name the JSON API gives ``at``, used in the error (implanted_at or replaced_at)
    date_field: ClassVar[str] = "implanted_at"
    # a replacement carries over what is left blank; an implant needs all of it
    carries_over: ClassVar[bool] = False

    def to_input(self) -> services.PumpInput:
        at = local_datetime(self.at, self.date_field)
        program = None
        if self.rate_ug_per_day.strip() or self.steps.strip():
            program = program_from_form(self.rate_ug_per_day, self.steps)
        elif not self.carries_over:
            raise InputError("rate_ug_per_day", "enter the first program")
        concentration = self._optional("concentration_ug_per_ml", "µg/mL")
        if concentration is None and not self.carries_over:
            raise InputError("concentration_ug_per_ml", "choose one")
        return services.PumpInput(
            model=self.model,
            serial=self.serial,
            filled_ml=number(self.filled_ml, "filled_ml", "mL"),
            concentration_ug_per_ml=concentration,
            program=program,
            low_reservoir_alarm_ml=self._optional("low_reservoir_alarm_ml", "mL"),
            at=at,
            confirm=self.confirm == "yes",
            reason=_reason(self.reason),
        )

    def _optional(self, field: str, unit: str) -> float | None:
        text: str = getattr(self, field)
        return number(text, field, unit) if text.strip() else None


class ImplantForm(PumpForm):
    catheter_trimmed_cm: Text = ""
    action: Text = "review"  # review: show the catheter, priming and checks; save: record


class ReplacementForm(PumpForm):
    """Blank concentration, program or alarm threshold: carried over from the old pump."""

    date_field: ClassVar[str] = "replaced_at"
    carries_over: ClassVar[bool] = True


class ProgramForm(PageForm):
    rate_ug_per_day: Text = ""
    steps: Text = ""
    phase: Text = ""
    confirm: Text = ""
    reason: Text = ""
    action: Text = "review"  # review: old and new with every check; send: to the pump
    review_token: Text = ""  # the token of the review shown (H32: what you review you send)

    def values(self) -> dict[str, str]:
        # the token is the page's, from the review it shows: never echoed back from the form
        return {k: v for k, v in super().values().items() if k != "review_token"}

    def to_request(self) -> services.ProgramRequest:
        return services.ProgramRequest(
            program_from_form(self.rate_ug_per_day, self.steps),
            self.confirm == "yes",
            _reason(self.reason),
            self._phase(),
            services.check_review_token(self.review_token),
        )

    def _phase(self) -> Phase | None:
        if not self.phase:
            return None
        try:
            return Phase(self.phase)
        except ValueError:
            raise InputError("phase", "allowed titration or maintenance") from None


class RefillForm(PageForm):
    withdrawn_ml: Text = ""
    filled_ml: Text = ""
    concentration_ug_per_ml: Text = ""
    acknowledge_discrepancy: Text = ""
    discrepancy_note: Text = ""
    confirm_concentration_change: Text = ""

    def values(self) -> dict[str, str]:
        # the acknowledgement and the confirmation are ticked again each time, never carried
        ticked = ("acknowledge_discrepancy", "confirm_concentration_change")
        return {k: v for k, v in super().values().items() if k not in ticked}

    def to_input(self) -> services.RefillInput:
        return services.RefillInput(
            number(self.withdrawn_ml, "withdrawn_ml", "mL"),
            number(self.filled_ml, "filled_ml", "mL"),
            number(self.concentration_ug_per_ml, "concentration_ug_per_ml", "µg/mL"),
            acknowledge_discrepancy=self.acknowledged,
            discrepancy_note=self.note,
            confirm_concentration_change=self.confirm_concentration_change == "yes",
        )

    @property
    def acknowledged(self) -> bool:
        return self.acknowledge_discrepancy == "yes"

    @property
    def note(self) -> str:
        return self.discrepancy_note[: services.REASON_MAX_CHARS]


class ScreeningForm(PageForm):
    """Hourly fields ``mas_0`` (baseline) to ``mas_8``; blank hours are not scored."""

    dose_ug: Text = ""
    mas_0: Text = ""
    mas_1: Text = ""
    mas_2: Text = ""
    mas_3: Text = ""
    mas_4: Text = ""
    mas_5: Text = ""
    mas_6: Text = ""
    mas_7: Text = ""
    mas_8: Text = ""
    given_at: Text = ""
    notes: Text = ""

    def dose(self) -> float:
        return number(self.dose_ug, "dose_ug", "µg")

    def scores(self) -> dict[int, float]:
        """MAS by whole hour after the bolus, for the hours scored."""
        typed = {hour: str(getattr(self, f"mas_{hour}")) for hour in SCORE_HOURS}
        return {
            hour: number(text, f"scores[{hour}]", "MAS points (0 to 5)")
            for hour, text in typed.items()
            if text.strip()
        }

    def bolus_at(self) -> datetime | None:
        return local_datetime(self.given_at, "given_at")

    def clipped_notes(self) -> str:
        return self.notes[:NOTES_MAX_CHARS]
