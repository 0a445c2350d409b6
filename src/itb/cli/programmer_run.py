"""How ``itb programmer`` runs one command: connect, settle old uncertain commands, work, print.

Exit codes: 0 done; 1 not applied (the pump rejected or refused it, or a programmer check needs
a confirmation or acknowledgement first); 2 bad input (nothing sent); 3 uncertain (sent, no
answer: it may have been applied; settled from the pump's log at the next connection);
4 the pump could not be reached (nothing sent). With ``--json`` every command prints exactly
one JSON object, whose ``status`` is one of done, rejected, refused, needs_confirmation,
needs_acknowledgement, error, unreachable or uncertain.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

import typer

from itb.cli.lazy import lazy_console
from itb.errors import InputError
from itb.telemetry.outcomes import Outcome

# The link (client, transport, pairing) pulls in cryptography: imported by the functions that
# connect, never by ``itb programmer ... --help`` (issue 13).
if TYPE_CHECKING:
    from itb.link.client import CommandReport, PumpAddress, PumpSession, UncertainJournal

out = lazy_console(highlight=False)
err = lazy_console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line

EXIT_DONE, EXIT_NOT_APPLIED, EXIT_BAD_INPUT, EXIT_UNCERTAIN, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_OF_STATUS = {
    Outcome.DONE.value: EXIT_DONE,
    Outcome.REJECTED.value: EXIT_NOT_APPLIED,
    Outcome.REFUSED.value: EXIT_NOT_APPLIED,
    Outcome.UNCERTAIN.value: EXIT_UNCERTAIN,
    "needs_confirmation": EXIT_NOT_APPLIED,
    "needs_acknowledgement": EXIT_NOT_APPLIED,
    "error": EXIT_BAD_INPUT,
    "unreachable": EXIT_UNREACHABLE,
}

Work: TypeAlias = "Callable[[PumpSession, Callable[[str], None]], Awaitable[dict[str, Any]]]"
Human: TypeAlias = Callable[[dict[str, Any]], None]
_E = TypeVar("_E", bound=Enum)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Connection:
    """The options every session command shares: where the pump is and with which keys."""

    pump: str
    key: Path
    pump_key: Path
    timeout_s: float
    attempts: int
    as_json: bool


# Output -------------------------------------------------------------------------------------
def finish(as_json: bool, result: dict[str, Any], human: Human) -> None:
    status = str(result.get("status"))
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        for item in result.get("resolved", []):
            err.print(
                f"earlier uncertain {item['command']} {item['request_id']}: {item['resolution']}"
            )
        if status in ("done", "rejected", "refused", "uncertain") and "request_id" in result:
            _print_outcome(result)
        if "error" in result:  # from fail(): nothing was done, say why in words
            err.print(_failure_line(result), soft_wrap=True, markup=False)
        else:
            human(result)
    code = EXIT_OF_STATUS.get(status, EXIT_DONE)
    if code:
        raise typer.Exit(code=code)


# What each failure means for the pump, after its reason (every one: nothing was sent or
# applied, except an uncertain command, which never comes through fail()).
_FAILURE_WORDS = {
    "refused": "refused: nothing was sent or changed",
    "unreachable": "the pump could not be reached: nothing was sent",
    "error": "bad input: nothing was sent",
    "needs_confirmation": "not sent: confirm first",
    "needs_acknowledgement": "not sent: acknowledge first",
}


def _failure_line(result: dict[str, Any]) -> str:
    """``error: <command> refused: <reason> (nothing was sent or changed; exit 1)``."""
    status = str(result.get("status"))
    code = EXIT_OF_STATUS.get(status, EXIT_DONE)
    command = f"{result['command']} " if result.get("command") else ""
    words = _FAILURE_WORDS.get(status, status)
    head, _, tail = words.partition(": ")
    reason = str(result.get("error") or "no reason given").rstrip(".")
    return f"error: {command}{head}: {reason} ({tail or 'nothing was done'}; exit {code})"


def _print_outcome(result: dict[str, Any]) -> None:
    status = result["status"]
    line = f"{result['command']}: {status} (request {result['request_id']})"
    if status == "rejected":
        line += f": {result.get('field')}: {result.get('reason')}"
    elif status == "refused":
        line += ": the pump refused the request (role or pairing); nothing changed"
    elif status == "uncertain":
        line += (
            ": no answer came; it may or may not have been applied. It is settled from the "
            "pump's event log at the next connection"
        )
    (out if status == "done" else err).print(line, soft_wrap=True)


def fail(as_json: bool, status: str, error: BaseException, **extra: Any) -> NoReturn:
    field = getattr(error, "field", None)
    result: dict[str, Any] = {"status": status, "error": str(error), **extra}
    if field is not None:
        result["field"] = str(field)
    finish(as_json, result, lambda _: None)
    raise typer.Exit(code=EXIT_OF_STATUS[status])  # pragma: no cover - finish raised


def nothing(_: dict[str, Any]) -> None:
    return None


# Input --------------------------------------------------------------------------------------
def enum_option(value: str, enum_type: type[_E], field: str, allowed: tuple[_E, ...] = ()) -> _E:
    """``value`` as a member of ``enum_type`` (of ``allowed`` when given); InputError if not."""
    members = allowed or tuple(enum_type)
    for member in members:
        if member.value == value:
            return member
    names = ", ".join(str(m.value) for m in members)
    raise InputError(field, f"{value!r}; allowed {names}")


def checked_input(as_json: bool, command: str, compute: Callable[[], _T]) -> _T:
    """``compute()``, or exit 2 with its bad-input error (nothing sent)."""
    try:
        return compute()
    except ValueError as error:
        fail(as_json, "error", error, command=command, sent=False)


# Running a session --------------------------------------------------------------------------
def _journal_for(key_file: Path) -> UncertainJournal:
    from itb.link.client import UncertainJournal

    return UncertainJournal(key_file.with_name(key_file.stem + ".uncertain.json"))


async def _settle_pending(
    session: PumpSession, journal: UncertainJournal, pump_id: str
) -> list[dict[str, str]]:
    """Resolve the uncertain commands left from earlier runs against this pump's log."""
    pending = journal.pending(pump_id)
    if not pending:
        return []
    resolutions = await session.resolve([p["request_id"] for p in pending])
    journal.remove([p["request_id"] for p in pending])
    return [{**item, "resolution": resolutions[item["request_id"]].value} for item in pending]


