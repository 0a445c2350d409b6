"""``itb pk``: what a bolus or a pump scenario does to CSF baclofen and to spasticity.

An adapter: the numbers come from itb.pharmacology; this module reads files, prints and plots.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from itb.pharmacology.bolus import bolus_course
from itb.pharmacology.exact import DosingError, Propagator, pieces_from_segments, predict
from itb.pharmacology.model import (
    EFFECT,
    RESPONSE_THRESHOLD_MAS,
    ParameterError,
    csf_ug_per_ml,
    effect_mas,
    predicted_mas,
    typical_patient,
)
from itb.pharmacology.withdrawal import (
    DEFAULT_WITHDRAWAL_FRACTION,
    time_below_threshold_h,
    withdrawal_risk_time_h,
    withdrawal_threshold,
)
from itb.units import HOURS_PER_DAY, SECONDS_PER_DAY, SECONDS_PER_HOUR

app = typer.Typer(
    name="pk",
    help="Baclofen in the spinal fluid and its effect (typical patient). Not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)  # plain: Rich would wrap long paths
    raise typer.Exit(2)


def _num(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


@app.command()
def bolus(
    dose_ug: float = typer.Option(
        ..., "--dose-ug", help="Bolus dose in µg (screening: 50, 75, 100)."
    ),
    hours: float = typer.Option(24.0, "--hours", help="Hours to show after the bolus."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a PNG of concentration and effect."
    ),
) -> None:
    """Onset, peak, duration and hourly course of one intrathecal bolus."""
    patient = typical_patient()
    try:
        course = bolus_course(patient, dose_ug, horizon_h=max(hours, 48.0))
    except (DosingError, ParameterError) as err:
        _fail(str(err))
        return
    hourly = [i for i, t in enumerate(course.t_h) if abs(t - round(t)) < 1e-9 and t <= hours]
    series = [
        {
            "t_h": float(course.t_h[i]),
            "csf_ug_per_ml": round(float(course.csf_ug_per_ml[0, i]), 6),
            "effect": round(float(course.effect_mas[0, i]), 6),
        }
        for i in hourly
    ]
    summary: dict[str, Any] = {
        "dose_ug": dose_ug,
        "onset_h": _num(course.onset_h[0]),
        "peak_h": _num(course.peak_h[0]),
        "duration_h": _num(course.duration_h[0]),
        "peak_effect": _num(course.peak_effect_mas[0]),
        "effect_unit": "fall of the Modified Ashworth Score (points, 0-5 coding)",
        "response_threshold": RESPONSE_THRESHOLD_MAS,
        "series": series,
    }
    if plot is not None:
        from itb.cli.pk_plots import Marker, plot_course

        keep = course.t_h <= hours
        markers = [Marker(0.0, f"bolus {dose_ug:g} µg", "tab:blue")]
        if math.isfinite(course.onset_h[0]):
            markers.append(Marker(float(course.onset_h[0]), "onset", "tab:green"))
            markers.append(Marker(float(course.offset_h[0]), "effect ends", "tab:orange"))
        plot_course(
            plot,
            course.t_h[keep],
            course.csf_ug_per_ml[0, keep],
            predicted_mas(course.effect_mas, patient)[0, keep],
            float(patient.baseline_mas[0]),
            RESPONSE_THRESHOLD_MAS,
            f"Intrathecal bolus {dose_ug:g} µg, typical patient",
            markers,
        )
        summary["plot"] = str(plot)
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"[bold]Bolus {dose_ug:g} µg[/bold] (typical patient; effect = fall of the MAS)")
    onset = summary["onset_h"]
    console.print(
        f"onset {onset if onset is not None else 'none'} h, peak {summary['peak_h']} h, "
        f"duration {summary['duration_h']:.1f} h above a fall of {RESPONSE_THRESHOLD_MAS:g}, "
        f"peak effect {summary['peak_effect']:.2f} MAS points"
    )
    table = Table("hour", "CSF µg/mL", "MAS fall")
    for row in series:
        table.add_row(f"{row['t_h']:g}", f"{row['csf_ug_per_ml']:.3f}", f"{row['effect']:.2f}")
    console.print(table)
    if plot is not None:
        console.print(f"plot written to {plot}")


@app.command()
def program(
    scenario_path: Path = typer.Argument(..., help="Scenario TOML (as for `itb pump simulate`)."),
    days: float | None = typer.Option(None, "--days", help="Days to simulate (default: scenario)."),
    fraction: float = typer.Option(
        DEFAULT_WITHDRAWAL_FRACTION,
        "--withdrawal-fraction",
        help="Loss of the maintenance effect that marks withdrawal risk (0-1).",
    ),
    from_zero: bool = typer.Option(
        False, "--from-zero", help="Start with no drug (new implant) instead of steady state."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a PNG of concentration and effect."
    ),
) -> None:
    """Hour-by-hour CSF level and effect of a pump scenario, with withdrawal risk after stops."""
    from itb.scenario import load_scenario
    from itb.scenario.runner import simulate
    from itb.therapy import from_pump_s, to_pump_s

    if days is not None and not (math.isfinite(days) and 0.0 < days <= 3660.0):
        _fail(f"--days={days}: allowed more than 0 up to 3660 days")
    try:
        scenario = load_scenario(scenario_path)
        result = simulate(scenario, None if days is None else days * SECONDS_PER_DAY)
        patient = typical_patient()
        maintenance_ug_per_h = scenario.compiled_program().mean_daily_dose_ug() / HOURS_PER_DAY
        threshold = withdrawal_threshold(patient, maintenance_ug_per_h, fraction)
    except (ValueError, DosingError, ParameterError) as err:
        _fail(str(err))
        return
    origin_s = to_pump_s(result.start)
    pieces = pieces_from_segments(result.received_segments, origin_s)
    total_h = (to_pump_s(result.end) - origin_s) / SECONDS_PER_HOUR
    initial = None if from_zero else Propagator(patient).steady_state(maintenance_ug_per_h)
    times = np.arange(0.0, total_h + 1e-9, 1.0)
    states = predict(patient, pieces, [], times, initial_state=initial, t0_h=0.0)
    csf = csf_ug_per_ml(states, patient)[0]
    effect = effect_mas(states[..., EFFECT], patient)[0]

    stops: list[dict[str, Any]] = []
    for stop_s, kind in result.delivery_stops:
        t_stop_h = (stop_s - origin_s) / SECONDS_PER_HOUR
        at_stop = predict(patient, pieces, [], [t_stop_h], initial_state=initial, t0_h=0.0)[:, 0]
        risk_h = float(withdrawal_risk_time_h(patient, at_stop, maintenance_ug_per_h, fraction)[0])
        stops.append(
            {
                "kind": kind,
                "at": from_pump_s(stop_s).isoformat(),
                "t_h": round(t_stop_h, 6),
                "withdrawal_risk_after_h": _num(risk_h),
                "withdrawal_risk_at": (
                    from_pump_s(stop_s + risk_h * SECONDS_PER_HOUR).isoformat()
                    if math.isfinite(risk_h)
                    else None
                ),
            }
        )
    below_h = (
        float(time_below_threshold_h(patient, pieces, maintenance_ug_per_h, fraction, initial)[0])
        if pieces
        else 0.0
    )
    summary: dict[str, Any] = {
        "scenario": str(scenario_path),
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "maintenance_ug_per_day": round(maintenance_ug_per_h * HOURS_PER_DAY, 6),
        "maintenance_effect": _num(threshold.maintenance_effect_mas[0]),
        "withdrawal_threshold_effect": _num(threshold.threshold_effect_mas[0]),
        "withdrawal_fraction": fraction,
        "hours_below_withdrawal_threshold": round(below_h, 6),
        "delivery_stops": stops,
        "series": [
            {"t_h": float(t), "csf_ug_per_ml": round(float(c), 6), "effect": round(float(e), 6)}
            for t, c, e in zip(times, csf, effect, strict=True)
        ],
    }
    if plot is not None:
        from itb.cli.pk_plots import Marker, plot_course
        from itb.pharmacology.model import ce_for_effect

        markers = []
        for stop in stops:
            markers.append(Marker(float(stop["t_h"]), f"{stop['kind']}", "tab:red"))
            if stop["withdrawal_risk_after_h"] is not None:
                markers.append(
                    Marker(
                        float(stop["t_h"]) + stop["withdrawal_risk_after_h"],
                        "withdrawal risk",
                        "darkred",
                    )
                )
        baseline = float(patient.baseline_mas[0])
        plot_course(
            plot,
            times,
            csf,
            predicted_mas(effect[None, :], patient)[0],
            baseline,
            RESPONSE_THRESHOLD_MAS,
            f"{scenario_path.name}: typical patient, "
            f"{maintenance_ug_per_h * HOURS_PER_DAY:g} µg/day maintenance",
            markers,
            withdrawal_mas=baseline - float(threshold.threshold_effect_mas[0]),
            effective_csf_ug_per_ml=float(ce_for_effect(RESPONSE_THRESHOLD_MAS, patient)[0]),
        )
        summary["plot"] = str(plot)
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"[bold]{scenario_path.name}[/bold]: {result.start:%Y-%m-%d %H:%M} to "
        f"{result.end:%Y-%m-%d %H:%M}, maintenance {summary['maintenance_ug_per_day']:g} µg/day, "
        f"maintenance effect {threshold.maintenance_effect_mas[0]:.2f} MAS points"
    )
    for stop in stops:
        risk = stop["withdrawal_risk_after_h"]
        console.print(
            f"[red]{stop['kind']}[/red] at {stop['at']}: withdrawal risk "
            + (f"after {risk:.1f} h ({stop['withdrawal_risk_at']})" if risk is not None else "none")
        )
    console.print(f"hours below the withdrawal threshold: {below_h:.1f}")
    table = Table("time", "CSF µg/mL", "MAS fall")
    step = 1 if times.size <= 48 else 6
    for t, c, e in list(zip(times, csf, effect, strict=True))[::step]:
        when = from_pump_s(origin_s + t * SECONDS_PER_HOUR)
        table.add_row(f"{when:%Y-%m-%d %H:%M}", f"{c:.3f}", f"{e:.2f}")
    console.print(table)
    if plot is not None:
        console.print(f"plot written to {plot}")
