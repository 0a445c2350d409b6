"""Commands that answer at once (issue 13): a command imports only what it uses. Checked as
behaviour, in a fresh interpreter's ``sys.modules``, never by timing (speed is bench/bench_cli)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from itb.cli import ItbGroup, app

HEAVY = (
    "sqlalchemy", "numpy", "fastapi", "pydantic", "scipy", "matplotlib", "rich", "cryptography",
)  # fmt: skip
REFILL_PLAN = [
    "refill", "plan", "--model", "peristaltic-20", "--reservoir-ml", "20",
    "--concentration-ug-per-ml", "500", "--daily-dose-ug", "600", "--json",
]  # fmt: skip
PROBE = """
import json, sys
from itb.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def imported_by(args: list[str]) -> dict[str, object]:
    """Run ``itb ARGS`` in a fresh interpreter; its exit code and the heavy libraries it loaded."""
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "args",
    [["--help"], ["pump", "models"], REFILL_PLAN, ["refill", "plan", "--help"]],
    ids=["help", "pump models", "refill plan", "refill plan --help"],
)
def test_quick_commands_load_no_heavy_library(args: list[str]) -> None:
    found = imported_by(args)
    assert found == {"code": 0, "heavy": []}


def test_help_lists_every_group_with_its_words_without_importing_it() -> None:
    found = imported_by(["--help"])
    assert found["heavy"] == []
    out = CliRunner().invoke(app, ["--help"]).output
    for name, entry in ItbGroup.table.items():
        assert f"{name} " in out
        assert entry.help.split(":")[0] in out


def test_every_group_in_the_table_loads_and_answers_help() -> None:
    for name in ItbGroup.table:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert f"itb {name}" in result.output


def test_a_mistyped_group_gets_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["refil", "plan"])
    assert result.exit_code == 2
    assert "Did you mean 'refill'?" in result.output


HELP_PROBE = """
import json, sys
from itb.cli import app
codes = []
for args in json.loads(sys.argv[1]):
    try:
        app(args)
    except SystemExit as exit:
        codes.append(exit.code)
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print(json.dumps({"codes": codes, "heavy": heavy}), file=sys.stderr)
"""


def _help_requests(group: str) -> list[list[str]]:
    """``itb GROUP --help`` and ``itb GROUP COMMAND --help`` for each of its commands."""
    command = app_command().get_command(None, group)  # imports it here, in the test process
    names = sorted(getattr(command, "commands", {}))
    return [[group, "--help"], *([group, name, "--help"] for name in names)]


def app_command() -> ItbGroup:
    import typer.main

    group = typer.main.get_command(app)
    assert isinstance(group, ItbGroup)
    return group


@pytest.mark.parametrize("group", list(ItbGroup.table))
def test_every_help_of_every_group_loads_no_heavy_library(group: str) -> None:
    requests = _help_requests(group)
    code = f"HEAVY = {HEAVY!r}\n{HELP_PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(requests)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = json.loads(done.stderr.strip().splitlines()[-1])
    assert found["codes"] == [0] * len(requests)
    assert found["heavy"] == [], f"itb {group} ... --help imports {found['heavy']}"
