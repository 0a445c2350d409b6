"""``itb programmer``: the clinician's (and patient's) programmer over the telemetry link.

Adapters only: every check and number comes from :mod:`itb.programmer` (client.py calls
programming.py, refill.py, bridge.py, priming.py and report.py with what the pump reports).

Exit codes: 0 done; 1 not applied (the pump rejected or refused it, or a programmer check needs
a confirmation or acknowledgement first); 2 bad input (nothing sent); 3 uncertain (sent, no
answer: it may have been applied; settled from the pump's log at the next connection);
4 the pump could not be reached (nothing sent). With ``--json`` every command prints exactly
one JSON object, whose ``status`` is one of done, rejected, refused, needs_confirmation,
needs_acknowledgement, error, unreachable or uncertain.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from itb.link.client import (
    AcknowledgementRequiredError,
    CommandReport,
    ConfirmationRequiredError,
    ProgramRefusedError,
    PumpAddress,
    PumpSession,
    UncertainJournal,
)
from itb.link.keys import KeyFileError, KeyOwner, write_keypair
from itb.link.transport import HandshakeRefusedError, LinkError
from itb.programmer.programming import Origin, Phase
from itb.telemetry.endpoint import Outcome, key_id_of
from itb.telemetry.messages import AlarmKind
from itb.therapy import Program, ProgramError, program_from_dict

app = typer.Typer(
    help="The programmer: interrogate, program, refill and bolus a pump over its telemetry link.",
    no_args_is_help=True,
)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

EXIT_DONE, EXIT_NOT_APPLIED, EXIT_BAD_INPUT, EXIT_UNCERTAIN, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
_EXIT_OF_STATUS = {
    Outcome.DONE.value: EXIT_DONE,
    Outcome.REJECTED.value: EXIT_NOT_APPLIED,
    Outcome.REFUSED.value: EXIT_NOT_APPLIED,
    Outcome.UNCERTAIN.value: EXIT_UNCERTAIN,
    "needs_confirmation": EXIT_NOT_APPLIED,
    "needs_acknowledgement": EXIT_NOT_APPLIED,
    "error": EXIT_BAD_INPUT,
    "unreachable": EXIT_UNREACHABLE,
}
JSON_HELP = "Print exactly one JSON object on stdout."

PumpOpt = typer.Option(..., "--pump", help="The pump's HOST:PORT.")
KeyOpt = typer.Option(..., "--key", help="This programmer's private key (programmer.key).")
PumpKeyOpt = typer.Option(..., "--pump-key", help="The pump's public key (pump.pub).")
JsonOpt = typer.Option(False, "--json", help=JSON_HELP)
TimeoutOpt = typer.Option(1.0, "--timeout-s", help="Wait for each answer, seconds.")
AttemptsOpt = typer.Option(4, "--attempts", help="Sends of each request (with retransmissions).")

Work = Callable[[PumpSession, Callable[[str], None]], Awaitable[dict[str, Any]]]


# Output -------------------------------------------------------------------------------------
def _finish(as_json: bool, result: dict[str, Any], human: Callable[[dict[str, Any]], None]) -> None:
    status = str(result.get("status"))
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        for item in result.get("resolved", []):
            _err.print(
                f"earlier uncertain {item['command']} {item['request_id']}: {item['resolution']}"
            )
        if status in ("done", "rejected", "refused", "uncertain") and "request_id" in result:
            _print_outcome(result)
        if status not in ("error", "unreachable", "needs_confirmation", "needs_acknowledgement"):
            human(result)
        else:
            _err.print(f"[red]{status}:[/red] {result.get('error', '')}", soft_wrap=True)
    code = _EXIT_OF_STATUS.get(status, EXIT_DONE)
    if code:
        raise typer.Exit(code=code)


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
    (_out if status == "done" else _err).print(line, soft_wrap=True)


def _error(as_json: bool, status: str, error: BaseException, **extra: Any) -> NoReturn:
    field = getattr(error, "field", None)
    result: dict[str, Any] = {"status": status, "error": str(error), **extra}
    if field is not None:
        result["field"] = str(field)
    _finish(as_json, result, lambda _: None)
    raise typer.Exit(code=_EXIT_OF_STATUS[status])  # pragma: no cover - _finish raised


# Running a session ------------------------------------------------------------------------------
def _journal_for(key_file: Path) -> UncertainJournal:
    return UncertainJournal(key_file.with_name(key_file.stem + ".uncertain.json"))


async def _session_main(
    address: PumpAddress, journal: UncertainJournal, command: str, work: Work
) -> dict[str, Any]:
    pump_id = key_id_of(address.pump_public)
    session = await PumpSession.connect(address)
    try:
        resolved: list[dict[str, str]] = []
        pending = journal.pending(pump_id)
        if pending:
            resolutions = await session.resolve([p["request_id"] for p in pending])
            for item in pending:
                resolution = resolutions[item["request_id"]]
                resolved.append({**item, "resolution": resolution.value})
            journal.remove([p["request_id"] for p in pending])
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


def _execute(
    command: str,
    pump: str,
    key: Path,
    pump_key: Path,
    timeout_s: float,
    attempts: int,
    as_json: bool,
    work: Work,
    human: Callable[[dict[str, Any]], None],
) -> None:
    try:
        address = PumpAddress.from_files(
            pump, key, pump_key, timeout_s=timeout_s, attempts=attempts
        )
    except (ValueError, OSError) as error:
        _error(as_json, "error", error, command=command)
    try:
        result = asyncio.run(_session_main(address, _journal_for(key), command, work))
    except (ConfirmationRequiredError, ProgramRefusedError) as error:
        status = "refused" if isinstance(error, ProgramRefusedError) else "needs_confirmation"
        _error(as_json, status, error, command=command, sent=False)
    except AcknowledgementRequiredError as error:
        _error(
            as_json,
            "needs_acknowledgement",
            error,
            command=command,
            sent=False,
            discrepancy=error.check.to_dict(),
        )
    except HandshakeRefusedError as error:
        _error(as_json, "refused", error, command=command, sent=False)
    except LinkError as error:
        _error(as_json, "unreachable", error, command=command, sent=False)
    except ValueError as error:  # LimitError, MessageError, ProgramError, UnknownDrugError...
        _error(as_json, "error", error, command=command, sent=False)
    _finish(as_json, result, human)


def _report_dict(report: CommandReport) -> dict[str, Any]:
    return report.to_dict()


# Commands ---------------------------------------------------------------------------------------
@app.command("keygen")
def keygen(
    out: Path = typer.Option(..., "--out", help="Directory for programmer.key and .pub."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a new programmer key pair: programmer.key (mode 0600) and programmer.pub."""
    try:
        private_path, public_path = write_keypair(out, KeyOwner.PROGRAMMER)
    except (KeyFileError, OSError) as error:
        _error(as_json, "error", error, command="keygen")
    from itb.link.keys import load_public_key

    key_id = key_id_of(load_public_key(public_path, KeyOwner.PROGRAMMER))
    result = {
        "command": "keygen",
        "status": "done",
        "private_key": str(private_path),
        "public_key": str(public_path),
        "key_id": key_id,
    }
    _finish(
        as_json,
        result,
        lambda r: _out.print(f"wrote {r['private_key']} and {r['public_key']} (key {key_id})"),
    )


