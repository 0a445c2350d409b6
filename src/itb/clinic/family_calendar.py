"""The family's calendar (RFC 5545): their child's upcoming visits, by first name only.

Calendars sync to third parties (phones, mail providers): an event names the child by the
first name the care team entered for the family, never the full name or the MRN.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from itb.clinic.calendar import escape_text, fold
from itb.clinic.services.family_view import FamilyView


def family_ics(view: FamilyView, stamp_utc: datetime) -> str:
    stamp = stamp_utc.strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//OpenITB//family//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(view.first_name)}: ITB visits",
    ]
    for visit in view.visits:
        day = visit.on
        lines += [
            "BEGIN:VEVENT",
            f"UID:family-{view.patient_id}-{visit.uid}-{day:%Y%m%d}@openitb",
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
            f"SUMMARY:{escape_text(visit.what)}",
            f"DESCRIPTION:{escape_text('Clinic: ' + view.clinic_phone)}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
