"""`itb pk fit` and `itb pk predict` through the real CLI: a trial file in, a fit file out, a
forecast with its band; bad files answer one line naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.cli import app

EXAMPLES = Path(__file__).parents[2] / "examples"
TRIAL = EXAMPLES / "screening-trial.toml"
PROGRAM = EXAMPLES / "continuous-refill.toml"
runner = CliRunner()


def _fit(tmp_path: Path, trial: Path = TRIAL) -> Path:
    result = runner.invoke(app, ["pk", "fit", str(trial), "--json"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "fit.json"
    out.write_text(result.stdout)
    return out


def test_fit_gives_parameters_and_a_starting_dose_each_with_an_interval(tmp_path: Path) -> None:
    data = json.loads(_fit(tmp_path).read_text())
    assert data["typical_patient"] is False and data["scores"] == 18
    for value in data["parameters"].values():
        assert value["low"] <= value["map"] <= value["high"]
    start = data["starting_dose"]
    assert data["positive_screening_dose_ug"] == 75.0  # no response to 50 µg, then 75 µg
    low, high = start["interval_daily_dose_ug"]
    assert low <= start["daily_dose_ug"] <= high
    assert start["daily_dose_ug"] in (75.0, 150.0)  # the label's rule: same or twice (S46)


def test_fit_prints_a_table_for_people() -> None:
    result = runner.invoke(app, ["pk", "fit", str(TRIAL)])
    assert result.exit_code == 0, result.output
    assert "starting dose" in result.stdout and "80% interval" in result.stdout


def test_a_trial_without_scores_is_the_typical_patient(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing scored yet\n")
    data = json.loads(_fit(tmp_path, empty).read_text())
    assert data["typical_patient"] is True and data["starting_dose"] is None
    assert "typical patient" in data["note"]


def test_predict_gives_hourly_mas_with_its_band_and_a_plot(tmp_path: Path) -> None:
    fit = _fit(tmp_path)
    plot = tmp_path / "forecast.png"
    args = ["pk", "predict", "--fit", str(fit), "--program", str(PROGRAM), "--days", "2"]
    result = runner.invoke(app, [*args, "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["typical_patient"] is False and data["mean_daily_dose_ug"] == 600.0
    assert len(data["series"]) == 49
    first = data["series"][0]
    assert first["at"] == "2027-01-04T00:00"
    assert first["low_mas"] <= first["mas"] <= first["high_mas"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_from_a_lower_dose_shows_the_change(tmp_path: Path) -> None:
    fit = _fit(tmp_path)
    args = ["pk", "predict", "--fit", str(fit), "--program", str(PROGRAM), "--days", "3"]
    result = runner.invoke(app, [*args, "--from-dose-ug-per-day", "0", "--json"])
    assert result.exit_code == 0, result.output
    series = json.loads(result.stdout)["series"]
    assert series[-1]["mas"] < series[0]["mas"]  # the drug takes effect: tone falls


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[[dose]]\ndose_ug = 60\nbaseline_mas = 3\nhourly_mas = [2, 2, 2, 2]\n", "dose_ug"),
        ("[[dose]]\ndose_ug = 50\nbaseline_mas = 7\nhourly_mas = [2, 2, 2, 2]\n", "scores[0]"),
        ("[[dose]]\ndose_ug = 50\nbaseline_mas = 3\nhourly_mas = [2, 2]\n", "at least 4"),
        ("[[dose]]\ndose_ug = 50\nbaseline_mas = 3\nhourly_mas = [2, 2, 2, 2]\nx = 1\n", "x"),
        ("[[follow_up]]\ndaily_dose_ug = 5000\nmas = 2\n", "follow_up.0.daily_dose_ug"),
        (
            "[[dose]]\ndose_ug = 50\ngiven_at = 2027-01-04T09:00:00\nbaseline_mas = 3\n"
            "hourly_mas = [3, 3, 3, 3]\n[[dose]]\ndose_ug = 75\n"
            "given_at = 2027-01-04T20:00:00\nbaseline_mas = 3\nhourly_mas = [2, 2, 2, 2]\n",
            "24 h or more",
        ),
        ("not toml [", "not valid TOML"),
    ],
)
def test_a_bad_trial_file_answers_one_line(tmp_path: Path, content: str, words: str) -> None:
    trial = tmp_path / "trial.toml"
    trial.write_text(content)
    result = runner.invoke(app, ["pk", "fit", str(trial), "--json"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], lines


@pytest.mark.parametrize(
    ("fit_text", "words"),
    [
        ("{not json", "not a fit file"),
        ('{"kind": "something else"}', "not a fit file"),
        (None, "no such fit file"),
    ],
)
def test_a_bad_fit_file_answers_one_line(tmp_path: Path, fit_text: str | None, words: str) -> None:
    fit = tmp_path / "fit.json"
    if fit_text is not None:
        fit.write_text(fit_text)
    args = ["pk", "predict", "--fit", str(fit), "--program", str(PROGRAM)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


def test_bad_days_and_start_answer_one_line(tmp_path: Path) -> None:
    fit = _fit(tmp_path)
    base = ["pk", "predict", "--fit", str(fit), "--program", str(PROGRAM)]
    for extra, words in ((["--days", "nan"], "--days"), (["--start", "9999-99-99"], "--start")):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2, result.output
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