@app.command("interrogate")
def interrogate(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read the pump: program, daily dose, reservoir, battery, alarms."""

    async def work(session: PumpSession, _: Callable[[str], None]) -> dict[str, Any]:
        status = await session.interrogate()
        return {**status.to_wire(), "command": "interrogate", "status": "done"}

    def human(r: dict[str, Any]) -> None:
        table = Table(title=f"{r['model']} {r['serial']} at {r['now']}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        battery = r["battery"]
        for name, value in (
            ("mode", r["mode"]),
            ("program", json.dumps(r["program"])),
            ("daily dose", f"{r['daily_dose_ug']:g} µg/day"),
            ("concentration", f"{r['concentration_ug_per_ml']:g} µg/mL"),
            ("reservoir", f"{r['reservoir_ml']:.3f} mL (alarm at {r['low_reservoir_alarm_ml']:g})"),
            ("battery", f"{battery['remaining_mah']:.1f} mAh; ERI {battery['eri_at']}"),
            ("delivered", f"{r['delivered_ug']:.1f} µg ({r['delivered_ml']:.4f} mL)"),
            ("bolus", json.dumps(r["bolus"]) if r["bolus"] else "none"),
            ("last refill", str(r.get("last_refill_at"))),
        ):
            table.add_row(name, value)
        for alarm in r["alarms"]:
            table.add_row("alarm", f"{alarm['kind']} ({alarm['priority']}) since {alarm['at']}")
        _out.print(table)

    _execute("interrogate", pump, key, pump_key, timeout_s, attempts, as_json, work, human)


def _load_program(rate_ug_per_day: float | None, program_file: Path | None) -> Program:
    if (rate_ug_per_day is None) == (program_file is None):
        raise ProgramError("program: give exactly one of --rate-ug-per-day or --file")
    if rate_ug_per_day is not None:
        return program_from_dict({"rate_ug_per_day": rate_ug_per_day})
    assert program_file is not None
    try:
        data: dict[str, Any] = tomllib.loads(program_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProgramError(f"file={program_file}: no such program file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ProgramError(f"file={program_file}: not valid TOML: {error}") from None
    section = data.get("program", data)
    if not isinstance(section, dict):
        raise ProgramError(f"file={program_file}: [program] must be a table")
    return program_from_dict(section)


def _enum(value: str, enum_type: type[Any], field: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum_type)
        raise _BadInput(field, f"{value!r}; allowed {allowed}") from None


class _BadInput(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"{field}: {reason}")


def _bad_input(as_json: bool, command: str, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except ValueError as error:
        _error(as_json, "error", error, command=command, sent=False)


@app.command("program")
def program(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    rate_ug_per_day: float | None = typer.Option(
        None, "--rate-ug-per-day", help="A simple continuous program, µg/day."
    ),
    program_file: Path | None = typer.Option(
        None, "--file", help="TOML with the scenario's [program] keys (rate_ug_per_day, steps...)."
    ),
    origin: str = typer.Option("spinal", "--origin", help="spinal or cerebral (change limits)."),
    phase: str = typer.Option("maintenance", "--phase", help="maintenance or titration."),
    confirm: bool = typer.Option(False, "--confirm", help="Confirm the review's warnings."),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --confirm)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the review; send nothing."),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Review a new program against the pump's (old vs new, checks) and send it."""
    new, origin_value, phase_value = _bad_input(
        as_json,
        "program",
        lambda: (
            _load_program(rate_ug_per_day, program_file),
            _enum(origin, Origin, "origin"),
            _enum(phase, Phase, "phase"),
        ),
    )
    confirmation = reason if confirm else None
    if confirm and not (reason or "").strip():
        _error(
            as_json,
            "error",
            _BadInput("reason", "--confirm needs --reason TEXT saying why"),
            command="program",
        )

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        if dry_run:
            from itb.link.client import review_new_program

            review = review_new_program(await session.interrogate(), new, origin_value, phase_value)
            return {
                "command": "program",
                "status": "done",
                "sent": False,
                "review": review.to_dict(),
            }
        report = await session.program(
            new,
            origin=origin_value,
            phase=phase_value,
            confirmation_reason=confirmation,
            on_sent=on_sent,
        )
        return _report_dict(report)

    def human(r: dict[str, Any]) -> None:
        review = r["review"]
        table = Table(title="program: old → new")
        for column in ("day", "start", "old µg/h", "new µg/h", "change %"):
            table.add_column(column)
        for row in review["rows"]:
            table.add_row(
                row["day"],
                row["start"],
                "" if row["old_rate_ug_per_h"] is None else f"{row['old_rate_ug_per_h']:g}",
                f"{row['new_rate_ug_per_h']:g}",
                "" if row["change_percent"] is None else f"{row['change_percent']:+.1f}",
            )
        _out.print(table)
        _out.print(
            f"daily dose {review['old_daily_dose_ug']} → {review['new_daily_dose_ug']} µg/day "
            f"at {review['concentration_ug_per_ml']:g} µg/mL ({review['new_volume_per_day_ml']} "
            "mL/day)"
        )
        for check in review["checks"]:
            _out.print(f"{check['verdict']}: {check['name']}: {check['reason']}", soft_wrap=True)

    _execute("program", pump, key, pump_key, timeout_s, attempts, as_json, work, human)


@app.command("bolus")
def bolus(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    kind: str = typer.Option(..., "--kind", help="clinician, bridge or priming."),
    dose_ug: float | None = typer.Option(None, "--dose-ug", help="Clinician bolus dose, µg."),
    duration_min: float | None = typer.Option(None, "--duration-min", help="Duration, minutes."),
    catheter_trimmed_cm: float = typer.Option(
        0.0, "--catheter-trimmed-cm", help="Cm cut off the 110 cm catheter (bridge, priming)."
    ),
    pump_tubing_empty: bool = typer.Option(
        False, "--pump-tubing-empty", help="Priming a new pump: prime its tubing too."
    ),
    confirm: bool = typer.Option(False, "--confirm", help="Priming: the catheter is empty."),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A clinician bolus (µg), or a bridge / priming bolus computed from the pump's set-up."""
    from itb.telemetry.messages import BolusKind

    kind_value = _bad_input(as_json, "bolus", lambda: _enum(kind, BolusKind, "kind"))
    if kind_value is BolusKind.CLINICIAN and dose_ug is None:
        _error(as_json, "error", _BadInput("dose_ug", "--dose-ug is required"), command="bolus")
    if kind_value is not BolusKind.CLINICIAN and dose_ug is not None:
        _error(
            as_json,
            "error",
            _BadInput("dose_ug", f"a {kind_value.value} bolus is computed by volume; no --dose-ug"),
            command="bolus",
        )

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        if kind_value is BolusKind.CLINICIAN:
            assert dose_ug is not None
            minutes = 1.0 if duration_min is None else duration_min
            report = await session.clinician_bolus(dose_ug, minutes, on_sent)
        elif kind_value is BolusKind.BRIDGE:
            report = await session.bridge_bolus(
                catheter_trimmed_cm=catheter_trimmed_cm, duration_min=duration_min, on_sent=on_sent
            )
        else:
            report = await session.priming_bolus(
                catheter_trimmed_cm=catheter_trimmed_cm,
                pump_tubing_empty=pump_tubing_empty,
                duration_min=duration_min,
                confirm=confirm,
                on_sent=on_sent,
            )
        return {**_report_dict(report), "kind": kind_value.value}

    def human(r: dict[str, Any]) -> None:
        for plan_key in ("bridge", "priming"):
            for line in r.get(plan_key, {}).get("reasons", []):
                _out.print(f"{plan_key}: {line}", soft_wrap=True)

    _execute("bolus", pump, key, pump_key, timeout_s, attempts, as_json, work, human)


@app.command("refill")
def refill(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    withdrawn_ml: float = typer.Option(..., "--withdrawn-ml", help="Residual drug withdrawn, mL."),
    volume_ml: float = typer.Option(..., "--volume-ml", help="Volume put in, mL."),
    concentration_ug_per_ml: float = typer.Option(
        ..., "--concentration-ug-per-ml", help="Concentration put in, µg/mL."
    ),
    acknowledge_discrepancy: bool = typer.Option(
        False, "--acknowledge-discrepancy", help="Go on despite a flagged withdrawn volume."
    ),
    catheter_trimmed_cm: float = typer.Option(
        0.0, "--catheter-trimmed-cm", help="For the bridge plan after a concentration change."
    ),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check the withdrawn volume against the pump, refill, and print the next dates."""

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        report = await session.refill(
            withdrawn_ml=withdrawn_ml,
            volume_ml=volume_ml,
            concentration_ug_per_ml=concentration_ug_per_ml,
            acknowledge_discrepancy=acknowledge_discrepancy,
            catheter_trimmed_cm=catheter_trimmed_cm,
            on_sent=on_sent,
        )
        return _report_dict(report)

    def human(r: dict[str, Any]) -> None:
        for line in r["discrepancy"]["reasons"]:
            _out.print(f"withdrawn volume: {line}", soft_wrap=True)
        s = r["schedule"]
        if r["status"] == "done":
            for label, name in (
                ("low-reservoir alarm", "low_reservoir_on"),
                ("empty", "empty_on"),
                ("stability limit", "stability_limit_on"),
                ("next refill", "next_refill_on"),
            ):
                _out.print(f"{label}: {s[name]}")
            _out.print(f"why: {s['next_refill_reason']}", soft_wrap=True)
            for warning in s["warnings"]:
                _out.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
            if r.get("bridge"):
                _out.print(
                    "concentration changed: give the bridge bolus "
                    "(itb programmer bolus --kind bridge)"
                )

    _execute("refill", pump, key, pump_key, timeout_s, attempts, as_json, work, human)


def _simple(call: Callable[[PumpSession, Callable[[str], None]], Awaitable[CommandReport]]) -> Work:
    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        return _report_dict(await call(session, on_sent))

    return work


def _nothing(_: dict[str, Any]) -> None:
    return None


@app.command("stop")
def stop(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Stop the pump (it keeps the catheter open at the model's minimum rate)."""
    work = _simple(lambda s, on_sent: s.stop(on_sent))
    _execute("stop", pump, key, pump_key, timeout_s, attempts, as_json, work, _nothing)


@app.command("resume")
def resume(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Resume a stopped pump."""
    work = _simple(lambda s, on_sent: s.resume(on_sent))
    _execute("resume", pump, key, pump_key, timeout_s, attempts, as_json, work, _nothing)


@app.command("clear-alarm")
def clear_alarm(
    kind: str = typer.Argument(..., help="motor_stall or memory_error (the latched alarms)."),
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Clear a latched alarm (the pump refuses those cleared otherwise, e.g. by a refill)."""
    alarm = _bad_input(as_json, "clear-alarm", lambda: _enum(kind, AlarmKind, "kind"))
    work = _simple(lambda s, on_sent: s.clear_alarm(alarm, on_sent))
    _execute("clear-alarm", pump, key, pump_key, timeout_s, attempts, as_json, work, _nothing)


@app.command("patient-bolus")
def patient_bolus(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Ask for one patient bolus (within the limits the clinician set in the pump)."""
    work = _simple(lambda s, on_sent: s.patient_bolus(on_sent))
    _execute("patient-bolus", pump, key, pump_key, timeout_s, attempts, as_json, work, _nothing)


@app.command("report")
def report(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    out: Path = typer.Option(..., "--out", help="The HTML file to write."),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Interrogate and write the interrogation report (HTML) a clinic can file."""

    async def work(session: PumpSession, _: Callable[[str], None]) -> dict[str, Any]:
        data, html = await session.report(datetime.now().replace(microsecond=0))
        out.write_text(html, encoding="utf-8")
        return {"command": "report", "status": "done", "out": str(out), "report": data}

    _execute(
        "report",
        pump,
        key,
        pump_key,
        timeout_s,
        attempts,
        as_json,
        work,
        lambda r: _out.print(f"wrote {r['out']}"),
    )
