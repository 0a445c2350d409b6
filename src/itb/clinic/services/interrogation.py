"""An interrogation: one telemetry session reads the pump; the clinic stores what it said.

One session, one handshake, one charge to the implant's battery: the reading carries the pump's
clock, its status and its event log since the last stored entry. A visit left pending by a lost
answer or a crash is settled from that same log (``commands.settle_from_stored_log``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Interrogation, Patient, User
from itb.clinic.pumps import PumpLinks
from itb.clinic.services.commands import pending_visits, settle_from_stored_log
from itb.clinic.services.history import ingest_reading
from itb.clinic.services.lookups import active_pump, pump_snapshot


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
