"""Pump history, stored idempotently: interrogations, the pump's event log, its alarms.

Each event-log entry is stored once, keyed by the pump's serial and the entry's sequence number
(the AndroidAPS rule): reading the same log twice adds nothing. A reading from a pump whose serial
is not the one on the record is refused before anything is stored. The pump's last state and the
due dates the dashboard sorts on are refreshed from each reading.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import SerialMismatchError
from itb.clinic.models import Alarm, Interrogation, Pump, PumpEvent, Visit
from itb.clinic.pumps import PumpReading
from itb.clinic.urgency import ObservedState, due_dates, keeps_family_report
from itb.pump.status import AlarmStatus, PumpStatus
from itb.telemetry.status_wire import status_from_stored, status_to_wire


def ingest_reading(
    db: Session, pump: Pump, reading: PumpReading, visit: Visit | None = None
) -> Interrogation:
    """Store an interrogation: refuse a foreign serial first; each log entry stored once."""
    status = reading.status
    if status.serial != pump.serial:
        raise SerialMismatchError(
            f"the pump answered with serial {status.serial!r}, but the patient's record "
            f"says {pump.serial!r}: nothing was stored"
        )
    _store_events(db, pump, reading.entries)
    _store_alarms(db, pump, status.alarms)
    interrogation = Interrogation(
        pump_id=pump.id,
        visit_id=visit.id if visit else None,
        at=status.now,
        # the status as the pump sent it: its wire form (telemetry.status_wire)
        status_json=audit.canonical_json(status_to_wire(status)),
    )
    db.add(interrogation)
    _update_pump_state(pump, status)
    return interrogation


def stored_status(interrogation: Interrogation) -> PumpStatus:
    """The typed status of a stored interrogation (rows stored before the pump reported its
    predicted ERI and EOS read as not predicted)."""
    return status_from_stored(json.loads(interrogation.status_json))


def _store_events(db: Session, pump: Pump, entries: list[dict[str, Any]]) -> None:
    seqs = [int(e["seq"]) for e in entries]
    if not seqs:
        return
    known = set(
        db.execute(
            select(PumpEvent.seq).where(PumpEvent.serial == pump.serial, PumpEvent.seq.in_(seqs))
        ).scalars()
    )
    for entry in entries:
        seq = int(entry["seq"])
        if seq in known:
            continue
        known.add(seq)
        db.add(
            PumpEvent(
                pump_id=pump.id,
                serial=pump.serial,
                seq=seq,
                at=_as_datetime(entry["at"]),
                kind=str(entry["kind"]),
                data_json=audit.canonical_json(entry.get("data", {})),
            )
        )
    pump.last_event_seq = max(pump.last_event_seq, *seqs)


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _store_alarms(db: Session, pump: Pump, alarms: tuple[AlarmStatus, ...]) -> None:
    stored = {
        (a.kind, a.raised_at): a
        for a in db.execute(select(Alarm).where(Alarm.pump_id == pump.id)).scalars()
    }
    seen = set()
    for item in alarms:
        key = (item.kind.value, item.at)
        seen.add(key)
        alarm = stored.get(key)
        if alarm is None:
            db.add(
                Alarm(
                    pump_id=pump.id,
                    kind=key[0],
                    priority=item.priority.value,
                    raised_at=key[1],
                    active=item.active,
                )
            )
        else:
            alarm.active = item.active
    for key, alarm in stored.items():
        if key not in seen and alarm.active:
            alarm.active = False  # no longer reported by the pump: cleared


def _update_pump_state(pump: Pump, status: PumpStatus) -> None:
    pump.state_at = status.now
    pump.mode = status.mode.value
    pump.reservoir_ml = status.reservoir_ml
    pump.concentration_ug_per_ml = status.concentration_ug_per_ml
    pump.daily_dose_ug = status.daily_dose_ug
    pump.low_reservoir_alarm_ml = status.low_reservoir_alarm_ml
    if status.last_refill_at is not None:
        pump.filled_at = status.last_refill_at
    # the pump's own dates: its firmware's prediction (the entered date once reached)
    battery = status.battery
    pump.battery_eri_at = battery.predicted_eri_at or battery.eri_at
    pump.battery_eos_at = battery.predicted_eos_at or battery.eos_at
    # a bolus in progress (a priming bolus just after the implant) still takes its volume
    refresh_due_dates(pump, status.bolus.remaining_ml if status.bolus else 0.0)


def observed_state(pump: Pump, at: datetime, pending_bolus_ml: float = 0.0) -> ObservedState:
    """The pump row's last known state, as the due dates read it: the reservoir less the
    volume a bolus in progress will still take from it."""
    reservoir_ml = pump.reservoir_ml
    if reservoir_ml is not None:
        reservoir_ml = max(reservoir_ml - pending_bolus_ml, 0.0)
    return ObservedState(
        at=at,
        model=pump.model,
        implanted_at=pump.implanted_at,
        reservoir_ml=reservoir_ml,
        low_reservoir_alarm_ml=pump.low_reservoir_alarm_ml,
        daily_dose_ug=pump.daily_dose_ug,
        concentration_ug_per_ml=pump.concentration_ug_per_ml,
        filled_at=pump.filled_at,
        battery_eri_at=pump.battery_eri_at,
        battery_eos_at=pump.battery_eos_at,
        mode=pump.mode,
    )


def refresh_due_dates(pump: Pump, pending_bolus_ml: float = 0.0) -> None:
    """Recompute the projected dates the dashboard sorts on, from the pump's last state."""
    if pump.state_at is None:
        return
    dates = due_dates(observed_state(pump, pump.state_at, pending_bolus_ml))
    pump.low_reservoir_at = dates.low_reservoir_at
    pump.empty_at = dates.empty_at
    pump.stability_at = dates.stability_at
    pump.eri_at = dates.eri_at
    pump.eos_at = dates.eos_at
    pump.next_due_at = dates.next_due_at
    pump.next_refill_at = dates.next_refill_at
    if keeps_family_report(pump.harm):  # an open family report stays first (issue 16)
        return
    pump.harm_at = dates.harm_at
    pump.harm = dates.harm.value if dates.harm else None
