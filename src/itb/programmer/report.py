"""Interrogation report: a pump's status as JSON and as an HTML page a clinic can file.

Input is the pump's typed status (:class:`itb.pump.status.PumpStatus`, what ``Firmware.status()``
builds and telemetry carries) and recent event-log entries (``{seq, at, kind, data}``); the time
the report is made is passed in. Nothing here talks to a pump, reads the clock or writes a file:
the caller saves the string.

The ERI and EOS dates are the firmware's own (``battery.predicted_eri_at``/``predicted_eos_at``,
equal to the entered dates once reached): the report never re-derives them, so it shows the
same dates as the clinic's dashboard and calendar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jinja2

from itb.errors import InputError
from itb.programmer.record_words import kind_words, record_sentence, value_words
from itb.programmer.refill import RefillInput, plan_refill
from itb.pump.hardware import pump_model
from itb.pump.status import BatteryStatus, PumpStatus
from itb.units import SECONDS_PER_DAY

EVENT_KEYS = ("seq", "at", "kind", "data")
DEFAULT_MAX_EVENTS = 50
DISCLAIMER = "OpenITB simulation report. Not a medical device; not for clinical decisions."


class ReportError(InputError):
    """An event (or a value) that lacks what the report needs; ``field`` says where."""


def _require(mapping: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ReportError(where, f"missing {', '.join(missing)}; expected {', '.join(keys)}")


def _time(value: object, where: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    reason = "expected an ISO 8601 time such as 2027-01-04T09:30:00"
    raise ReportError(where, reason, f"{where}={value!r}: {reason}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="minutes")


def _days_between(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds() / SECONDS_PER_DAY, 1)


def build_report(
    status: PumpStatus,
    events: Sequence[Mapping[str, Any]],
    generated_at: datetime,
    max_events: int = DEFAULT_MAX_EVENTS,
) -> dict[str, Any]:
    """The report as one JSON-ready dict (also what the HTML page shows)."""
    alarms = [
        {
            "kind": alarm.kind.value,
            "priority": alarm.priority.value,
            "at": _iso(alarm.at),
            "active": alarm.active,
        }
        for alarm in status.alarms
    ]
    alarms.sort(key=lambda a: (not a["active"], a["at"] or ""))  # active first
    recent = _recent_events(events)
    program = None if status.program is None else status.program.to_dict()
    return {
        "title": f"Pump interrogation report: {status.serial}",
        "disclaimer": DISCLAIMER,
        "generated_at": _iso(generated_at),
        "pump": {
            "serial": status.serial,
            "model": status.model,
            "mode": status.mode.value,
            "pump_time": _iso(status.now),
        },
        "therapy": {
            "program": program,
            "daily_dose_ug": float(status.daily_dose_ug),
            "concentration_ug_per_ml": status.concentration_ug_per_ml,
        },
        "reservoir": _reservoir_section(status),
        "battery": _battery_section(status.battery, status.now),
        "alarms": alarms,
        "active_alarm_count": sum(1 for a in alarms if a["active"]),
        "totals": {
            "delivered_ug": float(status.delivered_ug),
            "delivered_ml": float(status.delivered_ml),
            "received_ug": float(status.received_ug),
        },
        "events": recent[:max_events],
        "events_left_off": max(0, len(recent) - max_events),
    }


def _recent_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    recent = []
    for i, event in enumerate(events):
        _require(event, EVENT_KEYS, f"events[{i}]")
        recent.append(
            {
                "seq": int(event["seq"]),
                "at": _iso(_time(event["at"], f"events[{i}].at")),
                "kind": str(event["kind"]),
                "data": event["data"],
            }
        )
    recent.sort(key=lambda e: e["seq"], reverse=True)  # most recent first
    return recent


def _battery_section(battery: BatteryStatus, pump_now: datetime) -> dict[str, Any]:
    """The firmware's ERI and EOS: its prediction, or the date it entered them."""
    eri_at = battery.predicted_eri_at or battery.eri_at
    eos_at = battery.predicted_eos_at or battery.eos_at
    return {
        "remaining_mah": float(battery.remaining_mah),
        "eri_at": _iso(eri_at),
        "days_to_eri": _days_between(pump_now, eri_at),
        "eri_reached": battery.eri_at is not None,
        "eos_at": _iso(eos_at),
        "days_to_eos": _days_between(pump_now, eos_at),
        "eos_reached": battery.eos_at is not None,
    }


