"""``itb screening assess`` through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from itb.cli.screening import app

runner = CliRunner()
ASSESS = ["assess", "--dose-ug", "50", "--baseline-mas", "3"]
POSITIVE = "1=3,2=2,3=2,4=1,5=1,6=2,7=2,8=3"
NO_RESPONSE = "1=3,2=2.5,3=2.5,4=2.5,5=3,6=3,7=3,8=3"


def test_assess_prints_the_table_the_result_and_the_first_pump_dose() -> None:
    result = runner.invoke(app, [*ASSESS, "--scores", POSITIVE])
    assert result.exit_code == 0, result.output
    assert "observed MAS" in result.output and "predicted MAS" in result.output
    assert "POSITIVE" in result.output
    assert "first pump dose: 100 µg/day" in result.output  # 2 × 50, effect 7 h (S46)


def test_assess_json_after_no_response_to_50_and_75() -> None:
    args = [*ASSESS[:2], "100", *ASSESS[3:], "--scores", NO_RESPONSE, "--previous", "50:no,75:no"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["classification"]["positive"] is False
    assert data["classification"]["max_fall_mas"] == 0.5
    assert data["decision"]["action"] == "not_candidate"
    assert len(data["comparison"]["rows"]) == 8


def test_next_dose_date_is_a_day_after_the_bolus() -> None:
    args = [*ASSESS, "--scores", NO_RESPONSE, "--given-at", "2027-01-04T08:00", "--json"]
    data = json.loads(runner.invoke(app, args).stdout)
    assert data["decision"]["next_dose_ug"] == 75.0
    assert data["decision"]["not_before"] == "2027-01-05T08:00:00"


def test_the_response_rule_is_an_option() -> None:
    args = [*ASSESS, "--scores", NO_RESPONSE, "--min-fall-mas", "0.5", "--json"]
    assert json.loads(runner.invoke(app, args).stdout)["classification"]["positive"] is True


def test_bad_input_exits_2_naming_the_field() -> None:
    for args, field in (
        (["--dose-ug", "60", "--baseline-mas", "3", "--scores", POSITIVE], "dose_ug"),
        (["--dose-ug", "50", "--baseline-mas", "7", "--scores", POSITIVE], "baseline_mas"),
        ([*ASSESS[1:], "--scores", "1=3,2=9,3=1,4=1"], "scores"),
        ([*ASSESS[1:], "--scores", "0=3,1=3,2=2,3=1,4=1"], "scores"),
        ([*ASSESS[1:], "--scores", "1=3,2=2"], "scores"),
        ([*ASSESS[1:], "--scores", POSITIVE, "--previous", "50:maybe"], "previous"),
        ([*ASSESS[1:], "--scores", POSITIVE, "--min-fall-mas", "0"], "min_fall_mas"),
    ):
        result = runner.invoke(app, ["assess", *args, "--json"])
        assert result.exit_code == 2, args
        assert json.loads(result.stdout)["field"] == field, result.stdout


def test_plot_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "screening.png"
    result = runner.invoke(app, [*ASSESS, "--scores", POSITIVE, "--plot", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
