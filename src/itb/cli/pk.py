"""``itb pk``: what a bolus or a pump scenario does to CSF baclofen and to spasticity.

An adapter: the numbers come from itb.pharmacology; this module reads files, prints and plots.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from itb.cli.decimal_options import UG
from itb.cli.lazy import lazy_console
from itb.cli.outputs import check_writable_file
from itb.drugs import BACLOFEN
from itb.pharmacology.thresholds import DEFAULT_WITHDRAWAL_FRACTION
from itb.units import HOURS_PER_DAY, SECONDS_PER_DAY, SECONDS_PER_HOUR

# The pharmacology (NumPy) and Rich are imported inside the commands that use them: either costs
# more than the whole budget of `itb pk --help` (issue 13).
if TYPE_CHECKING:
    from itb.pharmacology.bolus import BolusCourse
    from itb.pharmacology.exact import Piece
    from itb.pharmacology.model import FloatArray, Patients
    from itb.pharmacology.withdrawal import WithdrawalThreshold
    from itb.scenario.runner import SimulationResult


app = typer.Typer(
    name="pk",
    help="Baclofen in the spinal fluid and its effect (the typical patient, or a patient's own "
    "model fitted to a screening trial). Not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = lazy_console()
_SCREENING_DOSES = ", ".join(f"{d:g}" for d in BACLOFEN.screening_doses_ug)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)  # plain: Rich would wrap long paths
    raise typer.Exit(2)


def _num(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


@app.command()
def bolus(
    dose_ug: float = typer.Option(
        ..., "--dose-ug", parser=UG, help=f"Bolus dose in µg (screening: {_SCREENING_DOSES})."
    ),
    hours: float = typer.Option(24.0, "--hours", help="Hours to show after the bolus."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a PNG of concentration and effect."
    ),
) -> None:
    """Onset, peak, duration and hourly course of one intrathecal bolus."""
    from itb.pharmacology.bolus import bolus_course
    from itb.pharmacology.exact import DosingError
    from itb.pharmacology.model import ParameterError, typical_patient

    if plot is not None:
        check_writable_file(plot, "--plot")
    patient = typical_patient()
    try:
        course = bolus_course(patient, dose_ug, horizon_h=max(hours, 48.0))
    except (DosingError, ParameterError) as err:
        _fail(str(err))
        return
    summary = _bolus_summary(course, dose_ug, hours)
    if plot is not None:
        _plot_bolus(plot, course, patient, dose_ug, hours)
        summary["plot"] = str(plot)
    if as_json:
        print(json.dumps(summary))
        return
    _print_bolus(summary)
    if plot is not None:
        console.print(f"plot written to {plot}")


def _bolus_summary(course: BolusCourse, dose_ug: float, hours: float) -> dict[str, Any]:
    from itb.pharmacology.model import RESPONSE_THRESHOLD_MAS

    hourly = [i for i, t in enumerate(course.t_h) if abs(t - round(t)) < 1e-9 and t <= hours]
    return {
        "dose_ug": dose_ug,
        "onset_h": _num(course.onset_h[0]),
        "peak_h": _num(course.peak_h[0]),
        "duration_h": _num(course.duration_h[0]),
        "peak_effect": _num(course.peak_effect_mas[0]),
        "effect_unit": "fall of the Modified Ashworth Score (points, 0-5 coding)",
        "response_threshold": RESPONSE_THRESHOLD_MAS,
        "series": [
            {
                "t_h": float(course.t_h[i]),
                "csf_ug_per_ml": round(float(course.csf_ug_per_ml[0, i]), 6),
                "effect": round(float(course.effect_mas[0, i]), 6),
            }
            for i in hourly
        ],
    }


def _plot_bolus(
    plot: Path, course: BolusCourse, patient: Patients, dose_ug: float, hours: float
) -> None:
    from itb.cli.pk_plots import CoursePlot, Marker, plot_course
    from itb.pharmacology.model import RESPONSE_THRESHOLD_MAS, predicted_mas

    keep = course.t_h <= hours
    markers = [Marker(0.0, f"bolus {dose_ug:g} µg", "tab:blue")]
    if math.isfinite(course.onset_h[0]):
        markers.append(Marker(float(course.onset_h[0]), "onset", "tab:green"))
        markers.append(Marker(float(course.offset_h[0]), "effect ends", "tab:orange"))
    figure = CoursePlot(
        title=f"Intrathecal bolus {dose_ug:g} µg, typical patient",
        t_h=course.t_h[keep],
        csf_ug_per_ml=course.csf_ug_per_ml[0, keep],
        mas=predicted_mas(course.effect_mas, patient)[0, keep],
        baseline_mas=float(patient.baseline_mas[0]),
        response_fall_mas=RESPONSE_THRESHOLD_MAS,
        markers=markers,
    )
    plot_course(plot, figure)


def _print_bolus(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from itb.pharmacology.model import RESPONSE_THRESHOLD_MAS

    console.print(
        f"[bold]Bolus {summary['dose_ug']:g} µg[/bold] (typical patient; effect = fall of the MAS)"
    )
    onset = summary["onset_h"]
    console.print(
        f"onset {onset if onset is not None else 'none'} h, peak {summary['peak_h']} h, "
        f"duration {summary['duration_h']:.1f} h above a fall of {RESPONSE_THRESHOLD_MAS:g}, "
        f"peak effect {summary['peak_effect']:.2f} MAS points"
    )
    table = Table("hour", "CSF µg/mL", "MAS fall")
    for row in summary["series"]:
        table.add_row(f"{row['t_h']:g}", f"{row['csf_ug_per_ml']:.3f}", f"{row['effect']:.2f}")
    console.print(table)


MAX_DAYS = 3660.0  # ten years: the longest a scenario may be simulated here


@dataclass(frozen=True, slots=True)
class ScenarioCourse:
    """A simulated scenario, seen through a typical patient's pharmacology (hourly)."""

    result: SimulationResult
    patient: Patients
    maintenance_ug_per_h: float
    threshold: WithdrawalThreshold
    pieces: list[Piece]
    origin_s: float
    initial: FloatArray | None  # None: no drug at the start (a new implant)
    times_h: FloatArray
    csf_ug_per_ml: FloatArray
    effect_mas: FloatArray


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
    if days is not None and not (math.isfinite(days) and 0.0 < days <= MAX_DAYS):
        _fail(f"--days={days}: allowed more than 0 up to {MAX_DAYS:g} days")
    if plot is not None:
        check_writable_file(plot, "--plot")
    try:
        course = _scenario_course(scenario_path, days, fraction, from_zero)
    except ValueError as err:  # DosingError and ParameterError among them
        _fail(str(err))
        return
    stops = _delivery_stops(course, fraction)
    summary = _program_summary(course, scenario_path, fraction, stops)
    if plot is not None:
        _plot_program(plot, course, scenario_path, stops)
        summary["plot"] = str(plot)
    if as_json:
        print(json.dumps(summary))
        return
    _print_program(course, scenario_path, summary)
    if plot is not None:
        console.print(f"plot written to {plot}")


