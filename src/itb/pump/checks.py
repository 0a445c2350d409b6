"""The firmware's refusals: ``CommandRejected`` and the device and drug rules it refuses with.

Every rule has one home elsewhere (the drug library's concentrations in ``itb.drugs``, fill and
low-reservoir alarm on the pump model in ``itb.pump.hardware``, limits in ``itb.guardrails``).
Here each is asked and its error re-raised as :class:`CommandRejected` naming the same field, so
that a refused pump command always has one type, whatever rule refused it.
"""

from __future__ import annotations

from itb import guardrails
from itb.drugs import BACLOFEN, UnknownDrugError
from itb.errors import InputError
from itb.guardrails import LimitError
from itb.pump.hardware import PumpModel
from itb.therapy import Program
from itb.units import SECONDS_PER_DAY

# A rate within this share of a model's flow limit is at the limit (float noise of compiling).
_FLOW_SLACK = 1e-9


class CommandRejected(InputError):
    """A command the pump refused. It changed nothing; ``field`` and ``reason`` say why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)

    def __reduce__(self) -> tuple[type[CommandRejected], tuple[str, str]]:
        return (CommandRejected, (self.field, self.reason))  # picklable across processes


def guard(limit: guardrails.Guardrail, value: float | None, name: str) -> None:
    """``value`` within the guardrail's absolute range, or a refusal naming ``name``."""
    if value is None:
        raise CommandRejected(name, "is required")
    try:
        limit.check(value, name)
    except LimitError as err:
        raise CommandRejected(name, str(err)) from None


def check_concentration(concentration_ug_per_ml: float) -> None:
    try:
        BACLOFEN.check_concentration(concentration_ug_per_ml)
    except UnknownDrugError as err:
        raise CommandRejected(err.field, str(err)) from None


def check_fill(model: PumpModel, volume_ml: float) -> None:
    try:
        model.check_fill(volume_ml)
    except InputError as err:
        raise CommandRejected(err.field, err.reason) from None


def check_low_reservoir_alarm(model: PumpModel, volume_ml: float) -> None:
    try:
        model.check_low_reservoir_alarm(volume_ml)
    except LimitError as err:
        raise CommandRejected(err.field, str(err)) from None
    except InputError as err:
        raise CommandRejected(err.field, err.reason) from None


def check_program(model: PumpModel, program: Program, concentration_ug_per_ml: float) -> None:
    """The daily dose within its limit and every rate within what the model can pump."""
    try:
        guardrails.DAILY_DOSE.check(program.daily_dose_ug())
    except LimitError as err:
        raise CommandRejected(err.field, str(err)) from None
    ml_per_day_per_ug_per_s = SECONDS_PER_DAY / concentration_ug_per_ml
    top = program.profile.max_rate_ug_per_s * ml_per_day_per_ug_per_s
    low = program.profile.min_rate_ug_per_s * ml_per_day_per_ug_per_s
    if top > model.max_flow_ml_per_day * (1 + _FLOW_SLACK):
        raise CommandRejected(
            "program",
            f"needs {top:.4g} mL/day at {concentration_ug_per_ml:g} µg/mL; "
            f"{model.name} delivers {model.min_flow_ml_per_day:g} to "
            f"{model.max_flow_ml_per_day:g} mL/day",
        )
    if low < model.min_flow_ml_per_day * (1 - _FLOW_SLACK):
        raise CommandRejected(
            "program",
            f"a rate of {low:.4g} mL/day at {concentration_ug_per_ml:g} µg/mL is below "
            f"the {model.name} minimum of {model.min_flow_ml_per_day:g} mL/day "
            f"(allowed {model.min_flow_ml_per_day:g} to {model.max_flow_ml_per_day:g})",
        )


def check_rolling_24h(total_ug: float) -> None:
    """The largest 24 h window total (delivered, this dose, the basal to come) within its limit."""
    limit = guardrails.ROLLING_24H_DOSE
    if total_ug > limit.absolute_max:
        raise CommandRejected(
            "rolling_24h_dose_ug",
            f"{total_ug:.1f} µg in a 24 h window (delivered, this dose and the programmed basal "
            f"to come) would exceed the maximum of {limit.absolute_max:g} µg",
        )
