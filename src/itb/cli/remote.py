"""``itb remote``: the family's patient remote (status, bolus, a local web page).

The remote is a programmer paired with the pump in the *patient* role (``itb pump pair --role
patient``): it reads the pump and asks for the patient bolus the physician allowed, over the
same encrypted link as ``itb programmer``. Everything it says is in a family's words
(itb.remote.words). Exit codes: 0 done; 1 not given (the pump or the remote said no: nothing
delivered); 2 bad input; 3 no answer (may have started: do not ask again); 4 the pump could
not be reached or does not know this remote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from itb.errors import InputError

if TYPE_CHECKING:
    from itb.remote.session import Remote, RemoteAnswer

app = typer.Typer(
    help="The family's patient remote: read the pump, give an extra dose within the "
    "physician's limits, or serve a local page for a browser.",
    no_args_is_help=True,
)

PumpOpt = typer.Option(..., "--pump", help="The pump's HOST:PORT.")
KeyOpt = typer.Option(..., "--key", help="This remote's private key (paired as patient).")
PumpKeyOpt = typer.Option(..., "--pump-key", help="The pump's public key (pump.pub).")
JsonOpt = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")
TimeoutOpt = typer.Option(2.0, "--timeout-s", help="Wait for each answer, seconds.")

EXIT_OF_OUTCOME = {
    "done": 0, "rejected": 1, "refused": 1, "not_sent": 1, "uncertain": 3,
    "unreachable": 4, "not_paired": 4,
}  # fmt: skip


def _remote(pump: str, key: Path, pump_key: Path, timeout_s: float, as_json: bool) -> Remote:
    # imported here: the link's keys and client pull in cryptography, which help never needs
    from itb.link.keys import KeyFileError
    from itb.remote.session import Remote, RemoteAnswer

    try:
        return Remote.from_files(pump, key, pump_key, timeout_s)
    except (InputError, KeyFileError, OSError, ValueError) as error:
        _say(as_json, RemoteAnswer("error", f"Nothing was sent: {error}."))
        raise typer.Exit(2) from None


def _say(as_json: bool, answer: RemoteAnswer) -> None:
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    status = answer.status
    for line in answer.settled:
        typer.echo(line)
    if status is not None:
        typer.echo(f"Pump {status.serial}, read {status.at:%Y-%m-%d %H:%M} (the pump's clock)")
        typer.echo(f"  {status.mode_words}")
        typer.echo(f"  {status.reservoir_words}")
        for alarm in status.alarms:
            typer.echo(f"  ALARM: {alarm.means} {alarm.do_now} {alarm.call} {alarm.emergency}")
        if not status.alarms:
            typer.echo("  No alarm.")
    if answer.outcome == "done":
        typer.echo(answer.words)
    else:
        typer.echo(answer.words, err=True)


def _finish(as_json: bool, answer: RemoteAnswer) -> None:
    _say(as_json, answer)
    code = EXIT_OF_OUTCOME.get(answer.outcome, 2)
    if code:
        raise typer.Exit(code)


@app.command("status")
def status(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read the pump: medicine left, alarms, when the next extra dose is possible."""
    from itb.remote.session import read_status

    _finish(as_json, read_status(_remote(pump, key, pump_key, timeout_s, as_json)))


@app.command("bolus")
def bolus(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Ask for one extra dose (the patient bolus the physician set); refused in words if not
    possible now."""
    from itb.remote.session import ask_bolus

    _finish(as_json, ask_bolus(_remote(pump, key, pump_key, timeout_s, as_json)))


@app.command("serve")
def serve(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    port: int = typer.Option(8765, "--port", min=1024, max=65535, help="Local port."),
    timeout_s: float = TimeoutOpt,
) -> None:
    """Serve the remote's page on http://127.0.0.1:PORT/ (this computer only)."""
    import uvicorn

    from itb.remote.web import create_remote_app

    remote = _remote(pump, key, pump_key, timeout_s, False)
    typer.echo(f"The pump remote is on http://127.0.0.1:{port}/ (this computer only)")
    app_ = create_remote_app(remote, port)
    uvicorn.run(app_, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
