"""Commands that answer at once: each command's median wall time, a whole process, against a
bare ``python -c pass`` of the same interpreter, measured interleaved in the same run (one round
runs every command once, so a busy machine slows them all alike). Goal: each <= 10x. The rows:
``itb --help``, ``itb pump models`` and ``itb refill plan``, then each group's ``--help``."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 21
GOAL_RATIO = 10.0
REFILL_PLAN = [
    "refill",
    "plan",
    "--model",
    "peristaltic-20",
    "--reservoir-ml",
    "20",
    "--concentration-ug-per-ml",
    "500",
    "--daily-dose-ug",
    "600",
    "--json",
]


def itb_script() -> str:
    """The installed console script beside this interpreter, as a user runs it."""
    return str(Path(sys.executable).parent / "itb")


def commands() -> dict[str, list[str]]:
    """The three the issue names, then every group's help (a group imports its own module:
    the help must not pay for the libraries its commands use)."""
    from itb.cli import ItbGroup

    itb = itb_script()
    table = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "itb --help": [itb, "--help"],
        "itb pump models": [itb, "pump", "models"],
        "itb refill plan ... --json": [itb, *REFILL_PLAN],
    }
    for group in ItbGroup.table:
        table[f"itb {group} --help"] = [itb, group, "--help"]
    return table


def wall_s(argv: list[str]) -> float:
    env = {**os.environ, "COLUMNS": "100"}
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - started


def measure(rounds: int = ROUNDS) -> dict[str, float]:
    """Median wall seconds of each command, runs interleaved round by round."""
    table = commands()
    for argv in table.values():  # warm the file cache and the bytecode cache
        wall_s(argv)
    times: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(rounds):
        for name, argv in table.items():
            times[name].append(wall_s(argv))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    medians = measure()
    base_s = medians.pop("python -c pass")
    print(
        f"median of {ROUNDS} interleaved runs each, whole processes; baseline python -c pass "
        "(the machine may be shared: compare the ratios, not the milliseconds)"
    )
    print(f"  {'python -c pass':28} {base_s * 1e3:7.1f} ms")
    for name, seconds in medians.items():
        ratio = seconds / base_s
        verdict = "ok" if ratio <= GOAL_RATIO else "OVER"
        print(
            f"  {name:28} {seconds * 1e3:7.1f} ms  = {ratio:4.1f}x bare start "
            f"(goal <= {GOAL_RATIO:g}x: {verdict})"
        )
