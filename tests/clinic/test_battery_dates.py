"""ERI and EOS have one source: the pump's own prediction, reported at each interrogation.

The interrogation report (itb.programmer.report), the dashboard row and the calendar (.ics) all
show the dates the firmware reported; none re-derives them from the battery or the model.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from itb.clinic import services
from itb.clinic.calendar import calendar_ics
from itb.clinic.models import Patient, Pump
from itb.programmer.report import build_report
from tests.clinic.support import Clinic


def _day(iso_text: str | None) -> str:
    assert iso_text is not None
    return iso_text[:10]


def test_report_dashboard_and_calendar_show_the_pumps_own_eri_and_eos(clinic: Clinic) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-003")
    assert clinic.client.post(f"/api/patients/{pid}/interrogate").status_code == 200
    battery = clinic.pumps.firmware("SIM-003").status().battery
    assert battery.predicted_eri_at is not None and battery.predicted_eos_at is not None
    eri, eos = (
        battery.predicted_eri_at.date().isoformat(),
        battery.predicted_eos_at.date().isoformat(),
    )

    with clinic.sessions() as db:
        pump = db.execute(select(Pump).where(Pump.serial == "SIM-003")).scalar_one()
        reading = services.last_interrogation(db, pump)
        assert reading is not None
        report = build_report(services.stored_status(reading), [], clinic.clock())
        rows, _ = services.dashboard(db, clinic.clock(), limit=1000)
        row = next(r for r in rows if r.serial == "SIM-003")
        # the calendar as seen ten days before ERI, so that the replacement is listed
        assert pump.eri_at is not None
        near_eri = pump.eri_at - timedelta(days=10)
        ics = calendar_ics(db, near_eri).replace("\r\n ", "")
        patient = db.get(Patient, pid)
        assert patient is not None

    assert (_day(report["battery"]["eri_at"]), _day(report["battery"]["eos_at"])) == (eri, eos)
    assert row.eri_at is not None and row.eos_at is not None
    assert (row.eri_at.date().isoformat(), row.eos_at.date().isoformat()) == (eri, eos)
    assert row.to_dict()["days_to_eos"] is not None
    event = next(e for e in ics.split("BEGIN:VEVENT") if "UID:replacement-SIM-003-" in e)
    assert f"DTSTART;VALUE=DATE:{eri.replace('-', '')}" in event
    assert f"delivery stops on {eos}" in event
