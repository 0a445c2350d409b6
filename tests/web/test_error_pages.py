"""A page given bad input answers with the app's error page in words (which field, what is
allowed) and a 4xx, never raw JSON; the API keeps its JSON (issue 14)."""

from __future__ import annotations

import re

from tests.clinic.support import DEMO_PASSWORD, Clinic, csrf_in


def _page_login(clinic: Clinic, username: str) -> None:
    clinic.client.cookies.clear()
    form = clinic.client.get("/login")
    data = {"username": username, "password": DEMO_PASSWORD, "csrf_token": csrf_in(form.text)}
    assert clinic.client.post("/login", data=data, follow_redirects=False).status_code == 303


def _error_words(html: str) -> str:
    match = re.search(r'id="error-message"[^>]*>(.*?)</div>', html, flags=re.S)
    assert match, "not the error page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_a_patient_address_that_is_not_a_number_is_a_not_found_page_in_words(
    clinic: Clinic,
) -> None:
    _page_login(clinic, "nurse_demo")
    response = clinic.client.get("/patients/abc")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    assert _error_words(response.text) == "Patient number in the address: allowed a whole number."
    assert '"detail"' not in response.text and "patient_id" not in response.text
    too_big = clinic.client.get("/patients/99999999999")
    assert too_big.status_code == 404
    assert _error_words(too_big.text) == (
        "Patient number in the address: allowed 2147483647 or less."
    )


def test_a_5000_character_name_gets_the_error_page_with_the_fields_real_limit(
    clinic: Clinic,
) -> None:
    _page_login(clinic, "dr_demo")
    form = clinic.client.get("/patients/new")
    data = {
        "csrf_token": csrf_in(form.text),
        "name": "N" * 5000,
        "mrn": "NEW-900",
        "age_years": "40",
        "origin": "spinal",
    }
    response = clinic.client.post("/patients/new", data=data, follow_redirects=False)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    # the service's limit (128), not the 4000-character cut-off every form field has
    assert _error_words(response.text) == "Name: allowed at most 128 characters."
    assert "Nothing was changed" in response.text
    assert "N" * 200 not in response.text  # the refused input is not echoed
    rows = clinic.client.get("/api/patients").json()
    assert "NEW-900" not in {r["mrn"] for r in rows}


def test_the_api_keeps_json_for_the_same_mistakes(clinic: Clinic) -> None:
    clinic.login("dr_demo")
    bad_id = clinic.client.get("/api/patients/abc")
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["msg"] == "patient_id: allowed a whole number"
    long_name = clinic.client.post(
        "/api/patients", json={"name": "N" * 5000, "mrn": "X-1", "age_years": 3, "origin": "spinal"}
    )
    assert long_name.status_code == 422
    assert long_name.json()["detail"][0]["msg"] == "name: allowed at most 128 characters"


def test_a_username_with_dots_dashes_and_at_can_log_in(clinic: Clinic) -> None:
    from itb.clinic import auth

    with clinic.sessions() as db:
        auth.add_user(db, "j.doe-2@clinic.example", "nurse", DEMO_PASSWORD)
        db.commit()
    me = clinic.login("j.doe-2@clinic.example")
    assert me["username"] == "j.doe-2@clinic.example" and me["role"] == "nurse"
    _page_login(clinic, "j.doe-2@clinic.example")
    assert clinic.client.get("/", follow_redirects=False).status_code == 200
