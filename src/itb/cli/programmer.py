"""``itb programmer``: the clinician's (and patient's) programmer over the telemetry link.

Adapters only: every check and number comes from :mod:`itb.programmer` (``itb.link.client``
calls programming.py, refill.py, bridge.py, priming.py and report.py with what the pump
reports). How a command runs, prints and exits (codes 0 done, 1 not applied, 2 bad input,
3 uncertain, 4 unreachable) is in programmer_run.py.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from itb.cli.decimal_options import MINUTES, ML, UG, UG_PER_DAY, UG_PER_ML
from itb.cli.programmer_clock import (
    PatientZoneOpt,
    clock_of,
    patient_zone,
    print_set_clock,
    set_clock_work,
)
from itb.cli.programmer_run import (
    Connection,
    checked_input,
    enum_option,
    fail,
    finish,
    nothing,
    run_command,
    simple,
)
from itb.cli.programmer_run import out as screen
from itb.errors import InputError

# The link (keys, client) pulls in cryptography and a table Rich: each command imports what it
# uses, so ``itb programmer ... --help`` loads neither (issue 13).
# The same for the programming rules, the wire's status and the pump's enums: each command
# imports its own, so that the group's help stays within its budget.
if TYPE_CHECKING:
    from itb.link.client import PumpSession
    from itb.programmer.programming import ProgramReview
    from itb.therapy import Program

app = typer.Typer(
    help="The programmer: interrogate, program, refill and bolus a pump over its telemetry link.",
    no_args_is_help=True,
)
_E = TypeVar("_E", bound=Enum)
JSON_HELP = "Print exactly one JSON object on stdout."

PumpOpt = typer.Option(..., "--pump", help="The pump's HOST:PORT.")
KeyOpt = typer.Option(..., "--key", help="This programmer's private key (programmer.key).")
PumpKeyOpt = typer.Option(..., "--pump-key", help="The pump's public key (pump.pub).")
JsonOpt = typer.Option(False, "--json", help=JSON_HELP)
TimeoutOpt = typer.Option(1.0, "--timeout-s", help="Wait for each answer, seconds.")
AttemptsOpt = typer.Option(4, "--attempts", help="Sends of each request (with retransmissions).")


# Commands ---------------------------------------------------------------------------------------
@app.command("keygen")
def keygen(
    out: Path = typer.Option(..., "--out", help="Directory for programmer.key and .pub."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a new programmer key pair: programmer.key (mode 0600) and programmer.pub."""
    from itb.link.keys import KeyFileError, KeyOwner, load_public_key, write_keypair
    from itb.telemetry.pairing import key_id_of

    try:
        private_path, public_path = write_keypair(out, KeyOwner.PROGRAMMER)
    except (KeyFileError, OSError) as error:
        fail(as_json, "error", error, command="keygen")
    key_id = key_id_of(load_public_key(public_path, KeyOwner.PROGRAMMER))
    result = {
        "command": "keygen",
        "status": "done",
        "private_key": str(private_path),
        "public_key": str(public_path),
        "key_id": key_id,
    }
    finish(
        as_json,
        result,
        lambda r: screen.print(f"wrote {r['private_key']} and {r['public_key']} (key {key_id})"),
    )


