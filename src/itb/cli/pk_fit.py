"""``itb pk fit`` and ``itb pk predict``: a patient's own model from a screening trial file, and
what it predicts on a program (an adapter: reads the files, prints, plots).

The trial file (TOML, docs/pharmacology.md, examples/screening-trial.toml)::

    [[dose]]                                 # one table per trial bolus, oldest first
    dose_ug = 50.0                           # 25, 50, 75 or 100 µg (S45 S46 S48)
    given_at = 2027-01-04T09:00:00           # optional; default a day after the previous dose
    baseline_mas = 3.0                       # MAS before the bolus (hour 0), 0 to 5 (S75)
    hourly_mas = [2.9, 2.5, 2.1, 1.8, 1.7, 1.9, 2.3, 2.6]   # hours 1, 2, ... after the bolus

    [[follow_up]]                            # optional: MAS at a visit, settled on a known
    daily_dose_ug = 300.0                    # continuous daily dose (steady state)
    mas = 1.9

The fit's numbers come from itb.pharmacology.fit and .prediction; the generator is seeded
(``--seed``) so the same files give the same intervals.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from itb.drugs import BACLOFEN
from itb.errors import InputError
from itb.pharmacology.exact import pieces_from_segments
from itb.pharmacology.fit import (
    PatientFit,
    SteadyScore,
    TrialDay,
    fit_from_dict,
    fit_patient,
    fit_to_dict,
    trial_data,
)
from itb.pharmacology.prediction import (
    Dosing,
    ResponseBand,
    StartingDose,
    positive_screening_dose,
    predict_response,
    starting_dose,
)
from itb.programmer.screening import MIN_INTERVAL_H, dose_from_hourly_scores
from itb.therapy import Program, ProgramError, program_from_dict, rate_segments, to_pump_s
from itb.tomlfile import describe, read_toml
from itb.units import HOURS_PER_DAY, SECONDS_PER_HOUR

LAST_HOUR = 24  # scores later than a day after the bolus belong to the next dose (S45 S46)
MAX_PREDICT_DAYS = 90.0
WARM_UP_H = 72.0  # from steady state on the mean rate, so a flex day starts settled
DEFAULT_START = datetime(2027, 1, 4)  # a Monday midnight: day 1 of a weekday program


class TrialFileError(InputError):
    """A trial, fit or program file that cannot be used; the message names the field."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(field, message, message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class DoseSection(_Strict):
    dose_ug: float
    given_at: datetime | None = None
    baseline_mas: float
    hourly_mas: list[float] = Field(min_length=1, max_length=LAST_HOUR)


class FollowUpSection(_Strict):
    daily_dose_ug: float = Field(ge=0.0, le=BACLOFEN.absolute_max_daily_dose_ug)  # S25
    mas: float = Field(ge=0.0, le=5.0)


class TrialFile(_Strict):
    dose: list[DoseSection] = Field(default_factory=list, max_length=10)
    follow_up: list[FollowUpSection] = Field(default_factory=list, max_length=500)


def _days(trial: TrialFile) -> list[TrialDay]:
    days: list[TrialDay] = []
    for i, section in enumerate(trial.dose):
        if section.given_at is not None and section.given_at.tzinfo is not None:
            raise TrialFileError(f"dose[{i}].given_at: write a local time without a UTC offset")
        scores = {0: section.baseline_mas} | {h + 1: m for h, m in enumerate(section.hourly_mas)}
        try:  # the screening page's own checks: dose, MAS range, at least 4 scores
            checked = dose_from_hourly_scores(section.dose_ug, scores, None, LAST_HOUR)
        except InputError as err:
            raise TrialFileError(f"dose[{i}].{err.field}: {err.reason}", f"dose[{i}]") from None
        before = days[-1].given_at if days else None
        if before is not None and section.given_at is not None:
            gap_h = (section.given_at - before).total_seconds() / SECONDS_PER_HOUR
            if gap_h < MIN_INTERVAL_H:
                raise TrialFileError(
                    f"dose[{i}].given_at: {gap_h:.1f} h after the previous dose; allowed "
                    f"{MIN_INTERVAL_H:g} h or more (S45 S46)"
                )
        merged = {0: checked.baseline_mas} | {int(s.t_h): s.mas for s in checked.scores}
        days.append(TrialDay(checked.dose_ug, merged, section.given_at))
    return days


def load_trial(path: Path) -> tuple[list[TrialDay], tuple[SteadyScore, ...]]:
    data = read_toml(path, TrialFileError, "trial")
    try:
        trial = TrialFile.model_validate(data)
    except ValidationError as err:
        raise TrialFileError(f"{path}: {describe(err, 'trial')}") from None
    steady = tuple(SteadyScore(f.daily_dose_ug, f.mas) for f in trial.follow_up)
    return _days(trial), steady