async def _session_main(
    address: PumpAddress, journal: UncertainJournal, command: str, work: Work
) -> dict[str, Any]:
    from itb.link.client import PumpSession
    from itb.telemetry.pairing import key_id_of

    pump_id = key_id_of(address.pump_public)
    session = await PumpSession.connect(address)
    try:
        resolved = await _settle_pending(session, journal, pump_id)
        sent: list[str] = []

        def on_sent(request_id: str) -> None:
            sent.append(request_id)
            journal.add(request_id, pump_id, command)

        try:
            result = await work(session, on_sent)
        except Exception:
            journal.remove(sent)  # the command never left (or was never built)
            raise
        if result.get("status") != Outcome.UNCERTAIN.value:
            journal.remove(sent)
        if "request_id" in result:  # name the CLI command; the wire request type beside it
            result["request"] = result.get("command")
        result["command"] = command
        if resolved:
            result["resolved"] = resolved
        return result
    finally:
        await session.close()


def run_command(command: str, connection: Connection, work: Work, human: Human) -> None:
    """Connect, run ``work`` and print its result (or the error) the one way every command does."""
    # imported here: asyncio and the link (cryptography) cost more than a help's budget (issue 13)
    import asyncio

    from itb.link.client import (
        AcknowledgementRequiredError,
        ConfirmationRequiredError,
        ProgramRefusedError,
        PumpAddress,
    )
    from itb.link.transport import HandshakeRefusedError, LinkError

    as_json = connection.as_json
    try:
        address = PumpAddress.from_files(
            connection.pump,
            connection.key,
            connection.pump_key,
            timeout_s=connection.timeout_s,
            attempts=connection.attempts,
        )
    except (ValueError, OSError) as error:
        fail(as_json, "error", error, command=command)
    try:
        result = asyncio.run(_session_main(address, _journal_for(connection.key), command, work))
    except (ConfirmationRequiredError, ProgramRefusedError) as error:
        status = "refused" if isinstance(error, ProgramRefusedError) else "needs_confirmation"
        fail(as_json, status, error, command=command, sent=False)
    except AcknowledgementRequiredError as error:
        discrepancy = error.check.to_dict()
        fail(as_json, "needs_acknowledgement", error, command=command, sent=False,
             discrepancy=discrepancy)  # fmt: skip
    except HandshakeRefusedError as error:
        fail(as_json, "refused", error, command=command, sent=False)
    except LinkError as error:
        fail(as_json, "unreachable", error, command=command, sent=False)
    except ValueError as error:  # LimitError, MessageError, ProgramError, UnknownDrugError...
        fail(as_json, "error", error, command=command, sent=False)
    finish(as_json, result, human)


def simple(call: Callable[[PumpSession, Callable[[str], None]], Awaitable[CommandReport]]) -> Work:
    """The work of a command with nothing to compute: send it, report its outcome."""

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        return (await call(session, on_sent)).to_dict()

    return work
