"""The cohort simulator: worked numbers, a policy question, reproducibility and scale-out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from itb.cli import app
from itb.sim.config import CohortError, load_cohort, parse_cohort
from itb.sim.engine import run_cohort
from itb.sim.patient import simulate_patient

runner = CliRunner()

NO_FAULTS: dict[str, float] = {
    "catheter_occlusion_per_year": 0.0,
    "motor_stall_per_year": 0.0,
    "low_battery_reset_per_year": 0.0,
    "premature_eri_per_year": 0.0,
    "premature_eos_per_year": 0.0,
}
QUIET = {  # no randomness in the pumps or the clinic: numbers can be worked by hand
    "cohort": {"patients": 1, "years": 1, "seed": 1},
    "population": {
        "spinal_fraction": 1.0,
        "age_min_years": 30,
        "age_max_years": 30,
        "flex_fraction": 0.0,
        "spinal_dose_p10_ug_per_day": 500.0,
        "spinal_dose_p90_ug_per_day": 500.0,
    },
    "pumps": {"models": {"peristaltic-20": 1.0}, "flow_error_sd_of_band": 0.0},
    "policy": {"refill_margin_days": 14, "late_visit_days_mean": 0.0, "missed_visit_rate": 0.0},
    "faults": NO_FAULTS,
}


def test_one_patient_worked_by_hand() -> None:
    # 500 µg/day in a 20 mL pump: 1000 µg/mL lasts (20 - 2) / 0.5 = 36 days, under the 60-day
    # target, so the clinic picks 2000 µg/mL: 0.25 mL/day, alarm on day 72. The refill plan is
    # never after the fast-flow empty date minus the 14-day margin: at +14.5% (S9) the 20 mL
    # last 20 / (0.25 × 1.145) = 69.87 days, so the refill is on day 55.87, then every 55.87
    # days: days 55.87, ..., 335.2 is six refills in a year.
    interval_days = 20.0 / (0.25 * 1.145) - 14.0
    out = simulate_patient(parse_cohort(QUIET), 0)
    assert out.concentration_ug_per_ml == 2000.0
    assert out.refills == 6
    assert out.refill_interval_mean_days == pytest.approx(interval_days, abs=1e-3)
    assert out.delivered_ug == pytest.approx(365.25 * 500.0, abs=0.5)  # a stroke is 0.5 µg
    assert sum(out.alarms.values()) == 0
    assert out.withdrawal_h == 0.0
    assert out.visit_days == pytest.approx([interval_days * k for k in range(1, 7)], abs=1e-3)


def test_a_missed_refill_runs_the_pump_dry_and_the_patient_into_withdrawal() -> None:
    # Margin 0: the refill falls on the alarm day, with 2 mL left, 8 days at 0.25 mL/day. A
    # missed visit rebooked 21 days later leaves the reservoir dry for 13 days.
    config = dict(
        QUIET,
        policy={
            "refill_margin_days": 0,
            "late_visit_days_mean": 0.0,
            "missed_visit_rate": 0.5,
            "rebook_days": 21,
        },
    )
    out = simulate_patient(parse_cohort(config), 0)
    assert out.missed_visits > 0
    assert out.alarms["empty_reservoir"] > 0
    assert out.no_delivery_h > 0
    assert out.withdrawal_h > 0  # 13 h after the stop at 500 µg/day (docs/pharmacology.md)
    assert out.withdrawal_h < out.no_delivery_h + 24


def test_a_dry_pump_for_days_counts_withdrawal_days_by_severity() -> None:
    # The same missed refill: 13 days dry. Early signs within the first day, severe ones from the
    # second (S98 S55, docs/pharmacology.md), until delivery resumes and the syndrome settles.
    config = dict(
        QUIET,
        policy={
            "refill_margin_days": 0,
            "late_visit_days_mean": 0.0,
            "missed_visit_rate": 0.5,
            "rebook_days": 21,
        },
    )
    out = simulate_patient(parse_cohort(config), 0)
    assert out.withdrawal_signs_h > 0 and out.withdrawal_severe_h > 0
    assert out.withdrawal_severe_h < out.no_delivery_h
    assert out.withdrawal_signs_h + out.withdrawal_severe_h < out.no_delivery_h + 3 * 24


def test_cutting_the_refill_margin_to_zero_means_more_withdrawal_days() -> None:
    base = {
        "cohort": {"patients": 60, "years": 3, "seed": 11},
        "faults": NO_FAULTS,
    }
    zero = run_cohort(parse_cohort({**base, "policy": {"refill_margin_days": 0}})).summary()
    two_weeks = run_cohort(parse_cohort({**base, "policy": {"refill_margin_days": 14}})).summary()
    assert zero["withdrawal_days"] > two_weeks["withdrawal_days"]
    assert zero["alarms"]["empty_reservoir"] > two_weeks["alarms"]["empty_reservoir"]


SMALL: dict[str, dict[str, Any]] = {
    "cohort": {"patients": 12, "years": 8, "seed": 5},
    "faults": {"catheter_occlusion_per_year": 0.2, "motor_stall_per_year": 0.1},
}


def test_identical_results_on_one_worker_two_processes_and_a_dask_cluster() -> None:
    from distributed import LocalCluster

    config = parse_cohort(SMALL)
    serial = run_cohort(config, chunk_size=5)
    processes = run_cohort(config, workers=2, chunk_size=5)
    with LocalCluster(  # type: ignore[no-untyped-call]  # distributed ships no annotations here
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask = run_cohort(config, cluster=cluster.scheduler_address, chunk_size=5)
    rows = [o.to_row() for o in serial.outcomes]
    assert rows == [o.to_row() for o in processes.outcomes]
    assert rows == [o.to_row() for o in dask.outcomes]
    assert serial.summary()["withdrawal_days"] == dask.summary()["withdrawal_days"]
    # the cohort exercised what it should: replacements over 8 years, and faults
    assert serial.summary()["replacements"] > 0
    assert serial.summary()["catheter_faults"] > 0


def test_same_seed_same_results_and_another_seed_differs() -> None:
    a = run_cohort(parse_cohort(SMALL)).summary()
    b = run_cohort(parse_cohort(SMALL)).summary()
    c = run_cohort(parse_cohort({**SMALL, "cohort": {**SMALL["cohort"], "seed": 6}})).summary()
    for key in ("withdrawal_days", "refills", "delivered_mg"):
        assert a[key] == b[key]
    assert a["delivered_mg"] != c["delivered_mg"]


def test_cli_json_outputs_and_plots(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort.toml"
    cohort.write_text(
        "[cohort]\npatients = 1000\nyears = 10\nseed = 7\n\n[policy]\nrefill_margin_days = 14\n"
        "late_visit_days_mean = 2.0\nmissed_visit_rate = 0.02\n",
        encoding="utf-8",
    )
    out_dir, plot_dir = tmp_path / "out", tmp_path / "plots"
    result = runner.invoke(
        app,
        [
            "sim",
            "run",
            str(cohort),
            "--patients",
            "8",
            "--years",
            "2",
            "--seed",
            "3",
            "--out",
            str(out_dir),
            "--plot",
            str(plot_dir),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["patient_years"] == 16.0
    assert set(summary["alarms"]) == {
        "low_reservoir",
        "empty_reservoir",
        "eri",
        "eos",
        "motor_stall",
        "memory_error",
        "low_battery_reset",
    }
    for key in ("withdrawal_days", "withdrawal_signs_days", "withdrawal_severe_days", "refills"):
        assert key in summary
    table = pq.read_table(out_dir / "patients.parquet")
    assert table.num_rows == 8
    assert sum(table.column("refills").to_pylist()) == summary["refills"]
    assert json.loads((out_dir / "summary.json").read_text())["refills"] == summary["refills"]
    assert sorted(p.name for p in plot_dir.iterdir()) == [
        "refill_intervals.png",
        "visits_per_week.png",
        "withdrawal_days.png",
    ]


def test_bad_cohort_files_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\nmissed_visit_rate = 1.5\n", encoding="utf-8")
    with pytest.raises(CohortError, match=r"policy\.missed_visit_rate"):
        load_cohort(bad)
    bad.write_text('[pumps]\nmodels = { "peristaltic-99" = 1.0 }\n', encoding="utf-8")
    result = runner.invoke(app, ["sim", "run", str(bad), "--json"])
    assert result.exit_code == 2
    assert "pumps.models" in result.output


def test_ctrl_c_keeps_the_finished_patients() -> None:
    config = parse_cohort({**SMALL, "cohort": {**SMALL["cohort"], "patients": 30}})
    calls = []

    def progress(done: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user presses Ctrl-C after the second chunk

    result = run_cohort(config, chunk_size=10, progress=progress)
    assert result.interrupted
    assert [o.index for o in result.outcomes] == list(range(20))
    assert result.summary()["patients"] == 20
    assert result.summary()["interrupted"] is True


@pytest.mark.parametrize(
    ("fault", "alarm", "counted"),
    [
        ("low_battery_reset", "low_battery_reset", "low_battery_resets"),
        ("premature_eri", "eri", "premature_eris"),
        ("premature_eos", "eos", "premature_eoss"),
    ],
)
def test_the_advisorys_battery_faults_are_counted_alarmed_and_end_in_a_replacement(
    fault: str, alarm: str, counted: str
) -> None:
    # about two faults a year over two years of a one-patient cohort: each raises its alarm
    # and the clinic replaces the pump (S5: as soon as possible)
    config = {
        **QUIET,
        "cohort": {"patients": 1, "years": 2, "seed": 3},
        "faults": {**NO_FAULTS, f"{fault}_per_year": 2.0},
    }
    out = simulate_patient(parse_cohort(config), 0)
    injected = getattr(out, counted)
    assert injected > 0
    assert out.alarms[alarm] >= injected
    assert out.replacements >= 1
    summary = run_cohort(parse_cohort(config)).summary()
    assert summary[counted] == injected
    if fault == "premature_eos":
        assert out.no_delivery_h > 0  # delivery stopped until the urgent replacement


def test_a_low_battery_reset_is_answered_by_reprogramming_at_the_next_visit() -> None:
    config = {
        **QUIET,
        "cohort": {"patients": 1, "years": 1, "seed": 4},
        "faults": {**NO_FAULTS, "low_battery_reset_per_year": 3.0},
        "pharmacology": {"enabled": False},
    }
    out = simulate_patient(parse_cohort(config), 0)
    assert out.low_battery_resets > 0
    # the reprogramming visits and replacements are clinic visits beyond the six refills
    assert len(out.visit_days) > out.refills
