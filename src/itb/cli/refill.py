"""``itb refill``: offline refill calculators (plan, check, bridge, prime).

Adapters only: every number comes from :mod:`itb.programmer`. The pump-connected versions, which
read the concentration and volumes back from the pump, come with the telemetry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from typing import TypeVar

import typer

from itb.cli.decimal_options import ML, UG_PER_DAY, UG_PER_ML
from itb.cli.lazy import lazy_console
from itb.errors import InputError
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.programmer.bridge import BridgePlan, plan_concentration_change
from itb.programmer.priming import plan_priming
from itb.programmer.refill import (
    DEFAULT_SAFETY_MARGIN_DAYS,
    RefillInput,
    check_withdrawn_volume,
    plan_refill,
)
from itb.pump.hardware import (
    CATHETER_LENGTH_CM,
    DEFAULT_MODEL,
    MODELS,
    implanted_catheter_volume_ml,
    pump_model,
)

app = typer.Typer(
    name="refill",
    help="Refill, concentration-change and priming calculators (offline; no pump needed).",
    no_args_is_help=True,
)

# Rich is imported when a table or a coloured line is drawn, not for a --json answer
_out = lazy_console(highlight=False)
_err = lazy_console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line
_T = TypeVar("_T")

MODEL_HELP = f"Pump model: {', '.join(MODELS)}."
TRIMMED_HELP = f"Length cut off the {CATHETER_LENGTH_CM:g} cm catheter, cm (S31)."
JSON_HELP = "Print exactly one JSON object on stdout."


def _run(as_json: bool, compute: Callable[[], _T]) -> _T:
    """Run a calculation; bad input becomes a message naming the field, and exit code 2."""
    try:
        return compute()
    except (ValueError, OverflowError) as caught:
        # an InputError (limit, drug, model...) names its field; an overflow is a fill date
        # so near year 9999 that the dates it plans do not exist
        error = caught if isinstance(caught, ValueError) else InputError("from", _TOO_LATE)
        field = error.field if isinstance(error, InputError) else None
        if as_json:
            print(json.dumps({"error": str(error), "field": field}, ensure_ascii=False))
        else:
            from rich.markup import escape

            _err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(code=2) from None


_TOO_LATE = (
    "the planned dates fall after the year 9999; allowed an earlier fill date or a larger dose"
)


def _emit(
    as_json: bool, data: dict[str, object], title: str, rows: Iterable[tuple[str, str]]
) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value")
    for name, value in rows:
        table.add_row(name, value)
    _out.print(table)


def _reasons(as_json: bool, reasons: Iterable[str], label: str = "why") -> None:
    if not as_json:
        for reason in reasons:
            _out.print(f"{label}: {reason}")


def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"from={text!r}: expected a date as YYYY-MM-DD, e.g. 2027-01-04") from None


@app.command()
def plan(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP),
    reservoir_ml: float = typer.Option(
        ..., "--reservoir-ml", parser=ML, help="Volume after the fill, mL."
    ),
    concentration_ug_per_ml: float = typer.Option(
        ..., "--concentration-ug-per-ml", parser=UG_PER_ML, help="Baclofen concentration, µg/mL."
    ),
    daily_dose_ug: float = typer.Option(
        ..., "--daily-dose-ug", parser=UG_PER_DAY, help="Daily dose, µg/day."
    ),
    alarm_ml: float = typer.Option(
        DEFAULT_LOW_RESERVOIR_ALARM_ML,
        "--alarm-ml",
        parser=ML,
        help="Low-reservoir alarm threshold, mL.",
    ),
    margin_days: float = typer.Option(
        DEFAULT_SAFETY_MARGIN_DAYS, "--margin-days", help="Days before the alarm (S24: 3 to 5)."
    ),
    from_date: str | None = typer.Option(
        None, "--from", help="Fill date, YYYY-MM-DD: also print the dates."
    ),
    eos_in_days: float | None = typer.Option(
        None, "--eos-in-days", help="Days from the fill to the battery's end of service."
    ),
    drug_expires_in_days: float | None = typer.Option(
        None, "--drug-expires-in-days", help="Days from the fill to the filled drug's expiry."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Days (and dates) to the low-reservoir alarm, empty, stability limit and next refill.
    The next refill is never after a possible empty at the pump's fast flow (minus the margin),
    the end of service or the drug's expiry; the plan names the bound that set it."""
    schedule = _run(
        as_json,
        lambda: plan_refill(
            RefillInput(
                pump_model(model),
                reservoir_ml,
                concentration_ug_per_ml,
                daily_dose_ug,
                alarm_ml,
                _parse_date(from_date),
                margin_days,
                days_to_eos=eos_in_days,
                days_to_drug_expiry=drug_expires_in_days,
            )
        ),
    )
    s = schedule

    def when(days: float, on: date | None) -> str:
        return f"{days:.1f} days" + ("" if on is None else f" ({on.isoformat()})")

    def table() -> tuple[dict[str, object], list[tuple[str, str]]]:
        # the dates are computed here: one past year 9999 is refused like any bad input
        return s.to_dict(), [
            ("volume per day", f"{s.volume_per_day_ml:.4f} mL/day"),
            ("low-reservoir alarm", when(s.days_to_low_reservoir, s.low_reservoir_on)),
            ("empty", when(s.days_to_empty, s.empty_on)),
            ("stability limit", when(s.stability_days, s.stability_limit_on)),
            ("next refill", when(s.next_refill_days, s.next_refill_on)),
            ("set by", s.next_refill_bound),
        ]

    data, rows = _run(as_json, table)
    _emit(as_json, data, f"Refill plan: {s.model}, {s.reservoir_ml:g} mL", rows)
    _reasons(as_json, [s.next_refill_reason])
    _reasons(as_json, s.warnings, "warning")


