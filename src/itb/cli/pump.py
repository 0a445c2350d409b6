"""``itb pump``: the hardware models, single-pump simulation, and a pump as a process.

``init``, ``pair`` and ``serve`` manage one simulated pump in a state directory
(docs/pump-process.md): create it from a scenario, pair a programmer's key, run it on TCP.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from itb.cli.decimal_options import ML, UG_PER_DAY, UG_PER_ML
from itb.cli.lazy import lazy_console
from itb.cli.text_table import fitted_lines
from itb.pump.hardware import MODELS
from itb.units import UnitError, parse_duration_s

# The scenario, firmware, key and telemetry modules, and Rich, are imported by the commands that
# use them: `itb pump models` answers at once, in plain text (issue 13).

app = typer.Typer(help="The implanted pump: hardware models, simulation.", no_args_is_help=True)
console = lazy_console()


def fail(message: str) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    # one line whatever the width (soft_wrap), the message as written (escape)
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"[red]error:[/red] {escape(message)}"
    )
    return typer.Exit(code=2)


@app.command("models")
def models(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the pump hardware models."""
    if as_json:
        rows = {
            name: {
                "kind": m.kind.value,
                "reservoir_ml": m.reservoir_ml,
                "quantum_ul": m.quantum_ul,
                "min_flow_ml_per_day": m.min_flow_ml_per_day,
                "max_flow_ml_per_day": m.max_flow_ml_per_day,
                "flow_accuracy_fraction": m.flow_accuracy_fraction,
                "battery_capacity_mah": m.battery_capacity_mah,
                "years_to_eri_at_0_5_ml_per_day": round(m.years_to_eri(0.5), 2),
            }
            for name, m in MODELS.items()
        }
        print(json.dumps({"models": rows}))
        return
    # a model's name is what the other commands ask for: never cut or wrapped (blocks if narrow)
    print("\n".join(fitted_lines("Pump models", _MODEL_COLUMNS, _model_rows())))


def _model_rows() -> list[tuple[str, ...]]:
    return [
        (
            name,
            m.kind.value,
            f"{m.reservoir_ml:g} mL",
            f"{m.quantum_ul:g} µL",
            f"{m.min_flow_ml_per_day:g} to {m.max_flow_ml_per_day:g} mL/day",
            f"±{m.flow_accuracy_fraction * 100:g}%",
            f"{m.battery_capacity_mah:g} mAh",
            f"{m.years_to_eri(0.5):.2f} years",
        )
        for name, m in MODELS.items()
    ]


_MODEL_COLUMNS = (
    "name", "kind", "reservoir", "quantum", "flow", "accuracy", "battery",
    "ERI at 0.5 mL/day",
)  # fmt: skip


