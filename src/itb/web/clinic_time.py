"""The clinic's time zone, and every time a page shows: to the minute, the zone named.

Two clocks reach a page. The clinic's own (a visit, a refill, the dashboard's "now") is naive
local time in the clinic's zone. A pump's (its interrogation, alarms, event log) is naive too,
but on the pump's clock: the patient's *standard* time, without the summer hour
(:mod:`itb.programmer.pump_clock`). Shown as if it were the clinic's, a pump time is an hour
off all summer (H78): every pump time goes through :func:`pump_minute`, which names the zone.
The patients are taken to live in the clinic's zone (no per-patient zone is recorded).

The zone: ``itb serve --time-zone Europe/Paris`` or ``$ITB_CLINIC_TZ``; else the server's own.
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from itb.errors import InputError
from itb.programmer.pump_clock import minute_words, pump_time_in_zone

CLINIC_TZ_ENV = "ITB_CLINIC_TZ"
_LOCALTIME = Path("/etc/localtime")


def zone_named(name: str, field: str = "time_zone") -> tzinfo:
    """An IANA zone by name (``Europe/Paris``); another name is refused in words."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(field, f"{name!r} is not a time zone; allowed e.g. Europe/Paris") from None


def server_zone() -> tzinfo:
    """The server's own zone: ``$TZ`` if named, else /etc/localtime's, else its fixed offset."""
    for name in (os.environ.get("TZ", "").lstrip(":"), _localtime_name()):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def _localtime_name() -> str:
    try:
        target = str(_LOCALTIME.resolve())
    except OSError:
        return ""
    _, found, name = target.partition("zoneinfo/")
    return name if found else ""


@cache
def clinic_zone() -> tzinfo:
    """The clinic's zone: ``$ITB_CLINIC_TZ`` when set, else the server's."""
    name = os.environ.get(CLINIC_TZ_ENV, "")
    return zone_named(name, CLINIC_TZ_ENV) if name.strip() else server_zone()


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def clinic_minute(value: datetime | str | None, zone: tzinfo) -> str:
    """A time on the clinic's clock (naive local, or aware): ``2026-11-25 12:00 CET``."""
    when = _as_datetime(value)
    if when is None:
        return "—"
    aware = when.replace(tzinfo=zone) if when.tzinfo is None else when.astimezone(zone)
    return minute_words(aware)


def pump_minute(value: datetime | str | None, zone: tzinfo) -> str:
    """A time read from a pump (the patient's standard time, naive) in the clinic's zone, to
    the minute, the zone named (H78)."""
    when = _as_datetime(value)
    if when is None:
        return "—"
    if when.tzinfo is not None:
        return minute_words(when.astimezone(zone))
    return minute_words(pump_time_in_zone(when, zone, zone))


def clinic_day(value: datetime | str | None) -> str:
    """A date on the clinic's calendar (``2026-11-25``): a due date, a birth date."""
    when = _as_datetime(value)
    return "—" if when is None else f"{when:%Y-%m-%d}"
