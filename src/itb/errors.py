"""One base for every bad-input error, from the firmware to the clinic.

A unit error, a limit, a program, a refused pump command, a malformed message: each says which
``field`` was wrong and the ``reason`` (the allowed range or the rule it broke), and each changed
nothing. The CLI prints it on one line and exits non-zero; the web answers 4xx naming the field.
Callers read ``exc.field`` instead of parsing it out of the message text.
"""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input: ``field`` names what was wrong, ``reason`` says why; nothing was changed.

    ``str(exc)`` is ``message`` when one is given (some errors read better as one sentence),
    otherwise ``"{field}: {reason}"``.
    """

    def __init__(self, field: str, reason: str, message: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(message if message is not None else f"{field}: {reason}")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Picklable across processes (the cohort simulator's workers) with its field intact.
        return (type(self), (self.field, self.reason, str(self)))