@app.command()
def check(
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP),
    expected_ml: float = typer.Option(
        ..., "--expected-ml", parser=ML, help="Volume the pump expects, mL."
    ),
    withdrawn_ml: float = typer.Option(
        ..., "--withdrawn-ml", parser=ML, help="Volume withdrawn, mL."
    ),
    delivered_since_fill_ml: float = typer.Option(
        ...,
        "--delivered-since-fill-ml",
        parser=ML,
        help="Volume delivered since the last fill, mL.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Expected vs withdrawn volume: flags a possible pocket fill, catheter or pump problem."""
    result = _run(
        as_json,
        lambda: check_withdrawn_volume(
            pump_model(model), expected_ml, withdrawn_ml, delivered_since_fill_ml
        ),
    )
    rows = [
        ("expected", f"{result.expected_ml:.2f} mL"),
        ("withdrawn", f"{result.withdrawn_ml:.2f} mL"),
        ("discrepancy", f"{result.discrepancy_ml:+.2f} mL"),
        ("pocket-fill tolerance (S28)", f"{result.pocket_fill_tolerance_ml:g} mL"),
        ("pump accuracy band", f"±{result.accuracy_band_ml:.2f} mL"),
        ("result", "FLAGGED: acknowledge before refilling" if result.flagged else "ok"),
    ]
    _emit(as_json, result.to_dict(), "Withdrawn volume check", rows)
    _reasons(as_json, result.reasons)


@app.command()
def bridge(
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP),
    old_concentration_ug_per_ml: float = typer.Option(
        ...,
        "--old-concentration-ug-per-ml",
        parser=UG_PER_ML,
        help="Concentration now in the pump, µg/mL.",
    ),
    new_concentration_ug_per_ml: float = typer.Option(
        ...,
        "--new-concentration-ug-per-ml",
        parser=UG_PER_ML,
        help="Concentration being filled, µg/mL.",
    ),
    daily_dose_ug: float = typer.Option(
        ..., "--daily-dose-ug", parser=UG_PER_DAY, help="Daily dose, µg/day."
    ),
    catheter_trimmed_cm: float | None = typer.Option(
        None, "--catheter-trimmed-cm", help=TRIMMED_HELP
    ),
    catheter_volume_ml: float | None = typer.Option(
        None,
        "--catheter-volume-ml",
        parser=ML,
        help="Implanted catheter volume, mL (instead of trimmed).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Concentration change: the bridge that keeps the dose in µg/day steady."""

    def compute() -> BridgePlan:
        if (catheter_trimmed_cm is None) == (catheter_volume_ml is None):
            raise ValueError("give exactly one of --catheter-trimmed-cm or --catheter-volume-ml")
        volume_ml = (
            implanted_catheter_volume_ml(catheter_trimmed_cm)
            if catheter_trimmed_cm is not None
            else catheter_volume_ml
        )
        assert volume_ml is not None
        return plan_concentration_change(
            pump_model(model),
            volume_ml,
            old_concentration_ug_per_ml,
            new_concentration_ug_per_ml,
            daily_dose_ug,
        )

    p = _run(as_json, compute)
    rows = [
        ("dead space", f"{p.dead_space_ml:.4f} mL"),
        ("bridge dose", f"{p.bridge_dose_ug:.1f} µg at {p.old_concentration_ug_per_ml:g} µg/mL"),
        ("bridge rate", f"{p.bridge_volume_rate_ml_per_day:.4f} mL/day"),
        ("bridge duration", f"{p.bridge_duration_h:.1f} h"),
        ("new volume rate", f"{p.new_volume_per_day_ml:.4f} mL/day"),
        ("daily dose", f"{p.daily_dose_ug:g} µg/day (unchanged)"),
    ]
    _emit(as_json, p.to_dict(), "Concentration change", rows)
    _reasons(as_json, p.reasons)


@app.command()
def prime(
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP),
    catheter_trimmed_cm: float = typer.Option(..., "--catheter-trimmed-cm", help=TRIMMED_HELP),
    concentration_ug_per_ml: float = typer.Option(
        ..., "--concentration-ug-per-ml", parser=UG_PER_ML, help="Baclofen concentration, µg/mL."
    ),
    pump_tubing_full: bool = typer.Option(
        False, "--pump-tubing-full", help="Catheter revision: the pump's own tubing is full."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Priming volume after an implant or a catheter revision."""
    p = _run(
        as_json,
        lambda: plan_priming(
            pump_model(model),
            catheter_trimmed_cm,
            concentration_ug_per_ml,
            pump_tubing_empty=not pump_tubing_full,
        ),
    )
    rows = [
        ("catheter volume", f"{p.catheter_volume_ml:.4f} mL"),
        ("pump tubing", f"{p.internal_tubing_ml:.4f} mL"),
        ("priming volume", f"{p.priming_volume_ml:.4f} mL"),
        ("duration at max flow", f"{p.duration_min_at_max_flow:.1f} min"),
        ("dose if catheter already full", f"{p.dose_if_catheter_full_ug:.0f} µg"),
    ]
    _emit(as_json, p.to_dict(), "Priming bolus", rows)
    _reasons(as_json, p.reasons)
