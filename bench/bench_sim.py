"""Cohort simulator: 10,000 patient-years (1,000 patients x 10 years, pharmacology on) on two
local worker processes, this tree against the code of commit fb67da2 (before issue 13), both
run here, interleaved, each in its own interpreter of the same venv.

The old tree is unpacked with ``git archive`` into a temporary directory (removed afterwards) and
put first on PYTHONPATH. Without git or the commit (a source tarball, say) the old side is
skipped and said so. Goal: the new time at most half the old one.

The machine may be shared: rounds alternate old and new, and the figures are medians of the
rounds (the best round in brackets); CPU seconds of every process are printed beside the wall
time, as they move less with other work on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OLD_COMMIT = "fb67da2"
PATIENTS = 1000
YEARS = 10
SEED = 7
WORKERS = 2
ROUNDS = 3
GOAL_RATIO = 0.5
REPO = Path(__file__).resolve().parents[1]
COUNTS = ("refills", "missed_visits", "replacements", "catheter_faults", "motor_stalls")

RUN = """
import json, resource, sys
from itb.sim.config import parse_cohort
from itb.sim.engine import run_cohort
patients, years, seed, workers = (int(a) for a in sys.argv[1:5])
config = parse_cohort({"cohort": {"patients": patients, "years": years, "seed": seed}})
result = run_cohort(config, workers=workers)
summary = result.summary()
usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
cpu_s = sum(usage.ru_utime + usage.ru_stime for usage in usages)
print(json.dumps({"elapsed_s": result.elapsed_s, "cpu_s": cpu_s, "summary": summary}, default=str))
"""


def run_cohort_in(src: Path, workers: int) -> dict[str, object]:
    """One cohort run in a fresh interpreter importing ``itb`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    args = [str(a) for a in (PATIENTS, YEARS, SEED, workers)]
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def unpack_old(into: Path) -> Path | None:
    """The old commit's ``src`` under ``into``; None when git or the commit is not there."""
    if shutil.which("git") is None:
        return None
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", OLD_COMMIT, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    print(
        f"{PATIENTS:,} patients x {YEARS} years = {PATIENTS * YEARS:,} patient-years, "
        f"seed {SEED}, pharmacology on, {WORKERS} workers; median of {ROUNDS} interleaved runs"
    )
    with tempfile.TemporaryDirectory(prefix="itb-old-") as tmp:
        old_src = unpack_old(Path(tmp))
        new_times: list[float] = []
        old_times: list[float] = []
        new_cpu: list[float] = []
        old_cpu: list[float] = []
        new: dict[str, object] = {}
        old: dict[str, object] = {}
        for _ in range(ROUNDS):
            if old_src is not None:
                old = run_cohort_in(old_src, WORKERS)
                old_times.append(float(str(old["elapsed_s"])))
                old_cpu.append(float(str(old["cpu_s"])))
            new = run_cohort_in(REPO / "src", WORKERS)
            new_times.append(float(str(new["elapsed_s"])))
            new_cpu.append(float(str(new["cpu_s"])))
    one = run_cohort_in(REPO / "src", 1)
    new_s = statistics.median(new_times)
    one_s = float(str(one["elapsed_s"]))
    rate = PATIENTS * YEARS / new_s
    print(
        f"this tree, {WORKERS} workers:   {new_s:6.2f} s  (best {min(new_times):.2f} s; "
        f"{rate:,.0f} pump-years/s)"
    )
    print(f"this tree, 1 worker:    {one_s:6.2f} s  (scaling 1 -> {WORKERS}: {one_s / new_s:.2f}x)")
    if old_src is None:
        print(f"old code ({OLD_COMMIT}): not measured (no git or no such commit here)")
        return
    old_s = statistics.median(old_times)
    ratio = new_s / old_s
    verdict = "ok" if ratio <= GOAL_RATIO else "OVER"
    print(
        f"old code ({OLD_COMMIT}), {WORKERS} workers: {old_s:6.2f} s  (best {min(old_times):.2f} s)"
    )
    print(
        f"ratio new / old: {ratio:.2f} (best rounds {min(new_times) / min(old_times):.2f}; "
        f"goal <= {GOAL_RATIO:g}: {verdict})"
    )
    cpu_new, cpu_old = statistics.median(new_cpu), statistics.median(old_cpu)
    print(
        f"CPU seconds, every process (steadier on a busy machine): {cpu_new:.1f} new, "
        f"{cpu_old:.1f} old, ratio {cpu_new / cpu_old:.2f}"
    )
    old_summary = old["summary"]
    new_summary = new["summary"]
    assert isinstance(old_summary, dict) and isinstance(new_summary, dict)
    same = {key: old_summary[key] == new_summary[key] for key in COUNTS}
    print(
        "same counts as the old code (refills, missed visits, replacements, faults): "
        + ("yes" if all(same.values()) else f"no: {same}")
    )
