"""`itb pump models` answers in plain aligned text without loading Rich (issue 13), and its
table is a table people can read: one line per model, every value under its column's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from itb.cli.text_table import block_lines, fitted_lines, table_lines
from itb.pump.hardware import MODELS

PROBE = """
import json, sys
from itb.cli import app
try:
    app(["pump", "models"])
except SystemExit as exit:
    code = exit.code
loaded = sorted(n for n in sys.modules if n.split(".")[0] in ("rich", "pydantic"))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def test_pump_models_loads_neither_rich_nor_pydantic() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=False
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"code": 0, "loaded": []}
    assert "Pump models" in done.stdout
    for name in MODELS:
        assert name in done.stdout


def test_every_value_starts_under_its_column_name() -> None:
    lines = table_lines("Models", ["name", "flow"], [["valve-gated-20", "0 to 28.8 mL/day"]])
    assert lines[0] == "Models"
    header, rule, row = lines[1:]
    assert row.index("0 to 28.8") == header.index("flow")
    assert rule.split() == ["-" * len("valve-gated-20"), "-" * len("0 to 28.8 mL/day")]


def test_a_table_too_wide_for_the_terminal_becomes_blocks_with_whole_names() -> None:
    columns, rows = ["name", "flow"], [["peristaltic-20", "0.048 to 24 mL/day"]]
    assert fitted_lines("Models", columns, rows, width=80) == table_lines("Models", columns, rows)
    narrow = fitted_lines("Models", columns, rows, width=20)
    assert narrow == block_lines(columns, rows) == ["peristaltic-20", "  flow: 0.048 to 24 mL/day"]


def test_into_a_pipe_the_models_are_a_table_one_line_each() -> None:
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-c", "from itb.cli import main; main()", "pump", "models"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[1].split()[0] == "name"
    for name in MODELS:  # grep finds a model's whole row
        [row] = [line for line in lines if line.startswith(name + " ")]
        assert "mL/day" in row and "mAh" in row
