"""Errors the web layer maps to HTTP answers."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names the field and the allowed range; nothing was changed (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class NotFoundError(LookupError):
    pass


class SerialMismatchError(Exception):
    """The pump that answered is not the one on the patient's record; nothing was stored."""


class ConflictError(Exception):
    """The request cannot be done in the current state (e.g. a pump command still pending)."""
