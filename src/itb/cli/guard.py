"""The ``itb`` command's last line of defence: no traceback ever reaches a user.

Theory of operation: every sub-command answers bad input itself, one line naming the field and
exit 2. What slips through (a file that is a directory, an unwritable output, a date past year
9999, a TOML nested beyond reason, a scheduler that does not answer) reaches this guard, which
wraps the whole command group: an InputError or an OSError is one line naming the problem and
exit 2; an out-of-range number or date is one line and exit 2; anything else is a bug, reported
on one line with exit 70 (EX_SOFTWARE). ``ITB_DEBUG=1`` shows the traceback for developers.
Output into a pipe whose reader has gone (``itb pump models | head -1``) ends quietly, exit 1.

A usage error (an unknown option or command, a missing or malformed argument) is one line too,
naming the problem and where to read the usage, with click's exit 2: ``error: No such option:
--bogus (see 'itb pump simulate --help')``, not Rich's boxed multi-line panel. No arguments at
all still shows the help, as ``no_args_is_help`` asks.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

# typer vendors click: its usage errors are these classes, not the click package's.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from itb.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130
DEBUG_ENV = "ITB_DEBUG"


def describe_os_error(error: OSError) -> str:
    """``/proc/x.png: No such file or directory`` rather than ``[Errno 2] ...``."""
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return error.strerror or str(error) or type(error).__name__


def one_line(error: BaseException) -> tuple[str, int]:
    """The message and exit code for an error that reached the top of a command."""
    if isinstance(error, InputError):
        return str(error), EXIT_BAD_INPUT
    if isinstance(error, OSError):
        return describe_os_error(error), EXIT_BAD_INPUT
    if isinstance(error, OverflowError):
        return f"a number or date out of range ({error})", EXIT_BAD_INPUT
    if isinstance(error, RecursionError):
        return "input nested too deeply", EXIT_BAD_INPUT
    if isinstance(error, ValueError):
        return str(error), EXIT_BAD_INPUT
    from sqlalchemy.exc import OperationalError  # imported late: only the clinic needs it

    if isinstance(error, OperationalError):
        return f"database: {error.orig}", EXIT_BAD_INPUT
    return f"internal error ({type(error).__name__}: {error}); please report it", EXIT_BUG


def _flat(text: str) -> str:
    return " ".join(text.split())


def usage_line(error: ClickException) -> str:
    """One line for a usage error: the problem, and the help to read."""
    ctx = getattr(error, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"error: {_flat(error.format_message()).rstrip('.')}{where}"


class GuardedGroup(TyperGroup):
    """The ``itb`` group: its sub-commands run inside :func:`one_line`'s guard."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """The top level's own options: a usage error there is one line too."""
        try:
            return super().make_context(*args, **kwargs)
        except ClickException as error:
            raise _one_line_usage(error) from None

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except ClickException as error:  # a sub-command's usage, parsed inside this invoke
            raise _one_line_usage(error) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # the command's own exit, already explained
        except BrokenPipeError:
            # the reader left (``itb ... | head -1``): nothing to tell it; click ends quietly
            # with exit 1, as it does when the help meets a closed pipe
            raise
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            message, code = one_line(error)
            sys.stderr.write(f"error: {_flat(message)}\n")
            raise typer.Exit(code) from None


def _one_line_usage(error: ClickException) -> BaseException:
    """The exception that ends the command after a usage error was told in one line (no
    arguments at all: the help, untouched)."""
    if isinstance(error, NoArgsIsHelpError):
        return error
    sys.stderr.write(usage_line(error) + "\n")
    return typer.Exit(error.exit_code)