def fit_summary(path: Path, seed: int) -> dict[str, Any]:
    """The fit of the trial file, its parameters with 80% intervals and the starting dose."""
    days, steady = load_trial(path)
    fit = fit_patient(trial_data(days, steady))
    rng = np.random.default_rng(seed)
    summary = fit_to_dict(fit, rng)
    positive = positive_screening_dose(days)
    summary["positive_screening_dose_ug"] = positive
    summary["starting_dose"] = (
        _starting_dict(starting_dose(fit, positive, rng)) if positive is not None else None
    )
    summary["note"] = (
        "no MAS scored: this is the typical patient, with the population's spread"
        if fit.typical
        else f"fitted to {fit.n_scores} MAS scores, the population as the prior"
    )
    return summary


def _starting_dict(dose: StartingDose) -> dict[str, Any]:
    return {
        "screening_dose_ug": dose.screening_dose_ug,
        "daily_dose_ug": dose.daily_dose_ug,
        "interval_daily_dose_ug": [dose.low_daily_dose_ug, dose.high_daily_dose_ug],
        "effect_duration_h": round(dose.effect_duration_h, 3),
        "interval_effect_duration_h": [
            round(dose.low_duration_h, 3),
            round(dose.high_duration_h, 3),
        ],
        "chance_effect_over_8_h": round(dose.chance_long_effect, 3),
        "level": dose.level,
        "reason": dose.reason,
    }


# itb pk predict ---------------------------------------------------------------------------------
def load_fit(path: Path) -> PatientFit:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrialFileError(f"{path}: no such fit file") from None
    except IsADirectoryError:
        raise TrialFileError(f"{path}: a directory, not a fit file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise TrialFileError(
            f"{path}: not a fit file written by `itb pk fit --json`: {err}"
        ) from None
    try:
        return fit_from_dict(data)
    except InputError as err:
        raise TrialFileError(f"{path}: {err}") from None


def load_program(path: Path) -> Program:
    data = read_toml(path, TrialFileError, "program")
    section = data.get("program", data)
    if not isinstance(section, dict):
        raise TrialFileError(f"{path}: [program] must be a table")
    try:
        return program_from_dict(section)
    except ProgramError as err:
        raise TrialFileError(f"{path}: {err}") from None


def predict_band(
    fit: PatientFit, program: Program, days: float, start: datetime, from_dose: float | None
) -> ResponseBand:
    """Hourly MAS on ``program`` for ``days`` from ``start``: settled on the program, or, with
    ``from_dose``, settled on that continuous daily dose and switched at ``start``."""
    if not (math.isfinite(days) and 0.0 < days <= MAX_PREDICT_DAYS):
        raise TrialFileError(f"--days={days}: allowed more than 0 up to {MAX_PREDICT_DAYS:g}")
    end = start + timedelta(days=days)
    settled = from_dose is None
    first = start - timedelta(hours=WARM_UP_H) if settled else start
    pieces = pieces_from_segments(rate_segments(program, first, end), to_pump_s(start))
    initial_ug_per_day = program.mean_daily_dose_ug() if from_dose is None else from_dose
    dosing = Dosing(
        tuple(pieces), (), initial_ug_per_day / HOURS_PER_DAY, -WARM_UP_H if settled else 0.0
    )
    times = np.arange(0.0, days * HOURS_PER_DAY + 1e-9, 1.0)
    return predict_response(fit, dosing, times, np.random.default_rng(0))


def band_summary(
    fit: PatientFit, band: ResponseBand, program: Program, start: datetime
) -> dict[str, Any]:
    return {
        "typical_patient": band.typical,
        "note": (
            "the typical patient (no MAS scored), with the population's spread"
            if band.typical
            else f"this patient's model, fitted to {fit.n_scores} MAS scores"
        ),
        "mean_daily_dose_ug": round(program.mean_daily_dose_ug(), 6),
        "level": band.level,
        "unit": "Modified Ashworth Score, 0 to 5 (1+ coded 2)",
        "series": [
            {
                "at": (start + timedelta(hours=float(t))).isoformat(timespec="minutes"),
                "t_h": float(t),
                "mas": round(float(m), 3),
                "low_mas": round(float(lo), 3),
                "high_mas": round(float(hi), 3),
            }
            for t, m, lo, hi in zip(band.t_h, band.mas, band.low_mas, band.high_mas, strict=True)
        ],
    }


def plot_band(path: Path, band: ResponseBand, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4))
    axes.fill_between(
        band.t_h, band.low_mas, band.high_mas, color="tab:purple", alpha=0.2,
        label=f"{band.level:.0%} prediction interval of a score",
    )  # fmt: skip
    who = "typical patient" if band.typical else "this patient's model"
    axes.plot(band.t_h, band.mas, color="tab:purple", label=f"predicted MAS ({who})")
    axes.set_ylim(5.0, 0.0)  # MAS 0 at the top: less tone is up, as in the other pk plots
    axes.set_xlabel("hours from the start")
    axes.set_ylabel("Modified Ashworth Score (0-5)")
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
