"""Pump history is stored once, keyed by serial and sequence number; a foreign pump is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from itb.clinic import audit, services
from itb.clinic.errors import SerialMismatchError
from itb.clinic.models import AuditEntry, Interrogation, Pump, PumpEvent
from itb.clinic.pumps import PumpReading
from tests.clinic.support import Clinic


def _events(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(PumpEvent)).scalar_one())


def test_reading_the_same_log_twice_adds_nothing(clinic: Clinic) -> None:
    fw = clinic.pumps.firmware("SIM-001")
    reading = PumpReading(fw.status(), [e.to_dict() for e in fw.log.entries(since_seq=0)])
    with clinic.sessions() as db:
        pump = db.execute(select(Pump).where(Pump.serial == "SIM-001")).scalar_one()
        before = _events(db)
        services.ingest_reading(db, pump, reading)
        db.commit()
        services.ingest_reading(db, pump, reading)
        db.commit()
        assert _events(db) == before  # the demo already stored this whole log


def test_new_entries_are_added_once_with_their_sequence_numbers(clinic: Clinic) -> None:
    fw = clinic.pumps.firmware("SIM-003")
    clinic.clock.advance(1)
    fw.refill(clinic.clock(), 20.0, 500.0)
    with clinic.sessions() as db:
        pump = db.execute(select(Pump).where(Pump.serial == "SIM-003")).scalar_one()
        before = _events(db)
        for _ in range(2):
            services.ingest_reading(db, pump, clinic.pumps.link("SIM-003").interrogate(0))
            db.commit()
        assert _events(db) == before + 1
        assert pump.last_event_seq == fw.log.entries()[-1].seq
        assert pump.reservoir_ml == 20.0


def test_a_pump_whose_serial_does_not_match_the_record_is_refused_before_storing(
    clinic: Clinic,
) -> None:
    foreign = clinic.pumps.link("SIM-002").interrogate(0)
    with clinic.sessions() as db:
        pump = db.execute(select(Pump).where(Pump.serial == "SIM-001")).scalar_one()
        reservoir_before = pump.reservoir_ml
        events = _events(db)
        readings = db.execute(select(func.count()).select_from(Interrogation)).scalar_one()
        with pytest.raises(SerialMismatchError, match="SIM-002"):
            services.ingest_reading(db, pump, foreign)
        db.commit()
        assert _events(db) == events
        assert db.execute(select(func.count()).select_from(Interrogation)).scalar_one() == readings
        assert pump.reservoir_ml == reservoir_before


def test_the_audit_log_refuses_update_and_delete(clinic: Clinic) -> None:
    with clinic.sessions() as db:
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text("UPDATE audit_log SET username = 'mallory'"))
        db.rollback()
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text("DELETE FROM audit_log"))
        db.rollback()
        assert audit.verify_chain(db).intact


def test_a_forged_entry_breaks_the_chain(clinic: Clinic) -> None:
    with clinic.sessions() as db:
        last = db.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
        db.add(
            AuditEntry(
                at_utc=audit.utc_now(),
                user_id=None,
                username="mallory",
                action="pump.program",
                entity="pump",
                entity_id="SIM-001",
                before_json="null",
                after_json="null",
                prev_hash=last.hash,
                hash="f" * 64,  # not the hash of its content
            )
        )
        db.commit()
        report = audit.verify_chain(db)
        assert not report.intact and report.first_broken_id == last.id + 1
