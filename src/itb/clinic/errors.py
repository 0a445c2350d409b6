"""Errors the web layer maps to HTTP answers.

Bad input is :class:`itb.errors.InputError` (HTTP 422), the one base from the firmware to the
clinic: ``exc.field`` names the field, ``exc.reason`` says why. It is re-exported here so that
``from itb.clinic.errors import InputError`` keeps naming that same class.
"""

from __future__ import annotations

from itb.errors import InputError

__all__ = ["ConflictError", "InputError", "NotFoundError", "SerialMismatchError"]


class NotFoundError(LookupError):
    pass


class SerialMismatchError(Exception):
    """The pump that answered is not the one on the patient's record; nothing was stored."""


class ConflictError(Exception):
    """The request cannot be done in the current state (e.g. a pump command still pending)."""
