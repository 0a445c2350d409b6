"""An interrogation: one telemetry session reads the pump; the clinic stores what it said.

One session, one handshake, one charge to the implant's battery: the reading carries the pump's
clock, its status and its event log since the last stored entry. A visit left pending by a lost
answer or a crash is settled from that same log (``commands.settle_from_stored_log``).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Interrogation, Patient, User
from itb.clinic.pumps import PumpLinks
from itb.clinic.services.commands import pending_visits, settle_from_stored_log
from itb.clinic.services.history import ingest_reading
from itb.clinic.services.lookups import active_pump, pump_snapshot
from itb.programmer.pump_clock import ClockCheck, check_clock_against, pump_clock_for


def interrogate(db: Session, links: PumpLinks, patient: Patient, user: User) -> Interrogation:
    pump = active_pump(db, patient)
    reading = links.link(pump.serial).interrogate(pump.last_event_seq)
    before = pump_snapshot(pump)
    interrogation = ingest_reading(db, pump, reading)
    audit.record(db, user, "pump.interrogate", "pump", pump.serial, before, pump_snapshot(pump))
    # the pump's clock, from the reading: no second session to ask for it
    settle_from_stored_log(db, pump, pending_visits(db, pump), interrogation.at)
    db.commit()
    return interrogation


def clock_check(interrogation: Interrogation, now: datetime, zone: tzinfo) -> ClockCheck:
    """The pump's clock at this reading against the patient's standard time at the clinic's
    ``now`` (naive, the clinic's wall clock in ``zone``; the patients live in the clinic's
    zone), in words: "pump clock 7 min behind the patient's standard time ..." (H77)."""
    return check_clock_against(interrogation.at, expected_pump_clock(now, zone))


def expected_pump_clock(now: datetime, zone: tzinfo) -> datetime:
    """What a pump should read at the clinic's ``now``: the zone's standard time."""
    aware = now.replace(tzinfo=zone) if now.tzinfo is None else now
    return pump_clock_for(aware, zone).replace(microsecond=0)
