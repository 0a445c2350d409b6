"""A pump's status in words for the terminal: every number with its unit, every date in words
to the minute, nothing left as ``None`` or raw JSON (``itb programmer interrogate``).

Input: the status as the pump sends it (``itb.telemetry.status_wire.status_to_wire``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from itb.therapy import program_from_dict

NOT_PREDICTED = "not predicted"


def when_words(value: object, missing: str = "none recorded") -> str:
    """``2031-03-03T14:05:00`` -> ``3 March 2031, 14:05``; a date alone (``2031-03-03``) ->
    ``3 March 2031``; None -> ``missing``."""
    if not isinstance(value, str) or not value:
        return missing
    at = datetime.fromisoformat(value)
    if "T" not in value and " " not in value:
        return f"{at.day} {at:%B %Y}"
    return f"{at.day} {at:%B %Y, %H:%M}"


def words(value: object) -> str:
    """A code word (``low_reservoir``) in words (``low reservoir``)."""
    return str(value).replace("_", " ")


def program_words(program: dict[str, Any] | None) -> str:
    """The program as a schedule in words: ``continuous 450 µg/day`` or ``from 00:00 15 µg/h,
    from 07:00 25 µg/h, ... (509 µg/day)``."""
    if program is None:
        return "none"
    parsed = program_from_dict(dict(program))
    if parsed.is_continuous:
        text = f"continuous {parsed.daily_dose_ug():g} µg/day"
    else:
        days = [("", parsed.week[0])] if not parsed.varies_by_day else [
            (f"{day}: ", steps)
            for day, steps in zip(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), parsed.week,
                                  strict=True)
        ]  # fmt: skip
        text = "; ".join(
            prefix + ", ".join(
                f"from {s.start_min // 60:02d}:{s.start_min % 60:02d} {s.rate_ug_per_h:g} µg/h"
                for s in steps
            )
            for prefix, steps in days
        )  # fmt: skip
        text += f" (up to {parsed.daily_dose_ug():g} µg/day)"
    for bolus in parsed.periodic_boluses:
        start = f"{bolus.start_min // 60:02d}:{bolus.start_min % 60:02d}"
        text += f"; bolus {bolus.dose_ug:g} µg at {start} over {bolus.duration_min:g} min daily"
    return text


def _battery_words(battery: dict[str, Any]) -> str:
    text = f"{float(battery['remaining_mah']):.1f} mAh left"
    for name, label in (("eri", "ERI (replace the pump)"), ("eos", "end of service")):
        if battery.get(f"{name}_at"):
            text += f"; {label} reached {when_words(battery[f'{name}_at'])}"
        else:
            text += f"; {label} {when_words(battery.get(f'predicted_{name}_at'), NOT_PREDICTED)}"
    return text


def _bolus_words(bolus: dict[str, Any] | None) -> str:
    if not bolus:
        return "none running"
    return (
        f"{words(bolus['kind'])} bolus of {float(bolus['dose_ug']):g} µg running, "
        f"{float(bolus['remaining_ml']):.4g} mL left to deliver"
    )


def status_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of the interrogation table: (what, value in words with units)."""
    rows = [
        ("mode", words(r["mode"])),
        ("program", program_words(r["program"])),
        ("daily dose", f"{float(r['daily_dose_ug']):g} µg/day"),
        ("concentration", f"{float(r['concentration_ug_per_ml']):g} µg/mL"),
        (
            "reservoir",
            f"{float(r['reservoir_ml']):.3f} mL (low-reservoir alarm at "
            f"{float(r['low_reservoir_alarm_ml']):g} mL)",
        ),
        ("battery", _battery_words(r["battery"])),
        (
            "delivered",
            f"{float(r['delivered_ug']):.1f} µg ({float(r['delivered_ml']):.4f} mL) since implant",
        ),
        ("bolus", _bolus_words(r["bolus"])),
        ("last refill", when_words(r.get("last_refill_at"))),
    ]
    for alarm in r["alarms"]:
        state = "active" if alarm.get("active", True) else "cleared"
        rows.append(
            (
                "alarm",
                f"{words(alarm['kind'])} ({alarm['priority']} priority, {state}) since "
                f"{when_words(alarm['at'])}",
            )
        )
    return rows


def status_title(r: dict[str, Any]) -> str:
    return f"{r['model']} {r['serial']}, read {when_words(r['now'])}"
