"""The ``itb`` command: one sub-command group per area (adapters only; rules live in the core).

A group's module is imported only when the group is named (``itb.cli.lazy``): ``itb --help``
lists them all from the table below. Adding a group is one line here.
"""

from __future__ import annotations

from typing import ClassVar

import typer

from itb.cli.lazy import Lazy, LazyGroup


class ItbGroup(LazyGroup):
    """The ``itb`` group: name -> where the sub-command lives and its help, in this order."""

    table: ClassVar[dict[str, Lazy]] = {
        "pump": Lazy("itb.cli.pump:app", "The implanted pump: hardware models, simulation."),
        "pk": Lazy("itb.cli.pk:app", "Baclofen in the spinal fluid and its effect."),
        "refill": Lazy(
            "itb.cli.refill:app", "Refill, concentration-change and priming calculators."
        ),
        "programmer": Lazy(
            "itb.cli.programmer:app", "The programmer: talk to a pump by telemetry."
        ),
        "screening": Lazy("itb.cli.screening:app", "Screening trial: MAS after a trial bolus."),
        "sim": Lazy("itb.cli.sim:app", "Cohort simulator: many patients and pumps over years."),
        "user": Lazy("itb.cli.clinic:user_app", "Clinic user accounts."),
        "serve": Lazy("itb.cli.clinic:serve", "Serve the clinic web app."),
        "clinic": Lazy("itb.cli.clinic:clinic_app", "The clinic's records: FHIR export, calendar."),
        "remote": Lazy(
            "itb.cli.remote:app", "The family's patient remote: status, extra dose, local page."
        ),
    }


app = typer.Typer(
    name="itb",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help: Rich's help renderer alone costs more than the 10x-a-bare-start budget
    rich_markup_mode=None,
    cls=ItbGroup,  # no traceback reaches a user: one line and a non-zero exit
)


@app.callback()
def itb() -> None:
    """OpenITB: intrathecal baclofen pump therapy, simulated. Not a medical device."""


def main() -> None:  # pragma: no cover - the console script
    app()