@app.command("interrogate")
def interrogate(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    zone_name: str | None = PatientZoneOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read the pump: program, daily dose, reservoir, battery, alarms, and its clock against
    the patient's standard time."""
    from itb.telemetry.status_wire import status_to_wire

    zone = checked_input(as_json, "interrogate", lambda: patient_zone(zone_name))

    async def work(session: PumpSession, _: Callable[[str], None]) -> dict[str, Any]:
        status = await session.interrogate()
        clock = clock_of(status, zone).to_dict()
        return {
            **status_to_wire(status),
            "clock": clock,
            "command": "interrogate",
            "status": "done",
        }

    def human(r: dict[str, Any]) -> None:
        from rich.table import Table

        from itb.cli.status_words import status_rows, status_title

        table = Table(title=status_title(r), show_header=False)
        table.add_column("what", no_wrap=True)
        table.add_column("value")
        for name, value in status_rows(r):
            table.add_row(name, value)
        table.add_row("pump clock", str(r["clock"]["words"]))
        screen.print(table)

    run_command(
        "interrogate", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, human
    )


def _load_program(rate_ug_per_day: float | None, program_file: Path | None) -> Program:
    from itb.therapy import ProgramError, program_from_dict

    if rate_ug_per_day is not None and program_file is not None:
        reason = "give one of --rate-ug-per-day or --file, not both: which one is meant?"
        raise ProgramError("rate_ug_per_day", f"--rate-ug-per-day and --file: {reason}")
    if rate_ug_per_day is None and program_file is None:
        raise ProgramError("program", "give exactly one of --rate-ug-per-day or --file")
    if rate_ug_per_day is not None:
        return program_from_dict({"rate_ug_per_day": rate_ug_per_day})
    assert program_file is not None
    try:
        data: dict[str, Any] = tomllib.loads(program_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        reason = "no such program file"
        raise ProgramError("file", reason, f"file={program_file}: {reason}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        reason = f"not valid TOML: {error}"
        raise ProgramError("file", reason, f"file={program_file}: {reason}") from None
    section = data.get("program", data)
    if not isinstance(section, dict):
        reason = "[program] must be a table"
        raise ProgramError("file", reason, f"file={program_file}: {reason}")
    return program_from_dict(section)


def _print_review(r: dict[str, Any]) -> None:
    from rich.table import Table

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
    screen.print(table)
    screen.print(
        f"daily dose {review['old_daily_dose_ug']} → {review['new_daily_dose_ug']} µg/day "
        f"at {review['concentration_ug_per_ml']:g} µg/mL ({review['new_volume_per_day_ml']} "
        "mL/day)"
    )
    for check in review["checks"]:
        screen.print(f"{check['verdict']}: {check['name']}: {check['reason']}", soft_wrap=True)
    if r.get("clock"):
        screen.print(f"warning: pump clock: {r['clock']}", soft_wrap=True)
    if "review_token" in r:
        screen.print(f"review token {r['review_token']} (send with --review-token to check it)")


def _optional_enum(value: str | None, enum_type: type[_E], field: str) -> _E | None:
    return None if value is None else enum_option(value, enum_type, field)


def _review_result(review: ProgramReview, token: str) -> dict[str, Any]:
    return {
        "command": "program",
        "status": "done",
        "sent": False,
        "review": review.to_dict(),
        "review_token": token,
    }


@app.command("program")
def program(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    rate_ug_per_day: float | None = typer.Option(
        None, "--rate-ug-per-day", parser=UG_PER_DAY, help="A simple continuous program, µg/day."
    ),
    program_file: Path | None = typer.Option(
        None, "--file", help="TOML with the scenario's [program] keys (rate_ug_per_day, steps...)."
    ),
    origin: str | None = typer.Option(
        None, "--origin", help="spinal or cerebral (change limits; not given: the strictest)."
    ),
    phase: str | None = typer.Option(
        None, "--phase", help="maintenance or titration (not given: the strictest limits)."
    ),
    age_years: float | None = typer.Option(
        None, "--age-years", help="The patient's age: under 12, the children's dose range."
    ),
    confirm: bool = typer.Option(False, "--confirm", help="Confirm the review's warnings."),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --confirm)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the review and its token; send nothing."
    ),
    token: str | None = typer.Option(
        None,
        "--review-token",
        help="The token a --dry-run printed: refuse to send if the program or the pump's "
        "program changed since that review.",
    ),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    zone_name: str | None = PatientZoneOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Review a new program against the pump's (old vs new, the program of 24 h ago, checks)
    and send it. Without --review-token the review and the send happen in one session."""
    from itb.programmer.programming import Origin, Phase, ReviewContext

    new, context = checked_input(
        as_json,
        "program",
        lambda: (
            _load_program(rate_ug_per_day, program_file),
            ReviewContext(
                _optional_enum(origin, Origin, "origin"),
                _optional_enum(phase, Phase, "phase"),
                age_years,
            ),
        ),
    )
    zone = checked_input(as_json, "program", lambda: patient_zone(zone_name))
    confirmation = reason if confirm else None
    if confirm and not (reason or "").strip():
        fail(
            as_json,
            "error",
            InputError("reason", "--confirm needs --reason TEXT saying why"),
            command="program",
        )

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        # a clock that is off moves every step of a schedule: the review says so (issue 11)
        shift = clock_of(await session.interrogate(), zone).program_words(new)
        if dry_run:
            result = _review_result(*await session.review(new, context))
        else:
            report = await session.program(
                new,
                context=context,
                confirmation_reason=confirmation,
                reviewed_token=token,
                on_sent=on_sent,
            )
            result = report.to_dict()
        return {**result, "clock": shift} if shift else result

    connection = Connection(pump, key, pump_key, timeout_s, attempts, as_json)
    run_command("program", connection, work, _print_review)


@app.command("bolus")
def bolus(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    kind: str = typer.Option(..., "--kind", help="clinician, bridge or priming."),
    dose_ug: float | None = typer.Option(
        None, "--dose-ug", parser=UG, help="Clinician bolus dose, µg."
    ),
    duration_min: float | None = typer.Option(
        None, "--duration-min", parser=MINUTES, help="Duration, minutes."
    ),
    catheter_trimmed_cm: float = typer.Option(
        0.0, "--catheter-trimmed-cm", help="Cm cut off the 110 cm catheter (bridge, priming)."
    ),
    pump_tubing_empty: bool = typer.Option(
        False, "--pump-tubing-empty", help="Priming a new pump: prime its tubing too."
    ),
    confirm: bool = typer.Option(
        False,
        "--confirm",
        help="Clinician: confirm the review's warnings. Priming: the catheter is empty.",
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Clinician: why the warnings are confirmed (needed with --confirm)."
    ),
    age_years: float | None = typer.Option(
        None, "--age-years", help="The patient's age: a child's daily range applies under 12."
    ),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A clinician bolus (µg), or a bridge / priming bolus computed from the pump's set-up."""
    from itb.pump.bolus import DEFAULT_BOLUS_DURATION_MIN
    from itb.pump.status import BolusKind
    from itb.telemetry.messages import CLINICIAN_BOLUS_KINDS

    kind_value = checked_input(
        as_json, "bolus", lambda: enum_option(kind, BolusKind, "kind", CLINICIAN_BOLUS_KINDS)
    )
    if kind_value is BolusKind.CLINICIAN and dose_ug is None:
        fail(as_json, "error", InputError("dose_ug", "--dose-ug is required"), command="bolus")
    if kind_value is not BolusKind.CLINICIAN and dose_ug is not None:
        fail(
            as_json,
            "error",
            InputError(
                "dose_ug", f"a {kind_value.value} bolus is computed by volume; no --dose-ug"
            ),
            command="bolus",
        )

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        if kind_value is BolusKind.CLINICIAN:
            assert dose_ug is not None
            minutes = DEFAULT_BOLUS_DURATION_MIN if duration_min is None else duration_min
            report = await session.clinician_bolus(
                dose_ug,
                minutes,
                on_sent,
                confirmation_reason=reason if confirm else None,
                age_years=age_years,
            )
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
        return {**report.to_dict(), "kind": kind_value.value}

    def human(r: dict[str, Any]) -> None:
        for plan_key in ("bridge", "priming"):
            for line in r.get(plan_key, {}).get("reasons", []):
                screen.print(f"{plan_key}: {line}", soft_wrap=True)

    run_command("bolus", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, human)


@app.command("refill")
def refill(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    withdrawn_ml: float = typer.Option(
        ..., "--withdrawn-ml", parser=ML, help="Residual drug withdrawn, mL."
    ),
    volume_ml: float = typer.Option(..., "--volume-ml", parser=ML, help="Volume put in, mL."),
    concentration_ug_per_ml: float = typer.Option(
        ..., "--concentration-ug-per-ml", parser=UG_PER_ML, help="Concentration put in, µg/mL."
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
        return report.to_dict()

    def human(r: dict[str, Any]) -> None:
        from itb.cli.status_words import NOT_PREDICTED, when_words

        for line in r["discrepancy"]["reasons"]:
            screen.print(f"withdrawn volume: {line}", soft_wrap=True)
        s = r["schedule"]
        if r["status"] == "done":
            for label, name in (
                ("low-reservoir alarm", "low_reservoir_on"),
                ("empty", "empty_on"),
                ("stability limit", "stability_limit_on"),
                ("next refill", "next_refill_on"),
            ):
                screen.print(f"{label}: {when_words(s[name], NOT_PREDICTED)}")
            screen.print(f"why: {s['next_refill_reason']}", soft_wrap=True)
            for warning in s["warnings"]:
                screen.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
            if r.get("bridge"):
                screen.print(
                    "concentration changed: give the bridge bolus "
                    "(itb programmer bolus --kind bridge)"
                )

    run_command(
        "refill", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, human
    )


@app.command("set-clock")
def set_clock(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    zone_name: str | None = PatientZoneOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the pump's clock and the correction; send nothing."
    ),
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Set the pump's clock to the patient's standard time now (the pump logs old and new;
    it refuses a correction of more than two hours)."""
    zone = checked_input(as_json, "set-clock", lambda: patient_zone(zone_name))
    run_command(
        "set-clock",
        Connection(pump, key, pump_key, timeout_s, attempts, as_json),
        set_clock_work(zone, dry_run),
        print_set_clock(screen.print),
    )


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
    work = simple(lambda s, on_sent: s.stop(on_sent))
    run_command(
        "stop", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, nothing
    )


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
    work = simple(lambda s, on_sent: s.resume(on_sent))
    run_command(
        "resume", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, nothing
    )


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
    from itb.pump.alarms import AlarmKind

    alarm = checked_input(as_json, "clear-alarm", lambda: enum_option(kind, AlarmKind, "kind"))
    work = simple(lambda s, on_sent: s.clear_alarm(alarm, on_sent))
    run_command(
        "clear-alarm", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, nothing
    )


@app.command("test-alarm")
def test_alarm(
    pump: str = PumpOpt,
    key: Path = KeyOpt,
    pump_key: Path = PumpKeyOpt,
    timeout_s: float = TimeoutOpt,
    attempts: int = AttemptsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sound each alarm tone once (critical two-tone, non-critical single tone): ask the
    patient whether they heard each. Changes no delivery and no alarm; the pump logs it."""
    work = simple(lambda s, on_sent: s.test_alarm(on_sent))
    run_command(
        "test-alarm", Connection(pump, key, pump_key, timeout_s, attempts, as_json), work, _tones
    )


def _tones(result: dict[str, Any]) -> None:
    from itb.programmer.record_words import tones_words

    if result.get("status") == "done":
        screen.print(f"sounded: {tones_words(result.get('tones', []))}; ask whether each was heard")


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
    work = simple(lambda s, on_sent: s.patient_bolus(on_sent))
    run_command(
        "patient-bolus",
        Connection(pump, key, pump_key, timeout_s, attempts, as_json),
        work,
        nothing,
    )


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

    run_command(
        "report",
        Connection(pump, key, pump_key, timeout_s, attempts, as_json),
        work,
        lambda r: screen.print(f"wrote {r['out']}"),
    )
