"""The pump's clock at the programmer: the drift at every interrogation and ``set-clock``.

The programmer's own clock (UTC) and the patient's zone give what the pump should read, the
patient's standard time (:mod:`itb.programmer.pump_clock`); the pump's status carries its clock.
Adapter: reads this computer's clock and its zone, nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from itb.errors import InputError

if TYPE_CHECKING:  # the link client pulls in cryptography (issue 13)
    from itb.cli.programmer_run import Work
    from itb.link.client import PumpSession
    from itb.programmer.pump_clock import ClockCheck
    from itb.pump.status import PumpStatus

PatientZoneOpt = typer.Option(
    None,
    "--patient-zone",
    help="The patient's time zone, e.g. Europe/Berlin (default: this computer's). The pump "
    "keeps the patient's standard time, without the summer hour.",
)


def patient_zone(name: str | None) -> tzinfo:
    """The zone named, or this computer's (TZ, then /etc/localtime); InputError if unknown."""
    if name is None:
        name = os.environ.get("TZ") or _local_zone_name()
        if name is None:
            return datetime.now().astimezone().tzinfo or UTC
    try:
        return ZoneInfo(name.removeprefix(":"))
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            "patient-zone", f"{name!r} is not a time zone; give a name like Europe/Berlin"
        ) from None


def _local_zone_name() -> str | None:
    target = str(Path("/etc/localtime").resolve())
    _, found, name = target.partition("/zoneinfo/")
    return name if found else None


def clock_of(status: PumpStatus, zone: tzinfo) -> ClockCheck:
    """The pump's clock (from its status) against the patient's standard time now."""
    from itb.programmer.pump_clock import check_clock

    return check_clock(status.now, datetime.now(UTC), zone)


def set_clock_work(zone: tzinfo, dry_run: bool) -> Work:
    """Read the pump's clock; show the correction (``dry_run``) or send it."""
    from itb.programmer.pump_clock import pump_clock_for
    from itb.telemetry.messages import SetClock  # the wire messages: only when sending (issue 13)

    async def work(session: PumpSession, on_sent: Callable[[str], None]) -> dict[str, Any]:
        check = clock_of(await session.interrogate(), zone)
        new_time = pump_clock_for(datetime.now(UTC), zone).replace(microsecond=0)
        details = {"clock": check.to_dict(), "new_time": new_time.isoformat()}
        if dry_run:
            return {"command": "set-clock", "status": "done", "sent": False, **details}
        report = await session.send(lambda rid: SetClock(rid, new_time), details, on_sent)
        return report.to_dict()

    return work


def print_set_clock(say: Callable[[str], None]) -> Callable[[dict[str, Any]], None]:
    def human(r: dict[str, Any]) -> None:
        clock = r.get("clock")
        if not isinstance(clock, dict):
            return
        new = datetime.fromisoformat(str(r["new_time"]))
        say(f"before: {clock['words']}")
        verb = "would be set" if r.get("sent") is False else "set"
        say(f"the pump's clock {verb} to {new:%Y-%m-%d %H:%M} (the patient's standard time)")

    return human