@app.command("simulate")
def simulate_command(
    scenario_file: Path = typer.Argument(..., help="Scenario TOML (docs/scenario.md)."),
    until: str | None = typer.Option(None, help="How long from the start: 12h, 30d, 8y."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run one pump through a scenario and report delivery, alarms and its event log."""
    from rich.table import Table

    from itb.scenario.format import ScenarioError, load_scenario
    from itb.scenario.runner import simulate

    try:
        scenario = load_scenario(scenario_file)
        until_s = parse_duration_s(until) if until is not None else None
    except (ScenarioError, UnitError) as err:
        raise fail(str(err)) from None
    if until is not None and until_s is not None:
        _check_until(scenario.pump.start, until, until_s)
    result = simulate(scenario, until_s)
    out = result.to_dict()
    if as_json:
        print(json.dumps(out))
        return
    table = Table(
        title=f"{scenario.pump.model} {scenario.pump.serial}: {out['start']} to {out['end']}"
    )
    table.add_column("seq", justify="right")
    table.add_column("time")
    table.add_column("event")
    table.add_column("details")
    for e in result.firmware.log.entries():
        details = ", ".join(f"{k}={v}" for k, v in e.data.items())
        style = "red" if e.data.get("priority") == "critical" else None
        table.add_row(str(e.seq), e.at.isoformat(sep=" "), e.kind, details, style=style)
    console.print(table)
    for r in result.rejected:
        console.print(
            f"[yellow]refused[/yellow] {r['at']} {r['action']}: {r['field']}: {r['reason']}"
        )
    console.print(
        f"delivered {out['delivered_ug']:.1f} µg ({out['delivered_ml']:.3f} mL), "
        f"received {out['received_ug']:.1f} µg, reservoir {out['reservoir_ml']:.3f} mL at the end"
    )


def _check_until(start: datetime, until: str, until_s: float) -> None:
    """The simulated span must end on a date the calendar can hold (year 9999 at most)."""
    try:
        start + timedelta(seconds=until_s)
    except OverflowError:
        span_y = (datetime.max - start).days // 366
        raise fail(f"--until={until}: allowed up to about {span_y}y from the start") from None


# The pump as a process ------------------------------------------------------------------------
def _scenario_data(
    scenario_file: Path | None,
    overrides: dict[str, dict[str, Any]],
    rate_ug_per_day: float | None,
) -> dict[str, Any]:
    import tomllib

    from itb.scenario.format import ScenarioError

    data: dict[str, Any] = {}
    if scenario_file is not None:
        try:
            data = tomllib.loads(scenario_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScenarioError(f"{scenario_file}: no such scenario file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ScenarioError(f"{scenario_file}: not valid TOML: {err}") from None
    for section, values in overrides.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            current = data.get(section)
            data[section] = {**(current if isinstance(current, dict) else {}), **given}
    if rate_ug_per_day is not None:  # replaces the scenario's whole program
        data["program"] = {"rate_ug_per_day": rate_ug_per_day}
    if scenario_file is None:
        data.setdefault("pump", {}).setdefault("start", datetime.now().replace(microsecond=0))
        for section, key, flag in (
            ("drug", "concentration_ug_per_ml", "--concentration-ug-per-ml"),
            ("drug", "volume_ml", "--volume-ml"),
            ("program", "rate_ug_per_day", "--rate-ug-per-day"),
        ):
            if key not in data.get(section, {}):
                raise ScenarioError(f"{section}.{key}: required ({flag}) without --scenario")
    return data


@app.command("init")
def init_command(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    state: Path = typer.Option(..., "--state", help="The pump's state directory (created)."),
    scenario_file: Path | None = typer.Option(
        None, "--scenario", help="Scenario TOML: its [pump], [drug], [program], [patient_bolus]."
    ),
    model: str | None = typer.Option(None, "--model", help="Pump model (overrides the scenario)."),
    start: str | None = typer.Option(
        None, "--start", help="Implant time on the pump clock, 2027-01-04T08:00:00 (default now)."
    ),
    serial: str | None = typer.Option(None, "--serial", help="Serial number."),
    concentration_ug_per_ml: float | None = typer.Option(
        None,
        "--concentration-ug-per-ml",
        parser=UG_PER_ML,
        help="Baclofen concentration filled, µg/mL.",
    ),
    volume_ml: float | None = typer.Option(
        None, "--volume-ml", parser=ML, help="Volume filled, mL."
    ),
    rate_ug_per_day: float | None = typer.Option(
        None, "--rate-ug-per-day", parser=UG_PER_DAY, help="Simple continuous program, µg/day."
    ),
) -> None:
    """Create a pump's memory image and key pair from a scenario (or flags)."""
    from itb.link.keys import KeyFileError
    from itb.pump.firmware import CommandRejected
    from itb.pumpd.state import StateDir, StateError
    from itb.scenario.format import ScenarioError, parse_scenario

    overrides: dict[str, dict[str, Any]] = {
        "pump": {"model": model, "start": start, "serial": serial},
        "drug": {"concentration_ug_per_ml": concentration_ug_per_ml, "volume_ml": volume_ml},
    }
    try:
        data = _scenario_data(scenario_file, overrides, rate_ug_per_day)
        scenario = parse_scenario(data)
        firmware = scenario.build_firmware()
        public_path = StateDir(state).create(firmware)
    except (ScenarioError, StateError, CommandRejected, KeyFileError, OSError) as err:
        raise fail(str(err)) from None
    if scenario.events:
        lazy_console(stderr=True, highlight=False).print(
            f"note: the scenario's {len(scenario.events)} [[events]] are not applied: a served "
            "pump is driven by its programmer",
            markup=False,
        )
    status = firmware.status()
    console.print(
        f"pump {status.serial} ({status.model}) created in {state}: "
        f"{status.reservoir_ml:g} mL of {status.concentration_ug_per_ml:g} µg/mL, "
        f"{status.daily_dose_ug:g} µg/day, clock {status.now.isoformat()}; key {public_path}"
    )


@app.command("pair")
def pair_command(
    state: Path = typer.Option(..., "--state", help="The pump's state directory."),
    programmer: Path = typer.Option(..., "--programmer", help="The programmer's .pub key file."),
    role: str = typer.Option(..., "--role", help="clinician or patient."),
    label: str = typer.Option("", "--label", help="A name for this programmer in the pump's log."),
) -> None:
    """Record a programmer's key with its role in the pump (proximity step: pump not served)."""
    from itb.link.keys import KeyFileError, KeyOwner, load_public_key
    from itb.pumpd.state import StateDir, StateError
    from itb.telemetry.endpoint import Role, key_id_of

    try:
        role_value = Role(role)
    except ValueError:
        raise fail(f"role={role!r}: allowed clinician or patient") from None
    if len(label) > 64:
        raise fail(f"label: {len(label)} characters; allowed up to 64")
    pump = StateDir(state)
    try:
        public_key = load_public_key(programmer, KeyOwner.PROGRAMMER)
        with pump.locked():
            entry = pump.pair(public_key, role_value, label)
            pump_pub = pump.write_pump_public_key()
    except (StateError, KeyFileError, OSError) as err:
        raise fail(str(err)) from None
    console.print(
        f"paired {entry.key_id} as {entry.role.value}; the pump's public key is in {pump_pub} "
        f"({key_id_of(load_public_key(pump_pub, KeyOwner.PUMP))})"
    )


def parse_host_port(text: str, field: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{field}={text!r}: expected HOST:PORT, port 0 to 65535")
    return host.strip("[]"), int(port_text)


@app.command("serve")
def serve_command(
    state: Path = typer.Option(..., "--state", help="The pump's state directory."),
    listen: str = typer.Option("127.0.0.1:0", "--listen", help="HOST:PORT (port 0: any free)."),
    speed: float = typer.Option(
        1.0, "--speed", help="Pump seconds per wall second (3600: an hour a second)."
    ),
) -> None:
    """Run the pump: resume from its memory image and serve the telemetry link on TCP.

    Prints "itb pump listening on HOST:PORT" when ready. Survives SIGKILL at any moment: on
    restart the pump time resumes from the wall clock, so delivery covers the time it was down.
    A settings bank or allow-list copy that fails its check is kept aside (``<file>.corrupt-<n>``)
    and named in one warning line on stderr before the pump serves.
    """
    from itb.link.keys import KeyFileError
    from itb.pumpd.clock import ClockError, check_speed
    from itb.pumpd.server import run_pump
    from itb.pumpd.state import StateDir, StateError

    try:
        host, port = parse_host_port(listen, "listen")
        check_speed(speed)
        pump = StateDir(state)
        pump.identity()  # a missing or non-pump directory is named as such, not as --listen
        with pump.locked():
            warning = pump.keep_corrupt_copies().warning()
    except (StateError, KeyFileError, ClockError, ValueError) as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"state={state}: {err.strerror or err}") from None
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    try:
        run_pump(pump, host, port, speed)
    except (StateError, KeyFileError, ClockError, ValueError) as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"listen={listen}: {err.strerror or err}") from None
    sys.stdout.flush()
