"""The pump page's commands (issue 14): a clinician bolus reviewed and confirmed as a program
is, stop with a reason and the hours to withdrawal, resume at the program's dose, clear an
alarm. Against the demo pumps, on SQLite and on PostgreSQL; each one in the pump's own log,
audited, and refused in words without sending anything."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from itb.clinic.models import AuditEntry, Patient, PumpEvent, User, Visit, VisitKind
from itb.clinic.services import active_pump, pump_actions, reconcile_pending
from itb.pump.faults import FaultKind
from tests.clinic.support import Clinic, csrf_in

CASEY = "DEMO-003"  # peristaltic-20, 500 µg/mL
ELI = "DEMO-005"  # valve-gated: a stall after an MRI latches until a clinician clears it


def _events(clinic: Clinic, serial: str, kind: str) -> list[dict[str, Any]]:
    with clinic.sessions() as db:
        rows = db.execute(
            select(PumpEvent).where(PumpEvent.serial == serial, PumpEvent.kind == kind)
        ).scalars()
        return [json.loads(r.data_json) for r in rows]


def _audited(clinic: Clinic, action: str) -> list[AuditEntry]:
    with clinic.sessions() as db:
        return list(db.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def _review(clinic: Clinic, patient_id: int, body: dict[str, Any]) -> dict[str, Any]:
    answer = clinic.client.post(f"/api/patients/{patient_id}/bolus/review", json=body)
    assert answer.status_code == 200, answer.text
    review: dict[str, Any] = answer.json()
    return review


def _field(answer: Any) -> str:
    return str(answer.json()["detail"][0]["loc"][-1])


def test_a_physician_reviews_and_gives_a_bolus_in_the_pump_log_and_audited(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    casey = clinic.patient_id(CASEY)
    review = _review(clinic, casey, {"dose_ug": 50, "duration_min": 10})
    assert review["verdict"] == "ok" and review["volume_ml"] == pytest.approx(0.1)
    assert "50 µg" in review["confirmation"] and "10 min" in review["confirmation"]
    given = clinic.client.post(
        f"/api/patients/{casey}/bolus",
        json={"dose_ug": 50, "duration_min": 10, "review_token": review["review_token"]},
    )
    assert given.status_code == 200, given.text
    boluses = _events(clinic, "SIM-003", "bolus_start")
    assert [(b["kind"], b["dose_ug"], b["duration_min"]) for b in boluses] == [
        ("clinician", 50.0, 10.0)
    ]
    [entry] = _audited(clinic, "pump.clinician_bolus")
    assert json.loads(entry.after_json)["dose_ug"] == 50


def test_a_bolus_above_the_usual_maximum_needs_a_confirmation_with_a_reason(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    casey = clinic.patient_id(CASEY)
    body: dict[str, Any] = {"dose_ug": 150, "duration_min": 30}
    review = _review(clinic, casey, body)
    assert review["verdict"] == "warn"
    body["review_token"] = review["review_token"]
    unconfirmed = clinic.client.post(f"/api/patients/{casey}/bolus", json=body)
    assert unconfirmed.status_code == 422 and _field(unconfirmed) == "confirm"
    assert "100 µg" in unconfirmed.json()["detail"][0]["msg"]
    no_reason = clinic.client.post(f"/api/patients/{casey}/bolus", json={**body, "confirm": True})
    assert no_reason.status_code == 422 and _field(no_reason) == "reason"
    assert _events(clinic, "SIM-003", "bolus_start") == []  # nothing sent
    confirmed = {**body, "confirm": True, "reason": "severe spasms after the fall"}
    assert clinic.client.post(f"/api/patients/{casey}/bolus", json=confirmed).status_code == 200
    assert [b["dose_ug"] for b in _events(clinic, "SIM-003", "bolus_start")] == [150.0]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"dose_ug": 250}, "dose_ug", "up to 200 µg"),
        ({"dose_ug": 0}, "dose_ug", "more than 0"),
        ({"dose_ug": 100, "duration_min": 1}, "duration_min", "needs at least"),
    ],
)
def test_a_bolus_a_check_refuses_is_not_sent_and_says_why(
    clinic: Clinic, body: dict[str, Any], field: str, words: str
) -> None:
    clinic.login("dr_demo")
    casey = clinic.patient_id(CASEY)
    review = _review(clinic, casey, body)
    assert review["refused"] and any(words in c["reason"] for c in review["checks"])
    sent = clinic.client.post(
        f"/api/patients/{casey}/bolus", json={**body, "review_token": review["review_token"]}
    )
    assert sent.status_code == 422 and _field(sent) == field
    assert _events(clinic, "SIM-003", "bolus_start") == []


def test_a_bolus_changed_after_its_review_is_not_sent(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    casey = clinic.patient_id(CASEY)
    token = _review(clinic, casey, {"dose_ug": 50})["review_token"]
    sent = clinic.client.post(
        f"/api/patients/{casey}/bolus", json={"dose_ug": 60, "review_token": token}
    )
    assert sent.status_code == 422 and _field(sent) == "review_token"
    without = clinic.client.post(f"/api/patients/{casey}/bolus", json={"dose_ug": 50})
    assert without.status_code == 422 and _field(without) == "review_token"
    assert _events(clinic, "SIM-003", "bolus_start") == []


def test_stop_needs_a_physician_and_a_reason_says_when_withdrawal_begins_then_resume(
    clinic: Clinic,
) -> None:
    casey_id = _patient_id_as(clinic, "nurse_demo", CASEY)
    refused = clinic.client.post(f"/api/patients/{casey_id}/stop", json={"reason": "x"})
    assert refused.status_code == 403
    clinic.login("dr_demo")
    no_reason = clinic.client.post(f"/api/patients/{casey_id}/stop", json={"reason": "  "})
    assert no_reason.status_code == 422 and _field(no_reason) == "reason"
    assert _events(clinic, "SIM-003", "stop") == []
    stopped = clinic.client.post(
        f"/api/patients/{casey_id}/stop", json={"reason": "catheter revision tomorrow"}
    )
    assert stopped.status_code == 200, stopped.text
    answer = stopped.json()
    assert answer["withdrawal_onset_h"] > 0
    assert "withdrawal" in answer["words"] and "hours after the stop" in answer["words"]
    assert len(_events(clinic, "SIM-003", "stop")) == 1
    [entry] = _audited(clinic, "pump.pump_stop")
    assert json.loads(entry.after_json)["reason"] == "catheter revision tomorrow"
    assert json.loads(entry.after_json)["mode"] == "stopped"

    page = clinic.client.get(f"/patients/{casey_id}/pump")
    assert 'id="resume-form"' in page.text and 'id="stop-form"' not in page.text
    resumed = clinic.client.post(f"/api/patients/{casey_id}/resume")
    assert resumed.status_code == 200
    assert f"{answer['daily_dose_ug']:.4g} µg/day" in resumed.json()["words"]
    assert len(_events(clinic, "SIM-003", "resume")) == 1
    again = clinic.client.post(f"/api/patients/{casey_id}/resume")
    assert again.status_code == 422  # the pump refuses: already running; in words
    assert "refused" in again.json()["detail"][0]["msg"]


def _patient_id_as(clinic: Clinic, username: str, mrn: str) -> int:
    clinic.login(username)
    return clinic.patient_id(mrn)


def test_a_nurse_clears_the_stall_alarm_after_an_mri_on_the_valve_gated_pump(
    clinic: Clinic,
) -> None:
    eli = _patient_id_as(clinic, "nurse_demo", ELI)
    nothing = clinic.client.post(f"/api/patients/{eli}/alarms/clear", json={"alarm": "motor_stall"})
    assert nothing.status_code == 422 and _field(nothing) == "alarm"
    firmware = clinic.pumps.firmware("SIM-005")
    firmware.inject_fault(max(clinic.clock(), firmware.now), FaultKind.MRI)
    page = clinic.client.post(f"/patients/{eli}/pump/read", data={"csrf_token": _csrf(clinic, eli)})
    assert page.status_code == 200 and "motor stall" in page.text
    cleared = clinic.client.post(f"/api/patients/{eli}/alarms/clear", json={"alarm": "motor_stall"})
    assert cleared.status_code == 200, cleared.text
    assert [e["alarm"] for e in _events(clinic, "SIM-005", "alarm_cleared")] == ["motor_stall"]
    assert len(_audited(clinic, "pump.alarm_clear")) == 1
    assert (
        "motor stall"
        not in clinic.client.get(f"/patients/{eli}/pump").text.split('id="alarm-tones"')[0]
    )


def _csrf(clinic: Clinic, patient_id: int) -> str:
    page = clinic.client.get(f"/patients/{patient_id}/pump")
    assert page.status_code == 200, page.text
    return csrf_in(page.text)


def test_the_bolus_form_reviews_then_gives_and_the_patient_page_links_to_it(
    clinic: Clinic,
) -> None:
    casey = _patient_id_as(clinic, "dr_demo", CASEY)
    assert f'href="/patients/{casey}/pump"' in clinic.client.get(f"/patients/{casey}").text
    csrf = _csrf(clinic, casey)
    form = {"csrf_token": csrf, "dose_ug": "40,5", "duration_min": "15", "action": "review"}
    reviewed = clinic.client.post(f"/patients/{casey}/pump/bolus", data=form)
    assert reviewed.status_code == 200
    assert "40.5 µg" in reviewed.text and 'id="bolus-send"' in reviewed.text
    token = re.search(r'name="review_token" value="([0-9a-f]{64})"', reviewed.text)
    assert token is not None
    sent = clinic.client.post(
        f"/patients/{casey}/pump/bolus",
        data={**form, "action": "send", "review_token": token.group(1)},
    )
    assert sent.status_code == 200 and "Bolus sent to the pump" in sent.text
    assert [b["dose_ug"] for b in _events(clinic, "SIM-003", "bolus_start")] == [40.5]
    refused = clinic.client.post(
        f"/patients/{casey}/pump/bolus", data={**form, "dose_ug": "250", "action": "send"}
    )
    assert refused.status_code == 422
    assert (
        "Dose" in refused.text
        and "dose_ug" not in refused.text.split("<main>")[1].split("<form")[0]
    )


def test_a_viewer_has_no_pump_page_and_a_nurse_no_bolus_or_stop(clinic: Clinic) -> None:
    casey = _patient_id_as(clinic, "viewer_demo", CASEY)
    assert clinic.client.get(f"/patients/{casey}/pump").status_code == 403
    clinic.login("nurse_demo")
    page = clinic.client.get(f"/patients/{casey}/pump")
    assert page.status_code == 200
    assert 'id="bolus-form"' not in page.text and 'id="stop-form"' not in page.text
    assert 'id="clear-alarm-form"' in page.text and 'id="alarm-tones"' in page.text


def test_a_bolus_whose_answer_was_lost_is_settled_from_the_pump_log(clinic: Clinic) -> None:
    """The clinic dies after the bolus left: the visit stays sent, and the next start settles
    it from the pump's own log (the command path's rule, for the pump page's commands too)."""

    class Crashed(Exception):
        pass

    def crash() -> None:
        raise Crashed

    with clinic.sessions() as db:
        patient = db.execute(select(Patient).where(Patient.mrn == CASEY)).scalar_one()
        doctor = db.execute(select(User).where(User.username == "dr_demo")).scalar_one()
        pump = active_pump(db, patient)
        ask = pump_actions.BolusRequest(30.0, 5.0)
        token = pump_actions.review_clinician_bolus(db, patient, pump, ask, clinic.clock()).token
        ask = pump_actions.BolusRequest(30.0, 5.0, review_token=token)
        with pytest.raises(Crashed):
            pump_actions.give_bolus(db, clinic.pumps, patient, doctor, ask, clinic.clock(), crash)
    with clinic.sessions() as db:
        [settled] = reconcile_pending(db, clinic.pumps, clinic.clock())
        assert settled.kind == VisitKind.BOLUS.value
        assert settled.status == "completed_after_restart"
        assert db.execute(select(Visit).where(Visit.status == "pump_command_sent")).first() is None


def test_the_patient_page_tells_the_bolus_and_the_stop_in_words(clinic: Clinic) -> None:
    casey = _patient_id_as(clinic, "dr_demo", CASEY)
    token = _review(clinic, casey, {"dose_ug": 20, "duration_min": 5})["review_token"]
    body = {"dose_ug": 20, "duration_min": 5, "review_token": token}
    assert clinic.client.post(f"/api/patients/{casey}/bolus", json=body).status_code == 200
    assert (
        clinic.client.post(f"/api/patients/{casey}/stop", json={"reason": "MRI"}).status_code == 200
    )
    page = clinic.client.get(f"/patients/{casey}").text
    visits = page.split('id="visits"')[1]
    assert "20 µg" in visits and "MRI" in visits
    assert '{"' not in visits and "[{" not in visits
