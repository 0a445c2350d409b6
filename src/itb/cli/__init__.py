"""The ``itb`` command: one sub-command group per area (adapters only; rules live in the core)."""

from __future__ import annotations

import typer

from itb.cli import clinic, pk, programmer, pump, refill, screening, sim
from itb.cli.guard import GuardedGroup

app = typer.Typer(
    name="itb",
    help="OpenITB: intrathecal baclofen pump therapy, simulated. Not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=GuardedGroup,  # no traceback reaches a user: one line and a non-zero exit
)
app.add_typer(pump.app, name="pump")
app.add_typer(pk.app, name="pk")
app.add_typer(refill.app, name="refill")
app.add_typer(programmer.app, name="programmer")
app.add_typer(screening.app, name="screening")
app.add_typer(sim.app, name="sim")
app.add_typer(clinic.user_app, name="user")
app.command("serve")(clinic.serve)


def main() -> None:  # pragma: no cover - the console script
    app()
