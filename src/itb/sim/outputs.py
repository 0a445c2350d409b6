"""Writing a cohort's results: per-patient table (Parquet and CSV), summary JSON, plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from itb.sim.engine import CohortResult


def write_results(result: CohortResult, out_dir: Path) -> dict[str, str]:
    """Write patients.parquet, patients.csv and summary.json; return their paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [o.to_row() for o in result.outcomes]
    paths = {
        "parquet": out_dir / "patients.parquet",
        "csv": out_dir / "patients.csv",
        "summary": out_dir / "summary.json",
    }
    if rows:
        pq.write_table(pa.Table.from_pylist(rows), _temp(paths["parquet"]))
        with _temp(paths["csv"]).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        _temp(paths["parquet"]).replace(paths["parquet"])
        _temp(paths["csv"]).replace(paths["csv"])
    summary = result.summary()
    _temp(paths["summary"]).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _temp(paths["summary"]).replace(paths["summary"])
    return {k: str(v) for k, v in paths.items()}


def _temp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_plots(result: CohortResult, plot_dir: Path) -> list[str]:
    """Histograms a planner reads: refill intervals, withdrawal days, clinic visits per week."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    outcomes = result.outcomes
    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        path = plot_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    fig, ax = plt.subplots(figsize=(7, 4))
    intervals = [
        o.refill_interval_mean_days
        for o in outcomes
        if o.refill_interval_mean_days == o.refill_interval_mean_days
    ]
    ax.hist(intervals, bins=30, color="#3b7dd8")
    ax.set_xlabel("mean refill interval per patient (days)")
    ax.set_ylabel("patients")
    ax.set_title("Refill intervals")
    save(fig, "refill_intervals.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist([o.withdrawal_h / 24.0 for o in outcomes], bins=30, color="#d8563b")
    ax.set_xlabel("days with the effect below the withdrawal threshold, per patient")
    ax.set_ylabel("patients")
    ax.set_yscale("log")
    ax.set_title("Withdrawal exposure")
    save(fig, "withdrawal_days.png")

    weeks = max(1, int(result.config.cohort.years * 365.25 // 7) + 1)
    counts = [0] * weeks
    for o in outcomes:
        for day in o.visit_days:
            counts[min(int(day // 7), weeks - 1)] += 1
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(range(weeks), counts, color="#2e8b57", linewidth=0.8)
    ax.set_xlabel("week since the cohort start")
    ax.set_ylabel("clinic visits (refills, replacements, repairs)")
    ax.set_title("Clinic visits per week")
    save(fig, "visits_per_week.png")
    return written
