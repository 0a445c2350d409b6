"""The ``itb`` command: one sub-command group per area (adapters only; rules live in the core)."""

from __future__ import annotations

import typer

from itb.cli import pump, refill

app = typer.Typer(
    name="itb",
    help="OpenITB: intrathecal baclofen pump therapy, simulated. Not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(pump.app, name="pump")
app.add_typer(refill.app, name="refill")


def main() -> None:  # pragma: no cover - the console script
    app()
