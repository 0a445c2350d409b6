"""``itb pump``: the hardware models and single-pump simulation."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from itb.pump.hardware import MODELS
from itb.pump.simulate import simulate
from itb.scenario import ScenarioError, load_scenario
from itb.units import UnitError, parse_duration_s

app = typer.Typer(help="The implanted pump: hardware models, simulation.", no_args_is_help=True)
console = Console()


def fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
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
    table = Table(title="Pump models")
    for column in (
        "name",
        "kind",
        "reservoir (mL)",
        "quantum (µL)",
        "flow (mL/day)",
        "accuracy",
        "battery (mAh)",
        "ERI at 0.5 mL/day (years)",
    ):
        table.add_column(column)
    for name, m in MODELS.items():
        table.add_row(
            name,
            m.kind.value,
            f"{m.reservoir_ml:g}",
            f"{m.quantum_ul:g}",
            f"{m.min_flow_ml_per_day:g} to {m.max_flow_ml_per_day:g}",
            f"±{m.flow_accuracy_fraction * 100:g}%",
            f"{m.battery_capacity_mah:g}",
            f"{m.years_to_eri(0.5):.2f}",
        )
    console.print(table)


@app.command("simulate")
def simulate_command(
    scenario_file: Path = typer.Argument(..., help="Scenario TOML (docs/scenario.md)."),
    until: str | None = typer.Option(None, help="How long from the start: 12h, 30d, 8y."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run one pump through a scenario and report delivery, alarms and its event log."""
    try:
        scenario = load_scenario(scenario_file)
        until_s = parse_duration_s(until) if until is not None else None
    except (ScenarioError, UnitError) as err:
        raise fail(str(err)) from None
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
