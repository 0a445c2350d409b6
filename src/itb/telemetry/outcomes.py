"""What became of a command, and how an uncertain one is settled from the pump's event log.

Theory of operation
-------------------
A command sent over a lossy link ends one of four ways (:class:`Outcome`): applied and answered,
rejected by the firmware, refused by the link, or *uncertain*: it left, but no answer came, so it
may or may not have been applied. The programmer never guesses. At a later session it reads the
pump's event log, where the pump records every applied command with ``data["request_id"]``, and
:func:`resolve_uncertain` settles it: found applied, found rejected or absent (not applied: its
session is gone, so it can no longer be applied), or unknown when the log ring overflowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the command line's help reads Outcome without them
    from itb.telemetry.responses import LogRecord, Response
    from itb.telemetry.validation import JSON


class Outcome(StrEnum):
    DONE = "done"  # applied, answer received
    REJECTED = "rejected"  # the firmware refused it; nothing changed
    REFUSED = "refused"  # the link refused it (role, replay, ...); nothing changed
    UNCERTAIN = "uncertain"  # sent, but no answer: maybe applied; resolve from the event log


@dataclass(frozen=True, slots=True)
class CommandResult:
    request_id: str
    outcome: Outcome
    response: Response | None = None
    detail: str = ""
    summary: dict[str, JSON] | None = None  # the pump's prepare summary (two-step commands)


class Resolution(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"  # the entries that could say were lost from the pump's log ring


def resolve_uncertain(
    request_id: str, entries: Iterable[LogRecord], *, lost_count: int = 0
) -> Resolution:
    """Settle an uncertain command from the pump's event log read at a later session.

    The pump logs each applied command with ``data["request_id"]`` (and, if it logs refusals,
    ``data["outcome"] = "rejected"``). Read the whole log since before the command was sent.
    A command not found is NOT_APPLIED: its session is gone, so it can no longer be applied
    (the pump applies only what arrives in a live session, and the programmer never resends an
    uncertain command in a new session without asking the user). If the log ring overflowed
    (``lost_count > 0``), absence proves nothing: UNKNOWN.
    """
    found_rejected = False
    for entry in entries:
        if entry.data.get("request_id") != request_id:
            continue
        if entry.data.get("outcome", "applied") == "applied":
            return Resolution.APPLIED
        found_rejected = True
    if found_rejected:
        return Resolution.NOT_APPLIED
    return Resolution.UNKNOWN if lost_count > 0 else Resolution.NOT_APPLIED
