"""A command group that imports a sub-command's module only when that sub-command is named.

Why: importing every group at start cost 1.5 s a command (SQLAlchemy for ``itb refill plan``,
NumPy for ``itb --help``). Each entry of :class:`LazyGroup`'s table names a sub-command, where it
lives (``"module:attr"``, a ``typer.Typer`` or a plain function) and its one-line help, so
``itb --help`` lists every group without importing any of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, ClassVar, cast

import typer
import typer.main

# typer vendors click: its usage errors are these classes, not the click package's.
from typer._click.exceptions import UsageError

from itb.cli.guard import GuardedGroup
from itb.cli.plain_values import read_plainly

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True, slots=True)
class Lazy:
    """One sub-command: ``target`` is ``"module:attr"``; ``help`` is shown by ``itb --help``."""

    target: str
    help: str


def load(name: str, entry: Lazy) -> Any:  # typer's vendored click.Command
    """Import the sub-command's module and turn its Typer app (or function) into a command."""
    module_name, _, attr = entry.target.partition(":")
    found = getattr(importlib.import_module(module_name), attr)
    # built as a parent's add_typer/command builds it: a one-command Typer stays a group
    parent = typer.Typer(add_completion=False)
    parent.callback()(_no_options)
    if isinstance(found, typer.Typer):
        parent.add_typer(found, name=name)
    else:
        parent.command(name)(found)
    group: Any = typer.main.get_command(parent)
    command = group.commands[name]
    read_plainly(command)
    _plain_help(command)
    return command


def _plain_help(command: Any) -> None:
    """Plain help for the command and everything under it, as ``itb --help`` has: Rich's help
    renderer alone costs several bare interpreter starts (issue 13)."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def _no_options() -> None:
    """The stand-in parent's callback: makes it a group, whatever it holds."""


class LazyGroup(GuardedGroup):
    """A guarded group whose sub-commands come from ``table``, loaded on first use."""

    table: ClassVar[dict[str, Lazy]] = {}

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        read_plainly(self)  # the group's own options, shell completion's added after __init__
        return super().make_context(*args, **kwargs)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.table if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.table:
            self.commands[cmd_name] = load(cmd_name, self.table[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from the table's help strings: no sub-command is imported."""
        rows = [(name, entry.help) for name, entry in self.table.items()]
        rows += [
            (name, command.get_short_help_str())
            for name, command in self.commands.items()
            if name not in self.table and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """As click's, with "did you mean" drawn from the table too."""
        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as error:
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                suggestions = ", ".join(repr(match) for match in matches)
                error.message = f"{error.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


class _LazyConsole:
    """A Rich console made on first use: importing Rich costs more than a bare interpreter
    start, and a ``--json`` answer never draws with it."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


def lazy_console(**options: Any) -> Console:
    """``rich.console.Console(**options)``, built when first used."""
    return cast("Console", _LazyConsole(options))
