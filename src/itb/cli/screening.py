"""``itb screening``: assess a screening-trial bolus from the hourly MAS scores.

An adapter: the comparison, the classification and the decision come from
:mod:`itb.programmer.screening`; this module parses, prints and plots.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from itb.cli.decimal_options import UG
from itb.cli.lazy import lazy_console
from itb.cli.outputs import check_writable_file
from itb.drugs import SCREENING_TRIAL_DOSES_UG
from itb.errors import InputError
from itb.pharmacology.thresholds import RESPONSE_THRESHOLD_MAS

# itb.programmer.screening (NumPy) and Rich are imported inside the command that uses them:
# either costs more than the whole budget of `itb screening --help` (issue 13).
if TYPE_CHECKING:
    from itb.programmer.screening import Assessment, EarlierDose, Observation


app = typer.Typer(
    name="screening",
    help="Screening trial: hourly MAS after a trial bolus, model comparison, decision. "
    "Not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_out = lazy_console(highlight=False)
_TRIAL_DOSES = (
    ", ".join(f"{d:g}" for d in SCREENING_TRIAL_DOSES_UG[:-1])
    + f" or {SCREENING_TRIAL_DOSES_UG[-1]:g}"
)


@app.callback()
def _group() -> None:
    """Screening trial (a group, so that ``itb screening assess`` keeps its name)."""


_err = lazy_console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line


def _parse_scores(text: str) -> tuple[Observation, ...]:
    """``"1=3,2=2.5,..."``: hours after the bolus = MAS (0 to 5, 1+ coded 2)."""
    from itb.pharmacology.screening import MAS_MAX, MAS_MIN
    from itb.programmer.screening import LAST_SCORE_H, Observation, ScreeningInputError

    scores = []
    for i, part in enumerate(p for p in text.split(",") if p.strip()):
        hour_text, sep, mas_text = part.partition("=")
        try:
            if not sep:
                raise ValueError
            hour_h, mas = float(hour_text), float(mas_text)
        except ValueError:
            reason = "expected HOUR=MAS, e.g. 4=2"
            message = f"--scores item {i + 1} {part.strip()!r}: {reason}"
            raise ScreeningInputError("scores", reason, message) from None
        if not (math.isfinite(hour_h) and 0.0 < hour_h <= LAST_SCORE_H):
            reason = (
                f"allowed more than 0 up to {LAST_SCORE_H:g} h after the bolus "
                "(give hour 0 as --baseline-mas)"
            )
            raise ScreeningInputError("scores", reason, f"--scores hour {hour_h:g}: {reason}")
        if not (math.isfinite(mas) and MAS_MIN <= mas <= MAS_MAX):
            reason = f"MAS allowed {MAS_MIN:g} to {MAS_MAX:g} (1+ coded 2; S74 S75)"
            raise ScreeningInputError("scores", reason, f"--scores {hour_h:g}={mas:g}: {reason}")
        scores.append(Observation(hour_h, mas))
    return tuple(scores)


def _parse_previous(text: str) -> tuple[EarlierDose, ...]:
    """``"50:no,75:no"``: earlier doses, oldest first, with their outcome (yes or no)."""
    from itb.programmer.screening import EarlierDose, ScreeningInputError

    doses = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        dose_text, _, outcome = part.partition(":")
        try:
            dose_ug = float(dose_text)
        except ValueError:
            reason = "expected DOSE:yes|no, e.g. 50:no"
            raise ScreeningInputError(
                "previous", reason, f"--previous {part!r}: {reason}"
            ) from None
        if outcome.strip().lower() not in ("yes", "no"):
            reason = "the outcome is yes or no"
            raise ScreeningInputError("previous", reason, f"--previous {part!r}: {reason}")
        doses.append(EarlierDose(dose_ug, outcome.strip().lower() == "yes"))
    return tuple(doses)


def _parse_time(text: str | None) -> datetime | None:
    from itb.programmer.screening import ScreeningInputError

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        reason = "expected YYYY-MM-DDTHH:MM"
        raise ScreeningInputError("given_at", reason, f"--given-at {text!r}: {reason}") from None


def _fail(as_json: bool, error: InputError) -> None:
    from rich.markup import escape

    field = error.field
    if as_json:
        print(json.dumps({"error": str(error), "field": field}, ensure_ascii=False))
    else:
        _err.print(f"[red]error:[/red] {escape(str(error))}")
    raise typer.Exit(code=2)


@app.command("assess")
def assess_command(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    dose_ug: float = typer.Option(
        ..., "--dose-ug", parser=UG, help=f"Trial bolus, µg: {_TRIAL_DOSES}."
    ),
    baseline_mas: float = typer.Option(
        ..., "--baseline-mas", help="MAS before the bolus (0 to 5, 1+ coded 2)."
    ),
    scores: str = typer.Option(
        ..., "--scores", help='MAS after the bolus, HOUR=MAS, e.g. "1=3,2=2,...,8=3".'
    ),
    previous: str = typer.Option(
        "", "--previous", help='Earlier trial doses, oldest first, e.g. "50:no,75:no".'
    ),
    given_at: str | None = typer.Option(
        None, "--given-at", help="When the bolus was given (YYYY-MM-DDTHH:MM), for the next date."
    ),
    min_fall_mas: float = typer.Option(
        RESPONSE_THRESHOLD_MAS,
        "--min-fall-mas",
        help="Response rule: the MAS fall that counts as a response "
        f"(default {RESPONSE_THRESHOLD_MAS:.1f}, S51).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a PNG: observed scores against the model's prediction."
    ),
) -> None:
    """Observed against predicted MAS, the classification and the decision for this dose."""
    from itb.pharmacology.model import ParameterError
    from itb.programmer.screening import (
        ResponseRule,
        ScreeningInputError,
        ScreeningTrial,
        TrialDose,
        assess,
    )

    if plot is not None:
        check_writable_file(plot, "--plot")
    try:
        rule = ResponseRule(min_fall_mas)
        dose = TrialDose(dose_ug, baseline_mas, _parse_scores(scores), _parse_time(given_at))
        trial = ScreeningTrial(dose, _parse_previous(previous))
        result = assess(trial, rule)
    except ScreeningInputError as error:
        _fail(as_json, error)
        return
    except ParameterError as error:  # the rule's own range check
        message = str(error).replace("min_fall_mas", "--min-fall-mas")
        _fail(as_json, InputError("min_fall_mas", message, message))
        return
    data: dict[str, Any] = result.to_dict()
    if plot is not None:
        _plot(plot, result)
        data["plot"] = str(plot)
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    _print(result)
    if plot is not None:
        _out.print(f"plot written to {plot}")


def _print(result: Assessment) -> None:
    from rich.table import Table

    c, k, d = result.comparison, result.classification, result.decision
    table = Table(title=f"{c.dose_ug:g} µg trial bolus, baseline MAS {c.baseline_mas:g}")
    table.add_column("hour", justify="right")
    table.add_column("observed MAS", justify="right")
    table.add_column("predicted MAS", justify="right")
    for row in c.rows:
        table.add_row(f"{row.hour_h:g}", f"{row.observed_mas:g}", f"{row.predicted_mas:.2f}")
    _out.print(table)
    _out.print(f"comparison: {c.reason}")
    verdict = "POSITIVE" if k.positive else "NO RESPONSE"
    _out.print(f"classification: {verdict}: {k.reason}")
    _out.print(f"decision: {d.action.value}: {d.reason}")
    if d.first_daily_dose_ug is not None:
        _out.print(f"first pump dose: {d.first_daily_dose_ug:g} µg/day")


def _plot(path: Path, result: Assessment) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itb.programmer.screening import CLINIC_LAST_HOUR, predicted_mas_course

    c, k = result.comparison, result.classification
    end_h = max(float(CLINIC_LAST_HOUR), c.rows[-1].hour_h)
    times_h = [i * end_h / 200 for i in range(201)]
    predicted = predicted_mas_course(c.dose_ug, c.baseline_mas, times_h)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    band_top = max(c.baseline_mas - k.min_fall_mas, 0.0)
    ax.axhspan(0.0, band_top, color="tab:green", alpha=0.15,
               label=f"response: MAS fall ≥ {k.min_fall_mas:g} (S51)")  # fmt: skip
    ax.axhline(c.baseline_mas, color="grey", ls=":", lw=1, label=f"baseline {c.baseline_mas:g}")
    ax.plot(times_h, predicted, color="tab:purple", lw=1.6, label="predicted (typical patient)")
    ax.plot([r.hour_h for r in c.rows], [r.observed_mas for r in c.rows], "o", color="black",
            label="observed")  # fmt: skip
    ax.set_ylim(5.0, 0.0)  # lower tone upwards, as in the pk plots
    ax.set_xlim(0.0, end_h)
    ax.set_xlabel("Hours after the bolus")
    ax.set_ylabel("Modified Ashworth (0-5, 1+ = 2)")
    ax.set_title(
        f"Screening bolus {c.dose_ug:g} µg: {'positive' if k.positive else 'no response'}\n"
        "(OpenITB simulation, not a medical device)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
