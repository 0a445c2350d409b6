from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.cli.pk import app
from itb.pharmacology.bolus import bolus_course
from itb.pharmacology.model import typical_patient

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "continuous-refill.toml"


def test_bolus_json_is_one_object_with_the_documented_keys() -> None:
    result = runner.invoke(app, ["bolus", "--dose-ug", "50", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"onset_h", "peak_h", "duration_h", "peak_effect", "series"} <= set(data)
    course = bolus_course(typical_patient(), 50.0)
    assert data["duration_h"] == pytest.approx(course.duration_h[0], abs=1e-5)
    assert [row["t_h"] for row in data["series"]] == [float(h) for h in range(25)]
    assert set(data["series"][0]) == {"t_h", "csf_ug_per_ml", "effect"}


def test_bolus_plot_is_written(tmp_path: Path) -> None:
    out = tmp_path / "bolus.png"
    result = runner.invoke(app, ["bolus", "--dose-ug", "75", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "onset" in result.stdout


def test_negative_dose_is_refused_with_the_field_name() -> None:
    result = runner.invoke(app, ["bolus", "--dose-ug", "-5"])
    assert result.exit_code == 2
    assert "dose_ug" in result.output


@pytest.mark.skipif(not EXAMPLE.exists(), reason="example scenario missing")
def test_program_reports_withdrawal_risk_after_an_empty_reservoir(tmp_path: Path) -> None:
    out = tmp_path / "program.png"
    result = runner.invoke(app, ["program", str(EXAMPLE), "--json", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    empties = [s for s in data["delivery_stops"] if s["kind"] == "empty_reservoir"]
    assert empties, data["delivery_stops"]
    assert 0.0 < empties[0]["withdrawal_risk_after_h"] < 48.0
    assert data["hours_below_withdrawal_threshold"] > 0.0
    assert out.exists()


def test_program_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["program", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml" in result.output