def _scenario_course(
    scenario_path: Path, days: float | None, fraction: float, from_zero: bool
) -> ScenarioCourse:
    import numpy as np

    from itb.pharmacology.exact import Propagator, pieces_from_segments, predict
    from itb.pharmacology.model import EFFECT, csf_ug_per_ml, effect_mas, typical_patient
    from itb.pharmacology.withdrawal import withdrawal_threshold
    from itb.scenario import load_scenario
    from itb.scenario.runner import simulate
    from itb.therapy import to_pump_s

    scenario = load_scenario(scenario_path)
    result = simulate(scenario, None if days is None else days * SECONDS_PER_DAY)
    patient = typical_patient()
    maintenance_ug_per_h = scenario.compiled_program().mean_daily_dose_ug() / HOURS_PER_DAY
    threshold = withdrawal_threshold(patient, maintenance_ug_per_h, fraction)
    origin_s = to_pump_s(result.start)
    pieces = pieces_from_segments(result.received_segments, origin_s)
    total_h = (to_pump_s(result.end) - origin_s) / SECONDS_PER_HOUR
    initial = None if from_zero else Propagator(patient).steady_state(maintenance_ug_per_h)
    times = np.arange(0.0, total_h + 1e-9, 1.0)
    states = predict(patient, pieces, [], times, initial_state=initial, t0_h=0.0)
    return ScenarioCourse(
        result=result,
        patient=patient,
        maintenance_ug_per_h=maintenance_ug_per_h,
        threshold=threshold,
        pieces=pieces,
        origin_s=origin_s,
        initial=initial,
        times_h=times,
        csf_ug_per_ml=csf_ug_per_ml(states, patient)[0],
        effect_mas=effect_mas(states[..., EFFECT], patient)[0],
    )


