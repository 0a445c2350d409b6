"""The clinic under attack (issue 12): body limits, strict JSON types, the login limit raced and
dodged, security headers on every answer. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from itb.clinic import auth
from itb.clinic.models import Patient, PumpEvent, Visit
from itb.web import api
from itb.web.deps import SECURITY_HEADERS
from tests.clinic.support import Clinic

REFILL = {"withdrawn_ml": 2.8, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0}
SCORES = {"0": 3, "1": 3, "2": 2, "3": 2, "4": 1, "5": 1, "6": 2, "7": 2, "8": 3}


def _counts(clinic: Clinic) -> tuple[int, int, int]:
    with clinic.sessions() as db:
        return tuple(  # type: ignore[return-value]
            int(db.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (Visit, PumpEvent, Patient)
        )


def _post(client: TestClient, url: str, body: dict[str, Any]) -> Any:
    """POST ``body`` as JSON with NaN and Infinity allowed (Python's json writes them)."""
    return client.post(url, content=json.dumps(body), headers={"content-type": "application/json"})


def _assert_headers(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)


# --- 1. request-body limit before any parsing --------------------------------------------


def test_a_declared_body_over_the_limit_is_refused_413_before_login_reads_it(
    clinic: Clinic,
) -> None:
    limit = clinic.app.state.settings.max_body_bytes
    body = b'{"username": "x", "password": "' + b"a" * limit + b'"}'
    response = clinic.client.post(
        "/api/login", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]
    _assert_headers(response)


def test_a_page_form_over_the_limit_is_answered_in_words_not_json(clinic: Clinic) -> None:
    limit = clinic.app.state.settings.max_body_bytes
    body = b"username=x&password=" + b"a" * limit
    response = clinic.client.post(
        "/login", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert (
        f"more than {limit // 1024} KiB" in response.text and "Nothing was saved" in response.text
    )
    assert "{" not in response.text  # no JSON on a page
    _assert_headers(response)


def test_a_streamed_body_is_cut_off_once_it_crosses_the_limit(clinic: Clinic) -> None:
    limit = clinic.app.state.settings.max_body_bytes
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        nonlocal sent
        for _ in range(100):  # 100 x 64 KiB = 6.4 MB offered
            sent += 65536
            yield b"a" * 65536

    response = clinic.client.post(
        "/api/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    _assert_headers(response)
    assert limit < 65536 * 100


def test_a_body_under_the_limit_still_logs_in(clinic: Clinic) -> None:
    clinic.login("nurse_demo")


# --- 2. strict JSON types: the class of numeric fields --------------------------------------

REQUEST_MODELS = (
    api.LoginIn,
    api.RefillIn,
    api.ScreeningIn,
    api.PatientIn,
    api.ImplantIn,
    api.ReplacementIn,
)


def _numeric_kinds(annotation: Any) -> set[type]:
    kinds: set[type] = set()
    for arg in typing.get_args(annotation) or (annotation,):
        if arg in (int, float, bool):
            kinds.add(arg)
        elif typing.get_origin(arg) is not None:
            kinds |= _numeric_kinds(arg)
    return kinds


@pytest.mark.parametrize("model", REQUEST_MODELS, ids=lambda m: m.__name__)
def test_every_numeric_field_of_every_request_body_is_strict_and_finite(
    model: type[BaseModel],
) -> None:
    checked = 0
    for name, info in model.model_fields.items():
        kinds = _numeric_kinds(info.annotation)
        if not kinds:
            continue
        # a number field refuses true/false and text; a true/false field refuses 1 and text
        refused: list[Any] = [1, "true"] if kinds == {bool} else [True, "1.5"]
        if float in kinds:
            refused += [float("nan"), float("inf"), float("-inf")]
        for value in refused:
            with pytest.raises(ValueError):
                model.model_validate({**_minimal(model), name: value})
        checked += 1
    assert checked or model is api.LoginIn


def _minimal(model: type[BaseModel]) -> dict[str, Any]:
    """A valid body of ``model`` (the strictness test changes one field at a time)."""
    bodies: dict[type[BaseModel], dict[str, Any]] = {
        api.LoginIn: {"username": "a", "password": "b"},
        api.RefillIn: REFILL,
        api.ScreeningIn: {"dose_ug": 50, "scores": SCORES},
        api.PatientIn: {"name": "N", "mrn": "M", "age_years": 3, "origin": "spinal"},
        api.ImplantIn: {
            "model": "peristaltic-20",
            "serial": "S",
            "catheter_trimmed_cm": 40.0,
            "concentration_ug_per_ml": 500.0,
            "filled_ml": 20.0,
            "program": {"rate_ug_per_day": 600.0},
        },
        api.ReplacementIn: {"model": "peristaltic-20", "serial": "S", "filled_ml": 20.0},
    }
    return bodies[model]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("filled_ml", True, "not true/false"),  # was taken as 1.0 mL and sent to the pump
        ("withdrawn_ml", False, "not true/false"),
        ("filled_ml", "20", "not text"),
        ("filled_ml", float("nan"), "finite"),  # was a 500 inside the validation handler
        ("withdrawn_ml", float("inf"), "finite"),
        ("concentration_ug_per_ml", float("-inf"), "finite"),
        ("filled_ml", 1e-320, "allowed 0.00025 mL"),  # below one stroke of a peristaltic-20
        ("acknowledge_discrepancy", 1, "true or false"),
    ],
)
def test_a_refill_with_a_value_that_is_not_a_volume_is_refused_and_nothing_is_sent(
    clinic: Clinic, field: str, value: Any, words: str
) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    before = _counts(clinic)
    reservoir_ml = clinic.pumps.firmware("SIM-001").status().reservoir_ml
    response = _post(clinic.client, f"/api/patients/{pid}/refill", {**REFILL, field: value})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == field and words in detail["msg"], detail
    assert detail["msg"].startswith(f"{field}: ")
    assert _counts(clinic) == before
    assert clinic.pumps.firmware("SIM-001").status().reservoir_ml == reservoir_ml


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dose_ug": float("nan"), "scores": SCORES}, "dose_ug"),
        ({"dose_ug": True, "scores": SCORES}, "dose_ug"),
        ({"dose_ug": 50, "scores": {**SCORES, "3": float("inf")}}, "scores[3]"),
        ({"dose_ug": 50, "scores": {**SCORES, "3": True}}, "scores[3]"),
    ],
)
def test_a_screening_dose_or_score_that_is_not_a_number_is_refused(
    clinic: Clinic, body: dict[str, Any], field: str
) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-006")
    before = _counts(clinic)
    response = _post(clinic.client, f"/api/patients/{pid}/screening", body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"].startswith(f"{field}: ")
    assert _counts(clinic) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"age_years": None}, "birth_date"),  # created a patient without a birth date
        ({"age_years": float("nan")}, "age_years"),
        ({"age_years": True}, "age_years"),
        ({"age_years": 34.0}, "age_years"),
        ({"clinician_id": True}, "clinician_id"),
    ],
)
def test_a_patient_without_a_real_age_or_birth_date_is_not_created(
    clinic: Clinic, change: dict[str, Any], field: str
) -> None:
    clinic.login("dr_demo")
    before = _counts(clinic)
    body = {"name": "Gale Newcomer", "mrn": "NEW-001", "age_years": 34, "origin": "spinal"}
    response = _post(clinic.client, "/api/patients", {**body, **change})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == field, detail
    assert _counts(clinic) == before


