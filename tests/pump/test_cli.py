"""`itb pump models` and `itb pump simulate` as a person runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from itb.cli import app

EXAMPLES = Path(__file__).parents[2] / "examples"
runner = CliRunner()


def test_models_lists_the_four_hardware_models() -> None:
    result = runner.invoke(app, ["pump", "models", "--json"])
    assert result.exit_code == 0
    names = set(json.loads(result.stdout)["models"])
    assert names == {"peristaltic-20", "peristaltic-40", "valve-gated-20", "valve-gated-40"}


def test_simulate_json_reports_delivery_alarms_and_the_log(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        """
[pump]
model = "peristaltic-20"
start = 2027-01-04T08:00:00
low_reservoir_alarm_ml = 2.0

[drug]
concentration_ug_per_ml = 500.0
volume_ml = 20.0

[program]
rate_ug_per_day = 600.0
""",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["pump", "simulate", str(scenario), "--until", "30d", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # 1.2 mL/day: low alarm after (20 - 2) / 1.2 = 15 days, empty after 16.67 days, then nothing
    assert out["delivered_ml"] == 20.0
    assert out["delivered_ug"] == 10_000.0
    assert out["reservoir_ml"] == 0.0
    assert [a["kind"] for a in out["alarms"]] == ["low_reservoir", "empty_reservoir"]
    assert out["alarms"][0]["at"] == "2027-01-19T08:00:00"
    assert out["alarms"][1]["at"] == "2027-01-21T00:00:00"
    # the primed catheter hands over what the pump pushed
    assert out["received_ug"] == 10_000.0
    assert [e["seq"] for e in out["events"]] == [1, 2, 3]


def test_simulate_examples_run_and_the_refill_prevents_an_empty_reservoir() -> None:
    result = runner.invoke(
        app,
        ["pump", "simulate", str(EXAMPLES / "continuous-refill.toml"), "--until", "25d", "--json"],
    )
    out = json.loads(result.stdout)
    assert out["alarms"] == []  # the refill on day 11 came before the day-15 alarm
    # 25 days of 600 µg plus the 50 µg bolus
    assert out["delivered_ug"] == 25 * 600.0 + 50.0
    flex = runner.invoke(
        app, ["pump", "simulate", str(EXAMPLES / "flex-concentration-change.toml"), "--json"]
    )
    assert flex.exit_code == 0
    kinds = [e["kind"] for e in json.loads(flex.stdout)["events"]]
    assert "bolus_start" in kinds and "motor_stall_recovered" in kinds


def test_simulate_without_json_prints_a_timeline() -> None:
    result = runner.invoke(app, ["pump", "simulate", str(EXAMPLES / "continuous-refill.toml")])
    assert result.exit_code == 0
    assert "refill" in result.stdout and "empty_reservoir" in result.stdout


def test_bad_scenarios_get_an_error_naming_the_field(tmp_path: Path) -> None:
    cases = {
        'model = "peristaltic-99"': "pump.model",
        "concentration_ug_per_ml = 750.0": "concentration_ug_per_ml",
        "volume_ml = -3.0": "drug.volume_ml",
        "rate_ug_per_day = 600.0\nrate_mg_per_day = 0.6": "unknown keys",
    }
    base = {
        "model": 'model = "peristaltic-20"',
        "concentration": "concentration_ug_per_ml = 500.0",
        "volume": "volume_ml = 20.0",
        "rate": "rate_ug_per_day = 600.0",
    }
    for bad, field in cases.items():
        parts = dict(base)
        key = next(k for k, v in base.items() if bad.split(" = ")[0] == v.split(" = ")[0])
        parts[key] = bad
        text = (
            f"[pump]\n{parts['model']}\nstart = 2027-01-04T08:00:00\n"
            f"[drug]\n{parts['concentration']}\n{parts['volume']}\n[program]\n{parts['rate']}\n"
        )
        scenario = tmp_path / "bad.toml"
        scenario.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["pump", "simulate", str(scenario), "--json"])
        assert result.exit_code != 0, bad
        assert field in result.output, (bad, result.output)


def test_a_bad_duration_is_refused() -> None:
    result = runner.invoke(
        app,
        ["pump", "simulate", str(EXAMPLES / "continuous-refill.toml"), "--until", "30 fortnights"],
    )
    assert result.exit_code == 2
    assert "duration" in result.output
