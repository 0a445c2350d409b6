"""No traceback ever reaches a user (issue 12): every command, given a bad file, path, number
or date, answers one line on stderr naming the problem and exits non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.cli import app

EXAMPLES = Path(__file__).parents[2] / "examples"
SCENARIO = str(EXAMPLES / "continuous-refill.toml")
COHORT = str(EXAMPLES / "cohort.toml")
REFILL = ["--reservoir-ml", "20", "--concentration-ug-per-ml", "500", "--daily-dose-ug", "300"]
SCORES = ["--dose-ug", "50", "--baseline-mas", "3", "--scores", "1=2,2=2,3=1,4=1"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")  # tomllib recursed and crashed
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    directory = tmp_path / "a-directory"
    directory.mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return {
        "deep": str(deep),
        "binary": str(binary),
        "dir": str(directory),
        "missing": str(tmp_path / "missing.toml"),
        "under_file": str(blocker / "out"),  # a path whose parent is a file: never writable
    }


CASES: list[tuple[str, list[str]]] = [
    # input files: nested, binary, a directory, missing
    *[
        (f"{command} {kind}", [*command.split(), f"{{{kind}}}"])
        for command in ("pump simulate", "pk program", "sim run")
        for kind in ("deep", "binary", "dir", "missing")
    ],
    # numbers and dates out of any calendar
    ("simulate --until 999999999y", ["pump", "simulate", SCENARIO, "--until", "999999999y"]),
    ("simulate --until 1e400y", ["pump", "simulate", SCENARIO, "--until", "1e400y"]),
    ("refill plan --from 9999-12-31", ["refill", "plan", *REFILL, "--from", "9999-12-31"]),
    ("refill plan tiny dose", ["refill", "plan", *REFILL[:-1], "1e-300", "--from", "2027-01-04"]),
    ("refill plan NaN dose", ["refill", "plan", *REFILL[:-1], "nan"]),
    ("pk bolus NaN", ["pk", "bolus", "--dose-ug", "nan"]),
    ("pk program --days inf", ["pk", "program", SCENARIO, "--days", "inf"]),
    ("screening bad time", ["screening", "assess", *SCORES, "--given-at", "9999-99-99T23:59"]),
    ("screening NaN baseline", ["screening", "assess", *SCORES[:3], "nan", *SCORES[4:]]),
    # outputs that cannot be written, found before the work starts
    ("sim --out unwritable", ["sim", "run", COHORT, "--patients", "2", "--out", "{under_file}"]),
    ("sim --plot unwritable", ["sim", "run", COHORT, "--patients", "2", "--plot", "{under_file}"]),
    ("pk bolus --plot dir", ["pk", "bolus", "--dose-ug", "50", "--plot", "{dir}"]),
    ("pk bolus --plot unwritable", ["pk", "bolus", "--dose-ug", "50", "--plot", "{under_file}"]),
    ("screening --plot unwritable", ["screening", "assess", *SCORES, "--plot", "{under_file}"]),
    # state directories and keys that are not there
    ("pump serve --state missing", ["pump", "serve", "--state", "{missing}"]),
    ("pump pair --state missing", ["pump", "pair", "--state", "{missing}", "--programmer",
                                   "{missing}", "--role", "clinician"]),
    ("user add bad database", ["user", "add", "bob", "--role", "nurse", "--password-stdin",
                               "--database-url", "sqlite:///{under_file}"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "argv"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_on_stderr_and_a_non_zero_exit(
    files: dict[str, str], name: str, argv: list[str]
) -> None:
    args = [a.format(**files) for a in argv]
    result = CliRunner().invoke(app, args, input="a-password-1\n", catch_exceptions=False)
    assert result.exit_code != 0, (name, result.output)
    assert "Traceback" not in result.output + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (name, result.stderr)
    assert lines[0].startswith("error"), lines


def test_an_unwritable_out_is_refused_before_the_simulation_runs(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import itb.sim.engine

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulation ran before the output was checked")

    monkeypatch.setattr(itb.sim.engine, "run_cohort", never)
    result = CliRunner().invoke(app, ["sim", "run", COHORT, "--out", files["under_file"]])
    assert result.exit_code == 2 and "--out" in result.stderr


def test_the_guard_turns_an_unexpected_error_into_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import itb.pharmacology.model

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(itb.pharmacology.model, "typical_patient", broken)
    result = CliRunner().invoke(app, ["pk", "bolus", "--dose-ug", "50"], catch_exceptions=False)
    assert result.exit_code == 70
    assert result.stderr.count("\n") == 1 and "internal error" in result.stderr


USAGE_ERRORS: list[tuple[str, list[str], str]] = [
    ("unknown option", ["pump", "simulate", SCENARIO, "--bogus"], "No such option: --bogus"),
    ("unknown top-level option", ["--bogus"], "No such option: --bogus"),
    ("unknown command", ["pump", "simulat"], "No such command 'simulat'"),
    ("missing argument", ["pump", "simulate"], "Missing argument"),
    ("missing option", ["refill", "plan"], "Missing option '--reservoir-ml'"),
    ("not a number", ["refill", "plan", *REFILL[:1], "abc", *REFILL[2:]], "--reservoir-ml"),
]


@pytest.mark.parametrize(
    ("name", "argv", "problem"), USAGE_ERRORS, ids=[c[0] for c in USAGE_ERRORS]
)
def test_a_usage_error_is_one_line_naming_the_problem_and_exit_2(
    name: str, argv: list[str], problem: str
) -> None:
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert result.exit_code == 2, (name, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (name, result.stderr)  # not Rich's boxed panel
    assert lines[0].startswith("error: ") and problem in lines[0], lines
    assert "--help" in lines[0] and "╭" not in result.stderr
    assert result.stdout == ""


def test_a_group_without_a_command_still_shows_its_help() -> None:
    result = CliRunner().invoke(app, ["pump"], catch_exceptions=False)
    assert "simulate" in result.output and "error:" not in result.output