def _delivery_stops(course: ScenarioCourse, fraction: float) -> list[dict[str, Any]]:
    """Each stop of delivery (empty reservoir, pump stop...) and when withdrawal risk begins."""
    from itb.pharmacology.exact import predict
    from itb.pharmacology.withdrawal import withdrawal_risk_time_h
    from itb.therapy import from_pump_s

    patient, maintenance = course.patient, course.maintenance_ug_per_h
    stops: list[dict[str, Any]] = []
    for stop_s, kind in course.result.delivery_stops:
        t_stop_h = (stop_s - course.origin_s) / SECONDS_PER_HOUR
        at_stop = predict(
            patient, course.pieces, [], [t_stop_h], initial_state=course.initial, t0_h=0.0
        )[:, 0]
        risk_h = float(withdrawal_risk_time_h(patient, at_stop, maintenance, fraction)[0])
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
    return stops


def _program_summary(
    course: ScenarioCourse, scenario_path: Path, fraction: float, stops: list[dict[str, Any]]
) -> dict[str, Any]:
    from itb.pharmacology.withdrawal import time_below_threshold_h

    below_h = (
        float(
            time_below_threshold_h(
                course.patient, course.pieces, course.maintenance_ug_per_h, fraction, course.initial
            )[0]
        )
        if course.pieces
        else 0.0
    )
    series = zip(course.times_h, course.csf_ug_per_ml, course.effect_mas, strict=True)
    return {
        "scenario": str(scenario_path),
        "start": course.result.start.isoformat(),
        "end": course.result.end.isoformat(),
        "maintenance_ug_per_day": round(course.maintenance_ug_per_h * HOURS_PER_DAY, 6),
        "maintenance_effect": _num(course.threshold.maintenance_effect_mas[0]),
        "withdrawal_threshold_effect": _num(course.threshold.threshold_effect_mas[0]),
        "withdrawal_fraction": fraction,
        "hours_below_withdrawal_threshold": round(below_h, 6),
        "delivery_stops": stops,
        "series": [
            {"t_h": float(t), "csf_ug_per_ml": round(float(c), 6), "effect": round(float(e), 6)}
            for t, c, e in series
        ],
    }


def _plot_program(
    plot: Path, course: ScenarioCourse, scenario_path: Path, stops: list[dict[str, Any]]
) -> None:
    from itb.cli.pk_plots import CoursePlot, Marker, plot_course
    from itb.pharmacology.model import RESPONSE_THRESHOLD_MAS, ce_for_effect, predicted_mas

    markers = []
    for stop in stops:
        markers.append(Marker(float(stop["t_h"]), f"{stop['kind']}", "tab:red"))
        if stop["withdrawal_risk_after_h"] is not None:
            risk_t_h = float(stop["t_h"]) + stop["withdrawal_risk_after_h"]
            markers.append(Marker(risk_t_h, "withdrawal risk", "darkred"))
    patient = course.patient
    baseline = float(patient.baseline_mas[0])
    figure = CoursePlot(
        title=f"{scenario_path.name}: typical patient, "
        f"{course.maintenance_ug_per_h * HOURS_PER_DAY:g} µg/day maintenance",
        t_h=course.times_h,
        csf_ug_per_ml=course.csf_ug_per_ml,
        mas=predicted_mas(course.effect_mas[None, :], patient)[0],
        baseline_mas=baseline,
        response_fall_mas=RESPONSE_THRESHOLD_MAS,
        markers=markers,
        withdrawal_mas=baseline - float(course.threshold.threshold_effect_mas[0]),
        effective_csf_ug_per_ml=float(ce_for_effect(RESPONSE_THRESHOLD_MAS, patient)[0]),
    )
    plot_course(plot, figure)


def _print_program(course: ScenarioCourse, scenario_path: Path, summary: dict[str, Any]) -> None:
    from rich.table import Table

    from itb.therapy import from_pump_s

    result = course.result
    console.print(
        f"[bold]{scenario_path.name}[/bold]: {result.start:%Y-%m-%d %H:%M} to "
        f"{result.end:%Y-%m-%d %H:%M}, maintenance {summary['maintenance_ug_per_day']:g} µg/day, "
        f"maintenance effect {course.threshold.maintenance_effect_mas[0]:.2f} MAS points"
    )
    for stop in summary["delivery_stops"]:
        risk = stop["withdrawal_risk_after_h"]
        console.print(
            f"[red]{stop['kind']}[/red] at {stop['at']}: withdrawal risk "
            + (f"after {risk:.1f} h ({stop['withdrawal_risk_at']})" if risk is not None else "none")
        )
    console.print(
        f"hours below the withdrawal threshold: {summary['hours_below_withdrawal_threshold']:.1f}"
    )
    table = Table("time", "CSF µg/mL", "MAS fall")
    step = 1 if course.times_h.size <= 48 else 6
    rows = zip(course.times_h, course.csf_ug_per_ml, course.effect_mas, strict=True)
    for t, c, e in list(rows)[::step]:
        when = from_pump_s(course.origin_s + t * SECONDS_PER_HOUR)
        table.add_row(f"{when:%Y-%m-%d %H:%M}", f"{c:.3f}", f"{e:.2f}")
    console.print(table)


