"""The pump's clock at the clinic, through the real path: a real ``itb pump serve`` process
reached over telemetry, the clinic's pump-clock page read and corrected by a nurse (issue 11,
H77). The pump starts at ``PUMP_START`` and runs at the speed of real time; the clinic's clock
reads 7 min later, in UTC (no summer hour): the pump is 7 min behind the patient's time."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from itb.clinic.models import AuditEntry, PumpEvent
from tests.clinic.support import Clinic
from tests.clinic.test_telemetry_links import (
    PUMP_START,
    SERIAL,
    add_patient,
    pumps_for,
    read_pump,
)
from tests.pumpd.support import PumpProcess, make_pump, running


@pytest.fixture(scope="module")
def clock_pump_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("clock-pump")
    state, (clinician,) = make_pump(tmp, "clinician")
    return state, clinician / "programmer.key"


@pytest.fixture
def pump(tmp_path: Path, clock_pump_template: tuple[Path, Path]) -> Iterator[PumpProcess]:
    state = tmp_path / "pump"
    shutil.copytree(clock_pump_template[0], state)
    with running(state) as process:
        yield process


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _clinic_seven_minutes_ahead(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, key: Path
) -> int:
    clinic.app.state.settings.links = pumps_for(tmp_path, pump, key)
    clinic.app.state.settings.zone = ZoneInfo("UTC")
    clinic.clock.now = PUMP_START + timedelta(minutes=7)
    return add_patient(clinic, SERIAL, key)


def test_a_nurse_reads_a_pump_seven_minutes_behind_and_corrects_its_clock(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clock_pump_template: tuple[Path, Path]
) -> None:
    key = clock_pump_template[1]
    patient_id = _clinic_seven_minutes_ahead(clinic, tmp_path, pump, key)
    clinic.login("nurse_demo")
    page = clinic.client.get(f"/patients/{patient_id}/pump/clock")
    assert page.status_code == 200 and "Read the pump" in page.text
    url = f"/patients/{patient_id}/pump/clock"

    read = clinic.client.post(f"{url}/read", data={"csrf_token": _csrf(page.text)})
    assert read.status_code == 200, read.text
    assert "7 min behind the patient&#39;s standard time" in read.text
    assert "every flex step runs 7 min late" in read.text
    assert 'id="clock-set"' in read.text  # a nurse may correct it

    done = clinic.client.post(f"{url}/set", data={"csrf_token": _csrf(read.text)})
    assert done.status_code == 200, done.text
    assert "Clock corrected and recorded" in done.text
    assert "within 5 min of the patient" in done.text and 'id="clock-set"' not in done.text
    # the pump's own clock, as the programmer reads it: 7 min on from where it was
    pump_now = read_pump(pump, key)["now"]
    assert pump_now >= (PUMP_START + timedelta(minutes=7)).isoformat()
    with clinic.sessions() as db:
        (entry,) = db.execute(
            select(AuditEntry).where(AuditEntry.action == "pump.set_clock")
        ).scalars()
        assert entry.username == "nurse_demo" and entry.entity_id == SERIAL
        kinds = list(db.execute(select(PumpEvent.kind).where(PumpEvent.serial == SERIAL)).scalars())
    assert kinds.count("clock") == 1  # the pump logged it; the clinic stored the entry
    # corrected, there is nothing to correct: refused in words, nothing sent
    again = clinic.client.post(f"{url}/set", data={"csrf_token": _csrf(done.text)})
    assert again.status_code == 422 and "nothing to correct" in again.text
    clinic.login("dr_demo")
    assert clinic.client.get("/api/audit/verify").json()["intact"] is True


def test_a_viewer_reads_the_page_but_cannot_correct_the_clock(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clock_pump_template: tuple[Path, Path]
) -> None:
    patient_id = _clinic_seven_minutes_ahead(clinic, tmp_path, pump, clock_pump_template[1])
    clinic.login("viewer_demo")
    page = clinic.client.get(f"/patients/{patient_id}/pump/clock")
    assert page.status_code == 403
    clinic.login("nurse_demo")
    token = _csrf(clinic.client.get(f"/patients/{patient_id}/pump/clock").text)
    clinic.login("viewer_demo")
    refused = clinic.client.post(
        f"/patients/{patient_id}/pump/clock/set", data={"csrf_token": token}
    )
    assert refused.status_code in (403, 303), refused.status_code
    with clinic.sessions() as db:
        assert not db.execute(
            select(AuditEntry).where(AuditEntry.action == "pump.set_clock")
        ).first()
