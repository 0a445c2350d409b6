"""The alarm test on the pump page (issue 14): a nurse or physician sounds every alarm tone
once, with a reason; the pump logs it, the clinic keeps a visit and an audit entry, the
patient page says which tones sounded. A viewer cannot; without a reason nothing is sent."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from itb.clinic.models import AuditEntry, PumpEvent, Visit, VisitKind
from tests.clinic.support import Clinic
from tests.web.test_pump_actions import _csrf  # the pump page's form token

CASEY = "DEMO-003"  # peristaltic-20, pump SIM-003
SERIAL = "SIM-003"
SOUNDED = "critical two-tone (3 s) and non-critical single tone (1 s)"  # S7 S21 S22


def _pump_tests(clinic: Clinic) -> list[dict[str, Any]]:
    with clinic.sessions() as db:
        rows = db.execute(
            select(PumpEvent).where(PumpEvent.serial == SERIAL, PumpEvent.kind == "alarm_test")
        ).scalars()
        return [json.loads(r.data_json) for r in rows]


def test_a_nurse_sounds_the_alarm_test_with_a_reason_and_the_patient_page_says_so(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    casey = clinic.patient_id(CASEY)
    csrf = _csrf(clinic, casey)
    mode_before = clinic.client.get(f"/patients/{casey}/pump").text.split('data-mode="')[1][:8]
    sent = clinic.client.post(
        f"/patients/{casey}/pump/alarm-test",
        data={"csrf_token": csrf, "reason": "parents unsure they would hear it"},
    )
    assert sent.status_code == 200, sent.text
    assert f"the pump sounded the {SOUNDED}" in sent.text
    assert sent.text.split('data-mode="')[1][:8] == mode_before  # delivery unchanged
    [logged] = _pump_tests(clinic)
    assert [t["duration_s"] for t in logged["tones"]] == [3.0, 1.0]
    with clinic.sessions() as db:
        [visit] = db.execute(select(Visit).where(Visit.kind == VisitKind.ALARM_TEST)).scalars()
        [audit] = db.execute(
            select(AuditEntry).where(AuditEntry.action == "pump.alarm_test")
        ).scalars()
        assert visit.status == "completed"
        assert json.loads(audit.after_json)["reason"] == "parents unsure they would hear it"
    visits = clinic.client.get(f"/patients/{casey}").text.split('id="visits"')[1]
    assert "Alarm test" in visits and f"Tones sounded: {SOUNDED}" in visits
    assert "parents unsure they would hear it" in visits
    assert "[{" not in visits and "duration_s" not in visits


def test_an_alarm_test_without_a_reason_sends_nothing_and_says_why(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    casey = clinic.patient_id(CASEY)
    page = clinic.client.post(
        f"/patients/{casey}/pump/alarm-test", data={"csrf_token": _csrf(clinic, casey)}
    )
    assert page.status_code == 422
    error = page.text.split('id="action-error"')[1].split("</p>")[0]
    assert "Reason" in error and "required" in error
    api = clinic.client.post(f"/api/patients/{casey}/alarms/test", json={"reason": "   "})
    assert api.status_code == 422 and api.json()["detail"][0]["loc"][-1] == "reason"
    assert _pump_tests(clinic) == []


def test_a_physician_tests_a_stopped_pump_over_the_api_and_it_stays_stopped(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    casey = clinic.patient_id(CASEY)
    assert clinic.client.post(f"/api/patients/{casey}/stop", json={"reason": "MRI"}).is_success
    answer = clinic.client.post(f"/api/patients/{casey}/alarms/test", json={"reason": "annual"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["words"] == f"Sounded: {SOUNDED}."
    assert len(_pump_tests(clinic)) == 1
    page = clinic.client.get(f"/patients/{casey}/pump").text
    assert 'id="resume-form"' in page and 'data-mode="stopped"' in page


def test_a_viewer_cannot_sound_the_alarm_test(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    casey = clinic.patient_id(CASEY)
    api = clinic.client.post(f"/api/patients/{casey}/alarms/test", json={"reason": "curious"})
    assert api.status_code == 403
    assert _pump_tests(clinic) == []
    clinic.login("nurse_demo")
    assert 'id="alarm-test-form"' in clinic.client.get(f"/patients/{casey}/pump").text
