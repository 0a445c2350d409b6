"""``itb refill``: the offline calculators, through Typer's test runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from itb.cli.refill import app

runner = CliRunner()
PLAN = [
    "plan",
    "--model",
    "peristaltic-20",
    "--reservoir-ml",
    "20",
    "--concentration-ug-per-ml",
    "500",
    "--daily-dose-ug",
    "100",
]


def one_json_object(stdout: str) -> dict[str, object]:
    data = json.loads(stdout)  # fails if there is anything but one JSON value
    assert isinstance(data, dict)
    return data


def test_plan_json_gives_days_and_dates() -> None:
    # 0.2 mL/day: alarm at day 90, empty at 100 (87.34 at +14.5 %), next refill
    # 87.34 − 5 = 82.3 = 2027-03-27.
    result = runner.invoke(app, [*PLAN, "--from", "2027-01-04", "--json"])
    assert result.exit_code == 0
    data = one_json_object(result.stdout)
    assert data["days_to_low_reservoir"] == 90.0
    assert data["days_to_empty"] == 100.0
    assert data["stability_days"] == 180.0
    assert data["next_refill_days"] == 82.3
    assert data["next_refill_bound"] == "fast_flow_empty"
    assert data["next_refill_on"] == "2027-03-27"
    assert data["empty_on"] == "2027-04-14"


def test_plan_without_from_has_no_dates_and_a_table_for_people() -> None:
    data = one_json_object(runner.invoke(app, [*PLAN, "--json"]).stdout)
    assert "next_refill_on" not in data
    text = runner.invoke(app, PLAN).stdout
    assert "82.3 days" in text and "0.2000 mL/day" in text and "fast_flow_empty" in text


def test_plan_for_the_issue_11_pump_recommends_a_safe_day_and_takes_eos() -> None:
    # 40 mL at 400 µg/day of 2000 µg/mL: dry at 174.7 at the fast end; was day 180.
    args = ["plan", "--model", "peristaltic-40", "--reservoir-ml", "40",
            "--concentration-ug-per-ml", "2000", "--daily-dose-ug", "400", "--json"]  # fmt: skip
    data = one_json_object(runner.invoke(app, args).stdout)
    assert data["next_refill_days"] == 169.7 and data["next_refill_bound"] == "fast_flow_empty"
    data = one_json_object(runner.invoke(app, [*args, "--eos-in-days", "100"]).stdout)
    assert data["next_refill_days"] == 95.0 and data["next_refill_bound"] == "eos"
    data = one_json_object(runner.invoke(app, [*args, "--drug-expires-in-days", "90"]).stdout)
    assert data["next_refill_days"] == 90.0 and data["next_refill_bound"] == "drug_expiry"
    result = runner.invoke(app, [*args, "--eos-in-days", "-3"])
    assert result.exit_code == 2 and one_json_object(result.stdout)["field"] == "days_to_eos"


def test_plan_refuses_an_overfill_with_one_json_error() -> None:
    result = runner.invoke(
        app,
        [
            "plan",
            "--reservoir-ml",
            "21",
            "--concentration-ug-per-ml",
            "500",
            "--daily-dose-ug",
            "100",
            "--json",
        ],
    )
    assert result.exit_code == 2
    data = one_json_object(result.stdout)
    assert data["field"] == "reservoir_ml"
    assert "0 to 20 mL" in str(data["error"])


def test_plan_bad_input_without_json_goes_to_stderr() -> None:
    result = runner.invoke(app, [*PLAN[:-2], "--daily-dose-ug", "100", "--from", "4/1/2027"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "YYYY-MM-DD" in result.stderr
    unknown = runner.invoke(app, [*PLAN, "--model", "acme-99"])
    assert unknown.exit_code == 2 and "acme-99" in unknown.stderr


def test_check_flags_a_pocket_fill_sized_gap() -> None:
    result = runner.invoke(
        app,
        [
            "check",
            "--expected-ml",
            "3",
            "--withdrawn-ml",
            "1.8",
            "--delivered-since-fill-ml",
            "17",
            "--json",
        ],
    )
    data = one_json_object(result.stdout)
    assert data["discrepancy_ml"] == -1.2
    assert data["acknowledgement_required"] is True


def test_check_refuses_a_withdrawal_larger_than_the_reservoir() -> None:
    result = runner.invoke(
        app,
        [
            "check",
            "--expected-ml",
            "3",
            "--withdrawn-ml",
            "22",
            "--delivered-since-fill-ml",
            "17",
            "--json",
        ],
    )
    assert result.exit_code == 2
    assert one_json_object(result.stdout)["field"] == "withdrawn_ml"


def test_bridge_from_trimmed_catheter() -> None:
    # 0.2 + (110 − 10) × 0.0026 = 0.46 mL; 0.46 × 500 / 500 day = 11.04 h.
    result = runner.invoke(
        app,
        [
            "bridge",
            "--old-concentration-ug-per-ml",
            "500",
            "--new-concentration-ug-per-ml",
            "2000",
            "--daily-dose-ug",
            "500",
            "--catheter-trimmed-cm",
            "10",
            "--json",
        ],
    )
    data = one_json_object(result.stdout)
    assert data["dead_space_ml"] == 0.46
    assert data["bridge_duration_h"] == 11.04
    assert data["new_volume_per_day_ml"] == 0.25


def test_bridge_needs_exactly_one_catheter_option() -> None:
    result = runner.invoke(
        app,
        [
            "bridge",
            "--old-concentration-ug-per-ml",
            "500",
            "--new-concentration-ug-per-ml",
            "2000",
            "--daily-dose-ug",
            "500",
            "--json",
        ],
    )
    assert result.exit_code == 2
    assert "--catheter-trimmed-cm" in str(one_json_object(result.stdout)["error"])


def test_prime_json_and_revision() -> None:
    new = runner.invoke(
        app, ["prime", "--catheter-trimmed-cm", "10", "--concentration-ug-per-ml", "2000", "--json"]
    )
    assert one_json_object(new.stdout)["priming_volume_ml"] == 0.46
    revision = runner.invoke(
        app,
        [
            "prime",
            "--catheter-trimmed-cm",
            "10",
            "--concentration-ug-per-ml",
            "2000",
            "--pump-tubing-full",
            "--json",
        ],
    )
    assert one_json_object(revision.stdout)["priming_volume_ml"] == 0.26
