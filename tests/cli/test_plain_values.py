"""A plain command-line value reads exactly as typer's own (Pydantic) reading would, and an odd
one is left to typer, so its refusal keeps typer's words (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from itb.cli import app
from itb.cli.decimal_options import ML
from itb.cli.plain_values import NOT_PLAIN, plain_value

probe = typer.Typer()


@probe.command()
def values(
    text: str = typer.Option("x", "--text"),
    number: float = typer.Option(1.0, "--number"),
    count: int = typer.Option(1, "--count"),
    ranged: float = typer.Option(1.0, "--ranged", min=0.0, max=10.0),
    volume_ml: float = typer.Option(1.0, "--volume-ml", parser=ML),
    flag: bool = typer.Option(False, "--flag"),
) -> None:
    typer.echo(repr((text, number, count, ranged, volume_ml, flag)))


COMMAND = typer.main.get_command(probe)
PARAMS: dict[str | None, Any] = {param.name: param for param in COMMAND.params}
SAMPLES: dict[str, list[Any]] = {
    "text": ["abc", "", "  spaced  ", "12"],
    "number": [
        "1",
        "-2.5",
        "1e3",
        "0.1",
        "-0",
        "0.0",
        "2E-3",
        "007.5",
        "nan",
        "inf",
        "1e400",
        "1_0",
        "+5",
        "abc",
        "",
    ],
    "count": ["3", "-4", "-0", "007", "1.0", "+5", "99999999999999999999", "x"],
    "ranged": ["5", "0", "10", "-1", "11", "nan"],
    "volume_ml": ["17.5", "17,93", "17.93 mL", "2x0", "-1"],
    "flag": [True, False],
}


def reading(read: Callable[[], Any]) -> Any:
    """What a reading gives: the value, or the words of its refusal."""
    try:
        return read()
    except typer.BadParameter as refusal:
        return f"refused: {refusal.message}"


def typer_reading(name: str, value: Any) -> Any:
    """Typer's own reading of the value (Pydantic)."""
    from typer._click import Context
    from typer._coercion import build_runtime_param

    param, ctx = PARAMS[name], Context(COMMAND)
    return reading(
        lambda: build_runtime_param(param.type_descriptor)._coerce_value(value, param, ctx)
    )


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in SAMPLES.items() for value in values]
)
def test_a_plain_value_reads_as_typer_reads_it(name: str, value: Any) -> None:
    plain = reading(lambda: plain_value(PARAMS[name].type_descriptor, value))
    if plain is NOT_PLAIN:
        return  # typer reads it: nothing to compare
    expected = typer_reading(name, value)
    assert repr(plain) == repr(expected)  # the same value, type and sign (-0.0)
    assert type(plain) is type(expected)


PLAN = ["refill", "plan", "--concentration-ug-per-ml", "500", "--daily-dose-ug", "600"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([*PLAN, "--reservoir-ml", "20", "--margin-days", "abc"], "valid number"),
        ([*PLAN, "--reservoir-ml", "2x0"], "enter a number in mL"),
        (["serve", "--port", "70000"], "less than or equal to 65535"),
        (["serve", "--port", "1.5"], "valid integer"),
    ],
)
def test_a_value_that_is_not_plain_is_refused_in_typers_words(args: list[str], words: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert words in result.output


def test_plain_values_reach_the_command() -> None:
    args = [*PLAN, "--reservoir-ml", "17,5", "--margin-days", "4", "--model", "peristaltic-20"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert (plan["reservoir_ml"], plan["safety_margin_days"]) == (17.5, 4.0)
