"""The pump page's commands over the real telemetry link to an `itb pump serve` process: a
reviewed bolus, a stop with a reason and a resume, an alarm test, each in the pump's own log."""

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


def test_a_bolus_a_stop_and_a_resume_reach_a_pump_process_and_its_log(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    connect_clinic(clinic, pumps_for(tmp_path, pump, clinic_key))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    clinic.login("dr_demo")
    assert clinic.client.post(f"/api/patients/{patient_id}/interrogate").status_code == 200
    review = clinic.client.post(
        f"/api/patients/{patient_id}/bolus/review", json={"dose_ug": 25, "duration_min": 20}
    ).json()
    assert review["verdict"] == "ok", review
    given = clinic.client.post(
        f"/api/patients/{patient_id}/bolus",
        json={"dose_ug": 25, "duration_min": 20, "review_token": review["review_token"]},
    )
    assert given.status_code == 200, given.text
    stop = clinic.client.post(f"/api/patients/{patient_id}/stop", json={"reason": "revision"})
    assert stop.status_code == 200, stop.text
    assert clinic.client.post(f"/api/patients/{patient_id}/resume").status_code == 200
    with clinic.sessions() as db:
        events = db.execute(
            select(PumpEvent).where(PumpEvent.serial == SERIAL).order_by(PumpEvent.seq)
        ).scalars()
        kinds = [(e.kind, json.loads(e.data_json)) for e in events]
    mine = [(k, d) for k, d in kinds if k in ("bolus_start", "stop", "resume")]
    assert [k for k, _ in mine] == ["bolus_start", "stop", "resume"]
    assert mine[0][1]["dose_ug"] == 25
    assert mine[1][1]["cancelled_bolus"] == "clinician"  # the stop ended the running bolus


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