# itb pk fit / itb pk predict: each patient's own model (implementation in itb.cli.pk_fit) ------
@app.command()
def fit(
    trial_path: Path = typer.Argument(..., help="Screening trial TOML (docs/pharmacology.md)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws behind the intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (a fit file)."),
) -> None:
    """A patient's own model from a screening trial, with the starting dose (80% intervals)."""
    from itb.cli.pk_fit import fit_summary
    from itb.errors import InputError

    if not 0 <= seed < 2**63:
        _fail(f"--seed={seed}: allowed 0 to 2^63 - 1")
    try:
        summary = fit_summary(trial_path, seed)
    except InputError as err:
        _fail(str(err))
        return
    if as_json:
        print(json.dumps(summary))
        return
    _print_fit(summary)


def _print_fit(summary: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]{summary['note']}[/bold]")
    if summary["rms_error_mas"] is not None:
        console.print(f"observed against the fitted model: RMS {summary['rms_error_mas']:.2f} MAS")
    table = Table("parameter", "most probable", "80% interval")
    for name, value in summary["parameters"].items():
        table.add_row(name, f"{value['map']:.4g}", f"{value['low']:.4g} to {value['high']:.4g}")
    console.print(table)
    start = summary["starting_dose"]
    if start is None:
        console.print("no trial dose responded: no starting dose (S45 S46)")
        return
    low, high = start["interval_daily_dose_ug"]
    console.print(
        f"starting dose {start['daily_dose_ug']:g} µg/day (80% interval {low:g} to {high:g}): "
        f"{start['reason']}"
    )


@app.command("predict")
def predict_cmd(
    fit_path: Path = typer.Option(..., "--fit", help="Fit file written by `itb pk fit --json`."),
    program_path: Path = typer.Option(
        ..., "--program", help="Program TOML ([program] as in a scenario)."
    ),
    days: float = typer.Option(3.0, "--days", help="Days to predict."),
    start: str = typer.Option(
        "2027-01-04T00:00", "--start", help="Clock time of hour 0 (a weekday program's day)."
    ),
    from_dose: float | None = typer.Option(
        None,
        "--from-dose-ug-per-day",
        help="Settled on this continuous dose before; the program starts at hour 0.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the forecast."),
) -> None:
    """Predicted MAS on a program, hourly, with its 80% prediction interval."""
    from datetime import datetime

    from rich.table import Table

    from itb.cli.pk_fit import band_summary, load_fit, load_program, plot_band, predict_band
    from itb.errors import InputError

    if plot is not None:
        check_writable_file(plot, "--plot")
    try:
        when = datetime.fromisoformat(start)
    except ValueError as err:
        _fail(f"--start={start!r}: expected a date and time like 2027-01-04T08:00 ({err})")
        return
    cap = BACLOFEN.absolute_max_daily_dose_ug
    if from_dose is not None and not (math.isfinite(from_dose) and 0 <= from_dose <= cap):
        _fail(f"--from-dose-ug-per-day={from_dose}: allowed 0 to {cap:g} µg/day (S25)")
    try:
        patient_fit, program_ = load_fit(fit_path), load_program(program_path)
        band = predict_band(patient_fit, program_, days, when, from_dose)
    except InputError as err:
        _fail(str(err))
        return
    summary = band_summary(patient_fit, band, program_, when)
    if plot is not None:
        who = "typical patient" if band.typical else "this patient's model"
        plot_band(
            plot, band, f"{program_path.name}: {who}, {summary['mean_daily_dose_ug']:g} µg/day"
        )
        summary["plot"] = str(plot)
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"[bold]{summary['note']}[/bold], {summary['mean_daily_dose_ug']:g} µg/day")
    table = Table("time", "MAS", "80% interval")
    step = 1 if len(summary["series"]) <= 48 else 6
    for row in summary["series"][::step]:
        table.add_row(
            row["at"], f"{row['mas']:.2f}", f"{row['low_mas']:.2f} to {row['high_mas']:.2f}"
        )
    console.print(table)
    if plot is not None:
        console.print(f"plot written to {plot}")
