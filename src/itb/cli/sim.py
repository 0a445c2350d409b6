"""``itb sim``: cohorts of virtual patients over years."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from itb.cli.outputs import check_writable_dir
from itb.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from itb.sim.config import CohortConfig
    from itb.sim.engine import CohortResult

# The simulator (NumPy, Pydantic) and Rich are imported inside the command: together they cost
# more than the whole budget of ``itb sim --help`` (issue 13).

app = typer.Typer(
    help="Cohort simulator: many patients and pumps over years.", no_args_is_help=True
)


@app.command("run")
def run(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    cohort_file: Path = typer.Argument(..., help="Cohort TOML (docs/sim.md)."),
    patients: int | None = typer.Option(None, help="Override [cohort] patients."),
    years: float | None = typer.Option(None, help="Override [cohort] years."),
    seed: int | None = typer.Option(None, help="Override [cohort] seed."),
    out: Path | None = typer.Option(
        None, help="Write patients.parquet/.csv and summary.json here."
    ),
    plot: Path | None = typer.Option(None, help="Write plots (PNG) into this directory."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Local worker processes (default: every local core)."
    ),
    cluster: str | None = typer.Option(None, help="Dask scheduler address (tcp://host:port)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Simulate a cohort and report withdrawal days, alarms, refills and replacements."""
    from rich.console import Console

    from itb.sim.config import CohortError, load_cohort

    err = Console(stderr=True)
    try:
        config = load_cohort(cohort_file).with_overrides(patients, years, seed)
    except CohortError as error:
        err.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    # before the simulation, not after it: an unwritable output would waste the whole run
    if out is not None:
        check_writable_dir(out, "--out")
    if plot is not None:
        check_writable_dir(plot, "--plot")
    try:
        result = _simulate(config, workers, cluster, err, as_json)
    except OSError as error:
        if cluster is None:
            raise
        reason = error.strerror or str(error)
        raise InputError(
            "--cluster", f"{cluster}: the scheduler cannot be reached ({reason})"
        ) from None
    _report(result, out, plot, as_json)
    if result.interrupted:
        err.print("[yellow]interrupted: the finished patients' results are kept[/yellow]")
        raise typer.Exit(130)


def _simulate(
    config: CohortConfig, workers: int | None, cluster: str | None, err: Console, as_json: bool
) -> CohortResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from itb.sim.engine import run_cohort

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,  # no bar left behind: an error after it stays one line
        disable=as_json,
    ) as bar:
        task = bar.add_task("patients", total=config.cohort.patients)
        local = workers if workers is not None else (os.cpu_count() or 1)
        return run_cohort(
            config, workers=local, cluster=cluster, progress=lambda k: bar.advance(task, k)
        )


def _report(result: CohortResult, out: Path | None, plot: Path | None, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from itb.sim.outputs import write_plots, write_results

    summary = result.summary()
    if out is not None:
        summary["files"] = write_results(result, out)
    if plot is not None:
        summary["plots"] = write_plots(result, plot)
    if as_json:
        print(json.dumps(summary))
    else:
        table = Table(title=f"Cohort: {summary['patients']} patients × {summary['years']:g} years")
        table.add_column("outcome")
        table.add_column("value", justify="right")
        for key, value in summary.items():
            if key in ("files", "plots"):
                continue
            text = (
                json.dumps(value)
                if isinstance(value, dict)
                else (f"{value:,.2f}" if isinstance(value, float) else str(value))
            )
            table.add_row(key, text)
        Console().print(table)
