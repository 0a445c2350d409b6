"""The safety-case check fails for each way a hazard can lose its proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.safety_case import HazardLogError, junit_outcomes, load, main, problems, render

THIS = "tests/tools/test_safety_case.py"

LOG = """
[[hazard]]
id = "H1"
title = "An overdose"
harm = "overdose"
phase = "refill"
causes = ["a typo"]
mitigation = ["itb.pump.hardware.PumpModel.check_fill"]
tests = ["tests/tools/test_safety_case.py::test_a"]

[[hazard]]
id = "H2"
title = "Known, tracked"
harm = "overdose"
phase = "titration"
causes = ["stacking"]
status = "open"
issue = "11"
"""


def junit(tmp_path: Path, cases: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
    return path


def case(name: str, inner: str = "") -> str:
    return f'<testcase classname="tests.tools.test_safety_case" name="{name}">{inner}</testcase>'


def log_file(tmp_path: Path, text: str = LOG) -> Path:
    path = tmp_path / "hazards.toml"
    path.write_text(text)
    return path


def test_a_mitigated_hazard_whose_test_passed_is_proven_and_an_open_one_is_not_counted(
    tmp_path: Path,
) -> None:
    hazards = load(log_file(tmp_path))
    assert problems(hazards, junit_outcomes(junit(tmp_path, case("test_a")))) == []
    assert [h.id for h in hazards if h.open] == ["H2"]
    assert "1 hazards mitigated, 1 open" in render(hazards)


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        ("", f"H1: test {THIS}::test_a did not run in this run"),
        (case("test_a", "<skipped/>"), f"H1: test {THIS}::test_a was skipped"),
        (case("test_a", "<failure/>"), f"H1: test {THIS}::test_a failed"),
        # one failing case of a parametrised test fails the hazard
        (case("test_a[1]") + case("test_a[2]", "<error/>"), f"H1: test {THIS}::test_a failed"),
    ],
)
def test_a_test_that_did_not_pass_in_this_run_fails_the_check(
    tmp_path: Path, cases: str, expected: str
) -> None:
    hazards = load(log_file(tmp_path))
    assert problems(hazards, junit_outcomes(junit(tmp_path, cases))) == [expected]


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        (case("test_a[sqlite]") + case("test_a[postgres]", "<failure/>"), []),
        (case("test_a[postgres]"), [f"H1: test {THIS}::test_a[sqlite] did not run in this run"]),
        (case("test_a[sqlite]", "<skipped/>"), [f"H1: test {THIS}::test_a[sqlite] was skipped"]),
    ],
)
def test_a_hazard_may_name_one_case_of_a_parametrised_test(
    tmp_path: Path, cases: str, expected: list[str]
) -> None:
    text = LOG.replace('::test_a"', '::test_a[sqlite]"')
    hazards = load(log_file(tmp_path, text))
    assert problems(hazards, junit_outcomes(junit(tmp_path, cases))) == expected


def test_a_mitigation_that_names_no_real_code_fails_the_check(tmp_path: Path) -> None:
    text = LOG.replace("PumpModel.check_fill", "PumpModel.check_fil")
    hazards = load(log_file(tmp_path, text))
    found = problems(hazards, junit_outcomes(junit(tmp_path, case("test_a"))))
    assert found == [
        "H1: mitigation itb.pump.hardware.PumpModel.check_fil does not resolve to real code"
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('harm = "overdose"\nphase = "refill"', 'harm = "bad"\nphase = "refill"', "harm='bad'"),
        ('issue = "11"', "", "names the issue"),
        ('id = "H2"', 'id = "H1"', "duplicate hazard id H1"),
        ('phase = "refill"', 'phase = "refill"\nowner = "x"', "unknown keys ['owner']"),
    ],
)
def test_a_malformed_log_is_refused_naming_the_problem(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(HazardLogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(log_file(tmp_path, LOG.replace(old, new, 1)))


def test_a_missing_or_empty_junit_file_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "junit.xml"
    empty.write_text("")
    for path in (empty, tmp_path / "missing.xml"):
        assert main(["check", str(path)]) == 1
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and "not a readable JUnit XML file" in out, out


def test_the_repository_log_loads_and_its_rendering_is_up_to_date() -> None:
    hazards = load(Path("safety/hazards.toml"))
    assert Path("docs/safety.md").read_text(encoding="utf-8") == render(hazards)
    assert all(h.mitigation and h.tests for h in hazards if not h.open)