def test_an_implant_with_a_vanishing_first_fill_is_refused_naming_the_pump_rule(
    clinic: Clinic,
) -> None:
    clinic.login("dr_demo")
    patient = {"name": "Gale Newcomer", "mrn": "NEW-001", "age_years": 34, "origin": "spinal"}
    pid = clinic.client.post("/api/patients", json=patient).json()["id"]
    before = _counts(clinic)
    body = {**_minimal(api.ImplantIn), "filled_ml": 1e-320}
    response = clinic.client.post(f"/api/patients/{pid}/implant", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == "filled_ml" and "one delivery quantum" in detail["msg"]
    assert _counts(clinic) == before


# --- 3. the login limit: atomic, and not dodged by X-Forwarded-For --------------------------


def test_forty_concurrent_guesses_check_at_most_five_passwords(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    lock = threading.Lock()
    real_check = auth._password_ok

    def counting(user: Any, password: str) -> bool:
        nonlocal checked
        with lock:
            checked += 1
        return real_check(user, password)

    monkeypatch.setattr(auth, "_password_ok", counting)
    start = threading.Barrier(40)
    outcomes: list[str] = []

    def guess(i: int) -> None:  # each a separate connection, as separate workers would be
        with clinic.sessions() as db:
            start.wait()
            try:
                auth.authenticate(db, "nurse_demo", f"guess-{i:04d}-x", f"10.0.0.{i}")
            except auth.TooManyAttemptsError:
                outcomes.append("limited")
            except auth.AuthError:
                outcomes.append("wrong")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert checked == auth.MAX_FAILURES_PER_USERNAME  # was 19 to 24
    assert sorted(outcomes).count("wrong") == 5 and outcomes.count("limited") == 35


def test_rotating_x_forwarded_for_does_not_dodge_the_per_client_limit(clinic: Clinic) -> None:
    statuses = []
    for i in range(auth.MAX_FAILURES_PER_CLIENT + 1):
        response = clinic.client.post(
            "/api/login",
            json={"username": f"nobody_{i}", "password": "wrong-password"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        )
        statuses.append(response.status_code)
    # 20 failures from the one socket address, then the 21st is refused whatever the header
    assert statuses == [401] * auth.MAX_FAILURES_PER_CLIENT + [429]


def test_a_trusted_proxy_forwards_the_client_address(clinic: Clinic) -> None:
    clinic.app.state.settings.trusted_proxies = frozenset({"testclient"})
    for i in range(auth.MAX_FAILURES_PER_CLIENT + 1):
        response = clinic.client.post(
            "/api/login",
            json={"username": f"nobody_{i}", "password": "wrong-password"},
            headers={"X-Forwarded-For": f"203.0.113.7, 198.51.100.{i}"},
        )
        assert response.status_code == 401  # each its own client: the rightmost hop
    clinic.login("nurse_demo")


def test_a_good_login_gives_its_attempt_back(clinic: Clinic) -> None:
    for _ in range(auth.MAX_FAILURES_PER_USERNAME + 2):
        clinic.login("nurse_demo")  # never locked out by its own successes


# --- 4. security headers on every answer -----------------------------------------------------


def test_every_answer_carries_the_security_headers_a_500_included(clinic: Clinic) -> None:
    app = clinic.app

    @app.get("/api/test-boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    app.middleware_stack = None  # rebuilt with the new route
    client = TestClient(app, raise_server_exceptions=False)
    crashed = client.get("/api/test-boom")
    assert crashed.status_code == 500 and "a bug" not in crashed.text
    _assert_headers(crashed)
    for response in (
        client.get("/no-such-page"),
        client.get("/api/patients"),  # 401
        client.post("/api/login", json={"username": True}),  # 422
        client.get("/login"),
    ):
        _assert_headers(response)
