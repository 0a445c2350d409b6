"""Command-line polish (issue 14): model names are never cut, a refusal is printed in words
with its exit code, and an interrogation gives every number its unit and every date in words.
Through the real path: ``itb`` processes, and a real ``itb pump serve`` over telemetry."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from itb.pump.hardware import MODELS
from tests.pumpd.support import ITB, connection, itb, make_pump, running


def _itb_at_width(columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [ITB, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_pump_models_never_truncates_a_model_name_however_narrow_the_terminal() -> None:
    for columns in (40, 80, 200):
        result = _itb_at_width(columns, "pump", "models")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        for name in MODELS:
            # the whole name on one line, as the other commands ask for it
            assert any(name in line for line in lines), (columns, name, result.stdout)
        assert "…" not in result.stdout, (columns, result.stdout)
        assert all(len(line) <= columns for line in lines), (columns, result.stdout)
    narrow = _itb_at_width(40, "pump", "models").stdout
    assert "  reservoir: 20 mL" in narrow and "  battery: 740 mAh" in narrow


def test_interrogate_with_an_unpaired_key_prints_the_refusal_in_words_and_exits_1(
    tmp_path: Path,
) -> None:
    pump_dir, (_clinician,) = make_pump(tmp_path, "clinician")
    stranger = tmp_path / "stranger"
    itb("programmer", "keygen", "--out", str(stranger), check=True)
    with running(pump_dir) as pump:
        result = itb("programmer", "interrogate", *connection(pump, stranger))
    assert result.returncode == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.count("\n") == 0, result.stderr  # one line
    assert line.startswith("error: interrogate refused: ")
    assert line.endswith("(nothing was sent or changed; exit 1)")


def test_interrogate_without_json_gives_units_and_dates_in_words(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        result = itb("programmer", "interrogate", *connection(pump, clinician))
        refill = itb(
            "programmer", "refill", *connection(pump, clinician), "--withdrawn-ml", "20",
            "--volume-ml", "20", "--concentration-ug-per-ml", "500",
        )  # fmt: skip
    assert refill.returncode == 0, refill.stderr
    assert "None" not in refill.stdout
    # 20 mL at 1.2 mL/day: the dates as a person reads them, never an ISO string or None
    assert re.search(r"next refill: \d{1,2} [A-Z][a-z]+ 2027\n", refill.stdout), refill.stdout
    assert re.search(r"empty: \d{1,2} [A-Z][a-z]+ 2027\n", refill.stdout), refill.stdout
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "None" not in text and "{" not in text
    assert "continuous 600 µg/day" in text  # the scenario's program
    # 20 mL filled at 2027-01-04 08:00; the default alarm threshold is 2 mL
    assert re.search(r"reservoir\s+│ \d+\.\d{3} mL \(low-reservoir alarm at 2 mL\)", text), text
    assert re.search(r"ERI \(replace the pump\) \d{1,2} \w+ \d{4}, \d\d:\d\d", text), text
    assert re.search(r"read 4 January 2027, \d\d:\d\d", text), text
    assert re.search(r"last refill\s+│ 4 January 2027, 08:00", text), text  # the implant fill
