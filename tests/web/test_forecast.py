"""The patient's own forecast in the clinic: fitted to the screening trial's MAS scores on the
patient and screening pages, the typical patient when there are none."""

from __future__ import annotations

import itertools
import re
from datetime import datetime

from itb.clinic.effect import forecast_effect
from itb.therapy import continuous
from itb.web.charts import effect_forecast_svg
from tests.clinic.support import DEMO_PASSWORD, Clinic
from tests.web.markup import find, find_all


def _login(clinic: Clinic, username: str) -> None:
    clinic.client.cookies.clear()
    form = clinic.client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    response = clinic.client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_demo_patient_pages_show_the_patients_own_forecast_with_its_band(clinic: Clinic) -> None:
    _login(clinic, "viewer_demo")
    for mrn in ("DEMO-001", "DEMO-004"):
        html = clinic.client.get(f"/patients/{clinic.patient_id(mrn)}").text
        model = find(html, id="forecast-model")
        assert model["data-personal"] == "true" and int(model["data-scores-fitted"]) >= 9
        assert "This patient's own model" in html
        assert find(html, "polygon", class_="forecast-band")  # the 80% interval, shaded
        # withdrawal over days by the patient's model: early signs, then severe ones
        outlook = find(html, id="withdrawal-outlook")
        assert 0 < float(outlook["data-signs-from-h"]) < float(outlook["data-severe-from-h"])
        # the settled MAS at other doses: never more tone on a higher dose
        rows = find_all(html, "tr", data_daily_dose_ug=None)
        doses = [float(r["data-daily-dose-ug"]) for r in rows]
        mas = [float(r["data-mas"]) for r in rows]
        assert doses == sorted(doses) and len(doses) >= 3
        assert all(a >= b for a, b in itertools.pairwise(mas))


def test_screening_page_shows_the_fit_and_its_first_pump_dose(clinic: Clinic) -> None:
    _login(clinic, "nurse_demo")
    html = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-002')}/screening").text
    card = find(html, "section", id="own-model")
    assert int(card["data-scores-fitted"]) >= 9
    dose = find(html, id="own-first-dose")
    low, best, high = (
        float(dose[key])
        for key in ("data-low-daily-dose-ug", "data-daily-dose-ug", "data-high-daily-dose-ug")
    )
    assert low <= best <= high
    assert find(html, "polyline", class_="own-model")  # the patient's model on the chart


def test_without_screening_scores_the_forecast_says_typical_patient() -> None:
    forecast = forecast_effect(continuous(300.0), datetime(2027, 1, 4, 8, 0))
    assert not forecast.personal and forecast.scores_fitted == 0
    assert (forecast.low_mas <= forecast.mas + 1e-9).all()
    assert (forecast.mas <= forecast.high_mas + 1e-9).all()
    assert "typical patient" in str(effect_forecast_svg(forecast))


def test_the_demo_forecast_changes_visibly_between_300_and_600_ug_per_day(clinic: Clinic) -> None:
    """Issue 15: titration must show on the page. Dana is on 300 µg/day; the table has 600."""
    _login(clinic, "viewer_demo")
    html = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-004')}").text
    by_dose = {
        float(r["data-daily-dose-ug"]): float(r["data-mas"])
        for r in find_all(html, "tr", data_daily_dose_ug=None)
    }
    assert by_dose[300.0] - by_dose[600.0] >= 0.3  # a third of a MAS point or more
