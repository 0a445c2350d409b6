"""A concentration change in the refill wizard (H33), through the API and the refill page: the
physician's, shown with the dose without a bridge and during it, sent with the bridge bolus and
the program at the new concentration; refused otherwise, nothing sent, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from itb.clinic.models import AuditEntry, Interrogation, PumpEvent, RefillRecord, Visit
from tests.clinic.support import Clinic, csrf_in
from tests.web.markup import find

BLAKE = "DEMO-002"  # 40 mL pump, 1000 µg/mL, 700 µg/day
SERIAL = "SIM-002"


def _stored(clinic: Clinic) -> tuple[int, ...]:
    with clinic.sessions() as db:
        return tuple(
            int(db.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (Visit, Interrogation, RefillRecord, PumpEvent, AuditEntry)
        )


def _body(clinic: Clinic, concentration: float, **extra: Any) -> dict[str, Any]:
    left_ml = clinic.pumps.firmware(SERIAL).status().reservoir_ml
    return {"withdrawn_ml": round(left_ml, 2), "filled_ml": 40.0,
            "concentration_ug_per_ml": concentration, **extra}  # fmt: skip


def _refill(clinic: Clinic, pid: int, body: dict[str, Any]) -> Any:
    return clinic.client.post(f"/api/patients/{pid}/refill", json=body)


def test_a_nurse_may_not_change_the_concentration_and_nothing_is_sent_or_stored(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id(BLAKE)
    before, log_before = _stored(clinic), len(clinic.pumps.firmware(SERIAL).log.entries())
    for confirm in (False, True):
        response = _refill(clinic, pid, _body(clinic, 2000.0, confirm_concentration_change=confirm))
        assert response.status_code == 422
        detail = response.json()["detail"][0]
        assert detail["loc"][-1] == "concentration_ug_per_ml"
        assert "1000 → 2000 µg/mL needs a physician" in detail["msg"]
    status = clinic.pumps.firmware(SERIAL).status()
    assert status.concentration_ug_per_ml == 1000.0
    assert len(clinic.pumps.firmware(SERIAL).log.entries()) == log_before
    assert _stored(clinic) == before
    # the same nurse refills at the pump's concentration as before
    assert _refill(clinic, pid, _body(clinic, 1000.0)).status_code == 200


def test_a_physician_sees_the_bridge_then_sends_refill_bridge_and_program_together(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id(BLAKE)
    before = _stored(clinic)
    unconfirmed = _refill(clinic, pid, _body(clinic, 2000.0))
    assert unconfirmed.status_code == 422
    detail = unconfirmed.json()["detail"][0]
    assert detail["loc"][-1] == "confirm_concentration_change"
    # 700 µg/day at 2000 µg/mL = 0.35 mL/day; the old 1000 µg/mL drug in the dead space leaves
    # at that rate: 0.35 × 1000 = 350 µg/day without a bridge (underdose)
    assert "without the bridge: 350 µg/day" in detail["msg"] and "underdose" in detail["msg"]
    assert "keeps 700 µg/day" in detail["msg"]
    assert _stored(clinic) == before
    assert clinic.pumps.firmware(SERIAL).status().concentration_ug_per_ml == 1000.0

    done = _refill(clinic, pid, _body(clinic, 2000.0, confirm_concentration_change=True))
    assert done.status_code == 200, done.text
    answer = done.json()
    plan = answer["concentration_change"]["bridge"]
    # dead space: pump tubing 0.2 mL + catheter 95 cm × 0.0026 mL/cm = 0.247 mL = 0.447 mL of
    # 1000 µg/mL drug = 447 µg; at 700 µg/day that is 447 / 700 × 24 = 15.33 h
    assert plan["dead_space_ml"] == pytest.approx(0.447)
    assert plan["bridge_duration_h"] == pytest.approx(447 / 700 * 24, abs=0.01)
    assert plan["unbridged_dose_ug_per_day"] == pytest.approx(350.0)
    assert answer["concentration_change_given"] == {"bridge_sent": True, "program_sent": True}
    fw = clinic.pumps.firmware(SERIAL)
    status = fw.status()
    assert status.concentration_ug_per_ml == 2000.0
    assert status.bolus is not None and status.bolus.kind.value == "bridge"
    assert status.daily_dose_ug == pytest.approx(700.0)
    kinds = [e.kind for e in fw.log.entries()][-3:]
    assert kinds == ["refill", "bolus_start", "program"]
    visit = clinic.client.get(f"/api/patients/{pid}/visits").json()[0]
    assert visit["kind"] == "refill" and visit["user"] == "dr_demo"
    assert visit["details"]["concentration_change"]["bridge_volume_ml"] == pytest.approx(0.447)


def test_the_refill_page_shows_the_bridge_and_a_nurse_is_told_to_ask_a_physician(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    pid = clinic.patient_id(BLAKE)
    page = clinic.client.get(f"/patients/{pid}/refill?step=2").text
    form = {k: str(v) for k, v in _body(clinic, 2000.0).items()}
    form["csrf_token"] = csrf_in(page)
    shown = clinic.client.post(f"/patients/{pid}/refill", data=form)
    assert shown.status_code == 422
    bridge = find(shown.text, id="concentration-change")
    assert bridge["data-unbridged-dose-ug-per-day"] == "350"
    assert find(shown.text, "input", name="confirm_concentration_change")
    assert clinic.pumps.firmware(SERIAL).status().concentration_ug_per_ml == 1000.0
    sent = clinic.client.post(
        f"/patients/{pid}/refill",
        data={**form, "confirm_concentration_change": "yes"},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert clinic.pumps.firmware(SERIAL).status().concentration_ug_per_ml == 2000.0

    clinic.login("nurse_demo")
    dana = clinic.patient_id("DEMO-004")  # 2000 µg/mL
    page = clinic.client.get(f"/patients/{dana}/refill?step=2").text
    left_ml = clinic.pumps.firmware("SIM-004").status().reservoir_ml
    nurse_form = {"withdrawn_ml": f"{left_ml:.2f}", "filled_ml": "40",
                  "concentration_ug_per_ml": "1000",
                  "csrf_token": csrf_in(page)}  # fmt: skip
    refused = clinic.client.post(f"/patients/{dana}/refill", data=nurse_form)
    assert refused.status_code == 422
    assert find(refused.text, "p", data_field="concentration_ug_per_ml")
    assert clinic.pumps.firmware("SIM-004").status().concentration_ug_per_ml == 2000.0