def _reservoir_section(status: PumpStatus) -> dict[str, Any]:
    section: dict[str, Any] = {
        "reservoir_ml": float(status.reservoir_ml),
        "low_reservoir_alarm_ml": float(status.low_reservoir_alarm_ml),
        "days_to_low_reservoir": None,
        "low_reservoir_on": None,
        "days_to_empty": None,
        "empty_on": None,
        "note": "",
    }
    if status.concentration_ug_per_ml is None:
        section["note"] = "reservoir dates not computed: the pump does not know its concentration"
        return section
    try:
        model = pump_model(status.model)
        section["capacity_ml"] = model.reservoir_ml
        schedule = plan_refill(
            RefillInput(
                model,
                status.reservoir_ml,
                status.concentration_ug_per_ml,
                status.daily_dose_ug,
                status.low_reservoir_alarm_ml,
            )
        )
    except ValueError as error:  # an InputError: unknown model, a figure out of range
        # The report still files; it says why the dates are missing.
        section["note"] = f"reservoir dates not computed: {error}"
        return section
    pump_now = status.now
    section["days_to_low_reservoir"] = round(schedule.days_to_low_reservoir, 1)
    section["low_reservoir_on"] = (
        (pump_now + timedelta(days=schedule.days_to_low_reservoir)).date().isoformat()
    )
    section["days_to_empty"] = round(schedule.days_to_empty, 1)
    section["empty_on"] = (pump_now + timedelta(days=schedule.days_to_empty)).date().isoformat()
    section["note"] = "; ".join(schedule.warnings)
    return section


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ r.title }}</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #999; padding: 0.3em 0.6em; text-align: left; }
.active { color: #a00; font-weight: bold; }
.disclaimer { border: 2px solid #a00; padding: 0.5em; }
</style>
</head>
<body>
<h1>{{ r.title }}</h1>
<p class="disclaimer">{{ r.disclaimer }}</p>
<p>Report generated {{ r.generated_at|replace("T", " ") }};
pump clock {{ r.pump.pump_time|replace("T", " ") }}.</p>

<h2>Pump</h2>
<table>
<tr><th>Serial</th><td>{{ r.pump.serial }}</td></tr>
<tr><th>Model</th><td>{{ r.pump.model }}</td></tr>
<tr><th>Mode</th><td>{{ r.pump.mode }}</td></tr>
</table>

<h2>Therapy</h2>
<table>
<tr><th>Daily dose</th><td>{{ "%.1f"|format(r.therapy.daily_dose_ug) }} µg/day</td></tr>
<tr><th>Concentration (read from pump)</th>
<td>{% if r.therapy.concentration_ug_per_ml is not none %}
{{- "%g"|format(r.therapy.concentration_ug_per_ml) }} µg/mL{% else %}unknown{% endif %}</td></tr>
<tr><th>Program</th><td>{{ program_words }}</td></tr>
</table>

<h2>Reservoir</h2>
<table>
<tr><th>Volume</th><td>{{ "%.2f"|format(r.reservoir.reservoir_ml) }} mL
{%- if r.reservoir.capacity_ml is defined %} of {{ "%g"|format(r.reservoir.capacity_ml) }} mL
{%- endif %}</td></tr>
<tr><th>Low-reservoir alarm at</th>
<td>{{ "%.1f"|format(r.reservoir.low_reservoir_alarm_ml) }} mL</td></tr>
{% if r.reservoir.days_to_low_reservoir is not none %}
<tr><th>Low-reservoir alarm</th><td>in {{ r.reservoir.days_to_low_reservoir }} days,
{{ r.reservoir.low_reservoir_on }}</td></tr>
<tr><th>Empty</th><td>in {{ r.reservoir.days_to_empty }} days, {{ r.reservoir.empty_on }}</td></tr>
{% endif %}
{% if r.reservoir.note %}<tr><th>Note</th><td>{{ r.reservoir.note }}</td></tr>{% endif %}
</table>

<h2>Battery</h2>
<table>
<tr><th>Remaining</th><td>{{ "%.1f"|format(r.battery.remaining_mah) }} mAh</td></tr>
<tr><th>Estimated ERI</th><td>{{ (r.battery.eri_at or "not estimated")|replace("T", " ") }}
{%- if r.battery.eri_reached %} (reached)
{%- elif r.battery.days_to_eri is not none %} (in {{ r.battery.days_to_eri }} days){% endif %}
</td></tr>
<tr><th>Estimated end of service</th>
<td>{{ (r.battery.eos_at or "not estimated")|replace("T", " ") }}
{%- if r.battery.eos_reached %} (reached)
{%- elif r.battery.days_to_eos is not none %} (in {{ r.battery.days_to_eos }} days){% endif %}
</td></tr>
</table>

<h2>Alarms ({{ r.active_alarm_count }} active)</h2>
{% if r.alarms %}
<table>
<tr><th>Alarm</th><th>Priority</th><th>Since</th><th>State</th></tr>
{% for a in r.alarms %}
<tr{% if a.active %} class="active"{% endif %}><td>{{ a.kind }}</td><td>{{ a.priority }}</td>
<td>{{ a.at|replace("T", " ") }}</td><td>{{ "active" if a.active else "cleared" }}</td></tr>
{% endfor %}
</table>
{% else %}<p>No alarms.</p>{% endif %}

<h2>Delivered since implant</h2>
<table>
<tr><th>Drug delivered by the pump</th><td>{{ "%.1f"|format(r.totals.delivered_ug) }} µg
({{ "%.3f"|format(r.totals.delivered_ml) }} mL)</td></tr>
<tr><th>Drug received by the patient</th><td>{{ "%.1f"|format(r.totals.received_ug) }} µg</td></tr>
</table>

<h2>Recent events</h2>
{% if r.events %}
<table>
<tr><th>#</th><th>Time</th><th>Event</th><th>Details</th></tr>
{% for e in r.events %}
<tr><td>{{ e.seq }}</td><td>{{ e.at|replace("T", " ") }}</td><td>{{ kind_words(e.kind) }}</td>
<td>{{ record_sentence(e.data) if e.data is mapping else e.data }}</td></tr>
{% endfor %}
</table>
{% if r.events_left_off %}<p>{{ r.events_left_off }} older events not shown.</p>{% endif %}
{% else %}<p>No events.</p>{% endif %}
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def render_report_html(report: Mapping[str, Any]) -> str:
    """The HTML page of a report made by :func:`build_report`. Every value is escaped."""
    template = _ENV.from_string(_TEMPLATE)
    program = report["therapy"]["program"]
    return template.render(
        r=report,
        program_words=value_words("program", program) if program else "none",
        kind_words=kind_words,
        record_sentence=record_sentence,
    )
