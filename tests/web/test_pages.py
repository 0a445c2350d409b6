"""Server-rendered pages: log-in with CSRF, every route's role check, the forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.web.app import PUBLIC_ROUTES, app_routes, route_action
from tests.clinic.support import DEMO_PASSWORD, Clinic, csrf_in
from tests.web.markup import find, find_all


def find_text(html: str, element_id: str) -> str:
    """The text of the element with this id (a paragraph: up to its closing tag)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, flags=re.S)
    assert match, f"no element with id {element_id}"
    return match.group(1)


def _page_login(clinic: Clinic, username: str) -> None:
    clinic.client.cookies.clear()
    form = clinic.client.get("/login")
    response = clinic.client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": csrf_in(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_every_route_but_log_in_has_a_role_check() -> None:
    for route in app_routes():
        for method in route.methods or ():
            if (method, route.path) in PUBLIC_ROUTES:
                continue
            assert route_action(route) is not None, f"{method} {route.path} has no role check"


def test_log_in_form_without_its_csrf_token_is_refused(clinic: Clinic) -> None:
    clinic.client.get("/login")
    response = clinic.client.post(
        "/login",
        data={"username": "nurse_demo", "password": DEMO_PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.headers["location"].startswith("/login?error=")
    assert clinic.client.get("/", follow_redirects=False).status_code == 303


def test_pages_render_for_a_physician(clinic: Clinic) -> None:
    _page_login(clinic, "dr_demo")
    pid = clinic.patient_id("DEMO-005")
    dashboard = clinic.client.get("/")
    assert dashboard.status_code == 200
    assert find(dashboard.text, "tr", data_mrn="DEMO-001")["data-serial"] == "SIM-001"
    assert dashboard.headers["content-security-policy"].startswith("default-src 'self'")
    patient = clinic.client.get(f"/patients/{pid}")
    assert patient.status_code == 200
    assert find(patient.text, "h1", data_patient_id=str(pid))["data-mrn"] == "DEMO-005"
    assert find(patient.text, "svg", aria_label="dose schedule")
    for path in (f"/patients/{pid}/program", f"/patients/{pid}/refill", "/reports"):
        assert clinic.client.get(path).status_code == 200, path


def test_a_form_post_without_the_session_csrf_token_changes_nothing(clinic: Clinic) -> None:
    _page_login(clinic, "nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    response = clinic.client.post(
        f"/patients/{pid}/refill",
        data={"withdrawn_ml": "2.8", "filled_ml": "20", "concentration_ug_per_ml": "500"},
    )
    assert response.status_code == 403
    assert find(response.text, "h1", data_status_code="403")
    assert "CSRF" in find_text(response.text, "error-message")  # the refusal says why, in words
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml < 3


def test_refill_form_with_a_bad_number_shows_the_field_and_changes_nothing(clinic: Clinic) -> None:
    _page_login(clinic, "nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    token = csrf_in(clinic.client.get(f"/patients/{pid}/refill?step=2").text)
    response = clinic.client.post(
        f"/patients/{pid}/refill",
        data={
            "withdrawn_ml": "2.8",
            "filled_ml": "45",
            "concentration_ug_per_ml": "500",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert find(response.text, "p", data_field="filled_ml")
    # the words are the behaviour here: the error names the field and the allowed range
    assert "filled_ml" in response.text and "allowed" in response.text
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml < 3


def test_a_viewer_gets_403_on_the_program_page(clinic: Clinic) -> None:
    _page_login(clinic, "viewer_demo")
    pid = clinic.patient_id("DEMO-001")
    assert clinic.client.get(f"/patients/{pid}/program").status_code == 403
    assert not find_all(clinic.client.get(f"/patients/{pid}").text, data_action="program")


def test_cli_user_add_creates_a_physician_who_can_log_in(
    tmp_path: Path, fast_hashing: None
) -> None:
    from fastapi.testclient import TestClient

    from itb.cli.clinic import user_app
    from itb.web.app import create_app
    from itb.web.settings import ClinicSettings

    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    runner = CliRunner()
    args = ["add", "first_doc", "--role", "physician", "--password-stdin", "--database-url", url]
    result = runner.invoke(user_app, args, input="a long enough password\n")
    assert result.exit_code == 0, result.output
    again = runner.invoke(user_app, args, input="a long enough password\n")
    assert again.exit_code == 2 and "already exists" in again.output
    short = runner.invoke(user_app, [*args[:1], "x", *args[2:]], input="short\n")
    assert short.exit_code == 2
    with TestClient(create_app(ClinicSettings(database_url=url))) as client:
        response = client.post(
            "/api/login", json={"username": "first_doc", "password": "a long enough password"}
        )
        assert response.status_code == 200 and response.json()["role"] == "physician"


def test_program_page_reviews_old_and_new_and_sends_only_once_confirmed(clinic: Clinic) -> None:
    _page_login(clinic, "dr_demo")
    pid = clinic.patient_id("DEMO-003")  # 200 µg/day, spinal titration
    token = csrf_in(clinic.client.get(f"/patients/{pid}/program").text)
    form = {"rate_ug_per_day": "300", "csrf_token": token}
    review = clinic.client.post(f"/patients/{pid}/program", data={**form, "action": "review"})
    assert review.status_code == 200
    html = review.text
    # old and new daily dose, and the change: (300 - 200) / 200 = +50.0 %
    dose = find(html, "tr", data_quantity="daily_dose_ug")
    assert (dose["data-old"], dose["data-new"], dose["data-change-percent"]) == (
        "200",
        "300",
        "+50.0",
    )
    assert find(html, "table", id="review-rates")["data-unit"] == "ug_per_h"
    assert find(html, "fieldset", data_field="confirm")
    assert find(html, "input", name="confirm", type="checkbox")
    form["review_token"] = find(html, "input", name="review_token")["value"]
    unconfirmed = clinic.client.post(f"/patients/{pid}/program", data={**form, "action": "send"})
    assert unconfirmed.status_code == 422
    assert find(unconfirmed.text, "p", data_field="confirm")
    assert clinic.pumps.firmware("SIM-003").status().daily_dose_ug < 201
    sent = clinic.client.post(
        f"/patients/{pid}/program",
        data={**form, "action": "send", "confirm": "yes", "reason": "still spastic"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert abs(clinic.pumps.firmware("SIM-003").status().daily_dose_ug - 300.0) < 1e-9


def test_patient_page_predicts_the_effect_and_the_withdrawal_risk_time(clinic: Clinic) -> None:
    _page_login(clinic, "viewer_demo")
    dana = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-004')}").text
    # 300 µg/day, Dana's own model (fitted to her screening scores): a withdrawal-risk time after
    # a stop, within the first two days (docs/pharmacology.md)
    assert find(dana, "svg", aria_label="predicted spasticity over the next 72 hours")
    assert find(dana, id="forecast-model")["data-personal"] == "true"
    assert 0.0 < float(find(dana, id="withdrawal-risk")["data-risk-after-stop-h"]) < 48.0
    assert not find_all(dana, id="forecast-empty")  # 40 mL lasts months: not within 72 h
    # Alex: 2.9 mL left at 0.9 mL/day = 3.22 days = 77.3 h to empty; a day later, 53 h
    clinic.clock.advance(1.0)
    alex = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-001')}").text
    assert find(alex, id="forecast-empty")["data-empty-at-h"] == "53"
    assert find(alex, "line", data_mark="empty")  # marked on the chart


def test_interrogation_report_page_comes_from_the_last_reading(clinic: Clinic) -> None:
    _page_login(clinic, "viewer_demo")
    pid = clinic.patient_id("DEMO-002")
    assert find(clinic.client.get(f"/patients/{pid}").text, "a", href=f"/patients/{pid}/report")
    report = clinic.client.get(f"/patients/{pid}/report")
    assert report.status_code == 200
    assert "Pump interrogation report: SIM-002" in report.text
    assert "1000 µg/mL" in report.text and "Not a medical device" in report.text
    # its own <style> block is allowed by hash, nothing inline besides
    assert "style-src 'self' 'sha256-" in report.headers["content-security-policy"]
    no_pump = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-006')}/report")
    assert no_pump.status_code == 409


def test_screening_page_records_hourly_scores_and_shows_result_chart_and_decision(
    clinic: Clinic,
) -> None:
    _page_login(clinic, "nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    token = csrf_in(clinic.client.get(f"/patients/{pid}/screening").text)
    scores = {f"mas_{h}": str(m) for h, m in enumerate([3, 3, 2, 2, 1, 1, 2, 2, 3])}
    posted = clinic.client.post(
        f"/patients/{pid}/screening",
        data={"dose_ug": "50", **scores, "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    html = clinic.client.get(posted.headers["location"]).text
    assert find(html, "svg", aria_label="screening trial: observed and predicted MAS")
    assert len(find_all(html, "circle", class_="observed")) == 9  # baseline and 8 hourly scores
    # baseline 3, lowest 1: positive (S51); effect to 7 h: 2 × 50 = 100 µg/day (S46)
    assert find(html, id="classification")["data-positive"] == "true"
    assert find(html, id="decision")["data-action"] == "candidate"
    assert find(html, id="first-dose")["data-first-daily-dose-ug"] == "100"
    # a second dose the same day: refused, with the field, nothing stored
    again = clinic.client.post(
        f"/patients/{pid}/screening", data={"dose_ug": "75", **scores, "csrf_token": token}
    )
    assert again.status_code == 422 and find(again.text, "p", data_field="given_at")
    assert "allowed 24 h or more" in again.text  # the rule, in words
    too_few = clinic.client.post(
        f"/patients/{pid}/screening",
        data={"dose_ug": "50", "mas_0": "3", "mas_4": "1", "csrf_token": token},
    )
    assert too_few.status_code == 422 and find(too_few.text, "p", data_field="scores")


def test_refill_wizard_asks_to_acknowledge_a_flagged_withdrawn_volume(clinic: Clinic) -> None:
    _page_login(clinic, "nurse_demo")
    pid = clinic.patient_id("DEMO-001")  # a 20 mL pump, made to expect 5.0 mL
    clinic.pumps.firmware("SIM-001").refill(clinic.clock(), 5.0, 500.0)
    token = csrf_in(clinic.client.get(f"/patients/{pid}/refill?step=2").text)
    form = {"withdrawn_ml": "3.5", "filled_ml": "20", "concentration_ug_per_ml": "500",
            "csrf_token": token}  # fmt: skip
    shown = clinic.client.post(f"/patients/{pid}/refill", data=form)
    # 3.5 - 5.0 = -1.5 mL, beyond S28's 1 mL for a 20 mL pump: reasons and a required box
    assert shown.status_code == 422
    assert find(shown.text, id="discrepancy")["data-field"] == "acknowledge_discrepancy"
    assert "beyond the 1 mL tolerance of a 20 mL pump" in shown.text  # the reason, in words
    box = find(shown.text, "input", name="acknowledge_discrepancy")
    assert box["value"] == "yes" and "required" in box.attrs
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 5.0
    done = clinic.client.post(
        f"/patients/{pid}/refill",
        data={**form, "acknowledge_discrepancy": "yes", "discrepancy_note": "pocket checked"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("refilled_flagged")
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == 20.0


def test_a_form_field_over_4000_characters_is_422_naming_it_and_changes_nothing(
    clinic: Clinic,
) -> None:
    _page_login(clinic, "nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    token = csrf_in(clinic.client.get(f"/patients/{pid}/refill?step=2").text)
    response = clinic.client.post(
        f"/patients/{pid}/refill",
        data={
            "withdrawn_ml": "1" * 4001,
            "filled_ml": "20",
            "concentration_ug_per_ml": "500",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    # a page answers with the error page in words, naming the field as its form labels it
    assert response.headers["content-type"].startswith("text/html")
    message = find_text(response.text, "error-message")
    assert "Withdrawn volume (mL): allowed at most 4000 characters." in message
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml < 3


def test_a_program_edited_after_its_review_goes_back_to_review_and_is_not_sent(
    clinic: Clinic,
) -> None:
    """H32: a reviewed 230 µg/day edited to 280 before Send is not sent; the page shows the
    review of 280 with its own token, and only a Send after that review goes out."""
    _page_login(clinic, "dr_demo")
    pid = clinic.patient_id("DEMO-003")  # 200 µg/day, spinal, titrating (+30 % a day)
    csrf = csrf_in(clinic.client.get(f"/patients/{pid}/program").text)
    form = {"csrf_token": csrf, "rate_ug_per_day": "230"}
    reviewed = clinic.client.post(f"/patients/{pid}/program", data={**form, "action": "review"})
    assert reviewed.status_code == 200
    token_230 = find(reviewed.text, "input", name="review_token")["value"]
    # the confirmation says the dose in words and units: 230 µg/day = 0.46 mL/day at 500 µg/mL
    send_button = find(reviewed.text, "button", id="program-send")
    assert "230 µg/day (two hundred thirty micrograms per day)" in send_button["data-confirm"]
    assert "0.46 mL/day at 500 µg/mL" in send_button["data-confirm"]

    edited = clinic.client.post(
        f"/patients/{pid}/program",
        data={**form, "rate_ug_per_day": "280", "review_token": token_230, "action": "send"},
    )
    assert edited.status_code == 422
    assert find(edited.text, "p", id="program-error")["data-field"] == "review_token"
    # nothing sent: the pump still runs 200 µg/day, no program version was added
    assert clinic.pumps.firmware("SIM-003").status().daily_dose_ug == pytest.approx(200.0)
    # the page now shows the review of 280 (200 -> 280 = +40 %, beyond +30 %: confirm)
    dose = find(edited.text, "tr", data_quantity="daily_dose_ug")
    assert (dose["data-new"], dose["data-change-percent"]) == ("280", "+40.0")
    token_280 = find(edited.text, "input", name="review_token")["value"]
    assert token_280 != token_230
    assert "two hundred eighty" in find(edited.text, "button", id="program-send")["data-confirm"]

    sent = clinic.client.post(
        f"/patients/{pid}/program",
        data={**form, "rate_ug_per_day": "280", "review_token": token_280, "action": "send",
              "confirm": "yes", "reason": "still spastic at 200"},
        follow_redirects=False,
    )  # fmt: skip
    assert sent.status_code == 303, sent.text
    assert clinic.pumps.firmware("SIM-003").status().daily_dose_ug == pytest.approx(280.0)
