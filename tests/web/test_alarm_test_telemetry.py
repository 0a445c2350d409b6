"""The alarm test over the real telemetry link to an `itb pump serve` process: sent by the
clinic's key (a clinician's), in the pump's own log with its tones, the visit completed."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from itb.clinic.models import PumpEvent, Visit, VisitKind
from tests.clinic.support import Clinic
from tests.clinic.test_telemetry_links import (
    SERIAL,
    add_patient,
    clinic_key,
    connect_clinic,
    pump,
    pump_template,
    pumps_for,
)
from tests.pumpd.support import PumpProcess

__all__ = ["clinic_key", "pump", "pump_template"]  # the pump process fixtures


def test_an_alarm_test_reaches_a_pump_process_and_its_log(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    connect_clinic(clinic, pumps_for(tmp_path, pump, clinic_key))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    clinic.login("nurse_demo")
    answer = clinic.client.post(
        f"/api/patients/{patient_id}/alarms/test", json={"reason": "yearly check"}
    )
    assert answer.status_code == 200, answer.text
    with clinic.sessions() as db:
        events = db.execute(
            select(PumpEvent).where(PumpEvent.serial == SERIAL, PumpEvent.kind == "alarm_test")
        ).scalars()
        [tones] = [json.loads(e.data_json)["tones"] for e in events]
        [visit] = db.execute(select(Visit).where(Visit.kind == VisitKind.ALARM_TEST)).scalars()
        assert visit.status == "completed"
    assert tones == answer.json()["tones"]
    assert [t["priority"] for t in tones] == ["critical", "non_critical"]
