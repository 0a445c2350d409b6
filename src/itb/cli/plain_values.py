"""Command-line values read without Pydantic when the reading is plain.

Why: typer coerces every value through a Pydantic TypeAdapter, and importing Pydantic alone
costs more than a bare interpreter start four times over, which kept ``itb refill plan`` above
ten times a bare start (issue 13). A plain value (text, a flag, an ordinary decimal number, or a
value read by the option's own ``parser=``) is read here, giving exactly what typer's reading
gives; anything else (an empty or odd number such as ``nan``, ``1_000`` or ``1e400``, an
out-of-range number, a choice, a path, a date, a list) goes to typer's own reading, so every
refusal keeps typer's words. Reaches into typer's coercion layer: pinned typer, checked by
tests/cli/test_plain_values.py against typer's own reading.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from typer._click import Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param

# Decimal forms every reader agrees on: no sign but minus, no leading zeros, no bare dot.
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d{1,3})?")
_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,17})")


class _NotPlain:
    """Marker: typer's own reading decides."""


NOT_PLAIN = _NotPlain()


def plain_value(descriptor: TypeDescriptor, value: Any) -> Any:
    """The value typer would read, or :data:`NOT_PLAIN` when typer must read it itself."""
    info = descriptor.parameter_info
    if info.parser is not None:
        try:
            return info.parser(value)
        except ValueError:  # typer words it as a validation error: let typer read it
            return NOT_PLAIN
    annotation = descriptor.annotation
    if annotation is bool or annotation is str:
        return value if type(value) is annotation else NOT_PLAIN
    if annotation is float or annotation is int:
        return _plain_number(annotation, descriptor, value)
    return NOT_PLAIN


def _plain_number(kind: type[float] | type[int], descriptor: TypeDescriptor, value: Any) -> Any:
    info = descriptor.parameter_info
    if info.clamp or descriptor.is_choice:
        return NOT_PLAIN
    if type(value) is kind:
        number = value
    elif isinstance(value, str) and (_DECIMAL if kind is float else _INTEGER).fullmatch(value):
        number = kind(value)
    else:
        return NOT_PLAIN
    if not math.isfinite(number):
        return NOT_PLAIN
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        return NOT_PLAIN  # typer's refusal names the range
    return number


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """Typer's runtime reading of one parameter, plain values first."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        plain = plain_value(self.descriptor, value)
        if plain is not NOT_PLAIN:
            return plain
        full = build_runtime_param(self.descriptor)
        param._runtime_param = full  # this parameter is not plain: typer's reading from now on
        return full._coerce_value(value, param, ctx)


def read_plainly(command: Any) -> None:
    """Give each single-valued parameter of ``command`` (and its sub-commands) the plain reading
    first. A parameter typer already read, or one of a kind typer no longer has, is left alone."""
    # --help is made on first use; made now (and cached by click) so that it reads plainly too
    help_option = command.get_help_option(Context(command, **command.context_settings))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        _plain_first(param)
    for sub in getattr(command, "commands", {}).values():
        read_plainly(sub)


def _plain_first(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if not isinstance(descriptor, TypeDescriptor) or param.multiple or param.nargs != 1:
        return
    if getattr(param, "_runtime_param", False) is None:
        param._runtime_param = PlainRuntimeParam(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            descriptor=descriptor,
        )
