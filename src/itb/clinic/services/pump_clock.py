"""The pump's clock at the clinic: read it against the clinic's clock, and correct it.

The pump keeps the patient's standard time; the clinic's clock is wall time in the clinic's
zone, where its patients live (``itb.web.clinic_time``): the two differ by the summer hour. A
reading says the drift in words (:func:`itb.programmer.pump_clock.check_clock_against`); a
nurse or physician corrects a clock that is off by more than five minutes: the pump sets it
(logged by the pump, old and new; refused beyond two hours, ``itb.pump.clock``), the clinic
audits it, and the pump is read again so that the page shows the clock as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Patient, User
from itb.clinic.pumps import PumpClockLink, PumpLinks
from itb.clinic.services.interrogation import clock_check, expected_pump_clock, interrogate
from itb.clinic.services.lookups import active_pump
from itb.errors import InputError
from itb.programmer.pump_clock import ClockCheck


@dataclass(frozen=True, slots=True)
class ClinicClock:
    """The clinic's clock now (naive wall time) and its zone."""

    now: datetime
    zone: tzinfo


def read_pump_clock(
    db: Session, links: PumpLinks, patient: Patient, user: User, clock: ClinicClock
) -> ClockCheck:
    """Interrogate (audited, stored) and compare the pump's clock with the patient's
    standard time now."""
    return clock_check(interrogate(db, links, patient, user), clock.now, clock.zone)


def correct_pump_clock(
    db: Session, links: PumpLinks, patient: Patient, user: User, clock: ClinicClock
) -> tuple[ClockCheck, ClockCheck]:
    """Set the pump's clock to the patient's standard time when it is off; (before, after).
    InputError, nothing sent, when the clock is right or the pump's link cannot set it."""
    pump = active_pump(db, patient)
    link = links.link(pump.serial)
    if not isinstance(link, PumpClockLink):
        raise InputError("clock", "this pump's connection cannot set its clock; nothing was sent")
    before = read_pump_clock(db, links, patient, user, clock)
    if not before.needs_setting:
        raise InputError("clock", f"{before.words}: nothing to correct, nothing was sent")
    new_time = expected_pump_clock(clock.now, clock.zone)
    link.set_clock(new_time)
    audit.record(
        db,
        user,
        "pump.set_clock",
        "pump",
        pump.serial,
        {"pump_clock": before.pump_time.isoformat(), "drift_min": before.drift_min},
        {"pump_clock": new_time.isoformat()},
    )
    db.commit()
    return before, read_pump_clock(db, links, patient, user, clock)
