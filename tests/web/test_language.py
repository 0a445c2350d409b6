"""The clinic speaks a clinician's language: programs as schedule tables with units, visits in
words, errors naming the field as the form labels it, sources behind a "why?" link, times to
the minute in the clinic's zone with the zone named (H78); and no page shows JSON, a Python
field path, a source code, ``[R]``, ``None`` or a microsecond."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from itb.web.app import app_routes, create_app
from itb.web.settings import ClinicSettings
from itb.web.source_list import SOURCES
from tests.clinic.support import Clinic, Template, csrf_in, template_for
from tests.web.test_pages import _page_login

ROOT = Path(__file__).resolve().parents[2]

# What a page must never show, by name: each a pattern over the page's visible text.
FORBIDDEN: dict[str, re.Pattern[str]] = {
    "JSON object": re.compile(r"\{\s*\"[^\"]+\"\s*:"),
    "Python field path": re.compile(
        r"\b[a-z]+(?:_[a-z0-9]+)*(?:\.[a-z_]+)*\[\d+\](?:\.[a-z_]+)?"
        r"|\b[a-z]+(?:_[a-z]+)+=|\b[a-z]+(?:_[a-z]+)*_(?:ml|ug|ug_per_day|ug_per_h|ug_per_ml|cm|mas)\b"
    ),
    "source code": re.compile(r"\bS\d+[a-z]?\b"),
    "[R]": re.compile(r"\[R\]"),
    "None": re.compile(r"\bNone\b(?!\.)"),  # Python's None; "None." is an answer in words
    "microsecond timestamp": re.compile(r"\d\d:\d\d:\d\d\.\d+"),
}
ROLES = ("dr_demo", "nurse_demo", "viewer_demo")


def visible_text(page_html: str) -> str:
    """The text a reader sees (scripts, styles and tags dropped, entities decoded)."""
    page_html = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", page_html, flags=re.S | re.I)
    page_html = re.sub(r"<[^>]+>", " ", page_html)
    return re.sub(r"\s+", " ", html_lib.unescape(page_html))


def element(page_html: str, element_id: str) -> str:
    """The element with this id, tags and all (up to its first closing tag of its kind)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>.*?</\1>', page_html, flags=re.S)
    assert match, f"no element with id {element_id}"
    return match.group(0)


def offences(text: str) -> list[str]:
    """Each forbidden thing found, with the text around it."""
    found = []
    text = re.sub(r"https?://\S+", "(address)", text)  # an address is not a field path
    for name, pattern in FORBIDDEN.items():
        for match in pattern.finditer(text):
            start, end = max(match.start() - 40, 0), match.end() + 40
            found.append(f"{name}: ...{text[start:end]}...")
    return found


def page_paths(patients: list[dict[str, Any]]) -> list[str]:
    """Every page of the app (GET, not /api, not a download), with the demo's ids."""
    paths = []
    for route in app_routes():
        if "GET" not in (route.methods or ()) or route.path.startswith("/api"):
            continue
        if route.path.endswith((".pdf", ".ics")) or route.path.startswith("/family"):
            continue  # downloads; the caregiver's pages (their own tests and words)
        if "{patient_id}" not in route.path:
            paths.append(route.path)
            continue
        for patient in patients:
            path = route.path.replace("{patient_id}", str(patient["id"]))
            if "{visit_id}" in path:
                path = path.replace("{visit_id}", str(patient["visit_id"]))
            if "{" not in path:
                paths.append(path)
    return [*paths, "/sources?cite=S24,S28"]


def demo_patients(client: TestClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get("/api/patients").json()
    patients = []
    for row in rows:
        summary = client.get(f"/api/patients/{row['id']}").json()
        visits = summary.get("visits") or [{"id": 1}]
        patients.append({"id": row["id"], "visit_id": visits[0]["id"]})
    return patients


# Sources ------------------------------------------------------------------------------------
def _domain_sources() -> dict[str, str]:
    text = (ROOT / "docs" / "domain.md").read_text(encoding="utf-8").split("## Sources", 1)[1]
    return dict(re.findall(r"^- (S\d+)\. (.*)$", text, flags=re.M))


def test_the_sources_page_lists_docs_domain_md_sources(clinic: Clinic) -> None:
    documented = _domain_sources()
    assert set(SOURCES) == set(documented)
    for code, (title, url) in SOURCES.items():
        assert documented[code].startswith(title[:40]) and url in documented[code]
    _page_login(clinic, "nurse_demo")
    page = clinic.client.get("/sources?cite=S24,S28")
    assert page.status_code == 200
    assert 'id="S24"' in page.text and 'data-source="S28"' in page.text
    cited = re.search(r'id="cited".*?</section>', page.text, flags=re.S)
    assert cited and "Gillette" in cited.group(0) and "Maino" in cited.group(0)


def test_a_rule_shows_why_links_to_its_sources_not_codes(clinic: Clinic) -> None:
    _page_login(clinic, "dr_demo")
    pid = clinic.patient_id("DEMO-001")
    page = clinic.client.get(f"/patients/{pid}/program").text
    change_limits = element(page, "change-limits")
    assert 'href="/sources?cite=S46#S46"' in change_limits and ">why?</a>" in change_limits
    assert "a default no source confirms" in change_limits
    assert not offences(visible_text(change_limits))


# Programs and visits ------------------------------------------------------------------------
def test_a_continuous_program_reads_as_a_daily_and_hourly_rate(clinic: Clinic) -> None:
    _page_login(clinic, "viewer_demo")
    page = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-001')}").text
    assert "450 µg/day (18.75 µg/h)" in visible_text(element(page, "program-schedule"))
    assert "rate_ug_per_day" not in page


def test_a_flex_program_reads_as_a_table_of_start_rate_and_share(clinic: Clinic) -> None:
    _page_login(clinic, "dr_demo")
    rows = clinic.client.get("/api/patients").json()
    flex = next(r for r in rows if "Flex" in r["name"])
    page = clinic.client.get(f"/patients/{flex['id']}/program").text
    schedule = element(page, "current-schedule")
    assert 'data-kind="flex"' in schedule
    text = visible_text(schedule)
    assert "From To Rate (µg/h) Dose (µg) Share of the day's dose" in text
    shares = [float(s) for s in re.findall(r"(\d+) %", text)]
    assert len(shares) >= 2 and sum(shares) == pytest.approx(100, abs=len(shares))


def test_visits_read_in_words_with_units(clinic: Clinic) -> None:
    _page_login(clinic, "nurse_demo")
    page = clinic.client.get(f"/patients/{clinic.patient_id('DEMO-001')}").text
    visits = visible_text(element(page, "visits"))
    assert "Refill" in visits and "completed" in visits and "Concentration: 500 µg/mL" in visits
    assert "Screening trial" in visits and "Dose: 75 µg" in visits
    assert "=" not in visits and "{" not in visits


# Errors -------------------------------------------------------------------------------------
def _program_post(clinic: Clinic, pid: int, **fields: str) -> str:
    form = clinic.client.get(f"/patients/{pid}/program").text
    data = {"csrf_token": csrf_in(form), "action": "review", **fields}
    page: str = clinic.client.post(f"/patients/{pid}/program", data=data).text
    return page


def test_a_refused_flex_step_is_named_as_the_form_labels_it(clinic: Clinic) -> None:
    _page_login(clinic, "dr_demo")
    pid = clinic.patient_id("DEMO-001")
    page = _program_post(clinic, pid, steps="00:00 15\n07:00 -4,5")
    error = visible_text(element(page, "program-error"))
    assert error.strip().startswith("Flex step 2") and "rate (µg/h)" in error
    assert not offences(error)


def test_an_unconfirmed_program_asks_for_the_box_not_an_api_field(clinic: Clinic) -> None:
    _page_login(clinic, "dr_demo")
    pid = clinic.patient_id("DEMO-001")
    review = _program_post(clinic, pid, rate_ug_per_day="1500")
    token = re.search(r'name="review_token" value="([^"]+)"', review)
    assert token is not None
    page = _program_post(
        clinic, pid, rate_ug_per_day="1500", action="send", review_token=token.group(1)
    )
    error = visible_text(element(page, "program-error")).strip()
    assert error.startswith("Confirmation: ") and "tick the confirmation box" in error
    assert "confirm: true" not in error and "confirm: confirm" not in error


# Times: the clinic's zone, named; pump times by the pump clock's rule (H78) -----------------
@pytest.fixture
def paris_clinic(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> Iterator[Clinic]:
    """The demo clinic in Paris (CET in winter, CEST in summer)."""
    url, pumps, clock = template_for("sqlite", templates, tmp_path_factory.getbasetemp()).copy(
        tmp_path
    )
    settings = ClinicSettings(url, pumps, clock, zone=ZoneInfo("Europe/Paris"))
    app = create_app(settings)
    clinic = Clinic(url, clock, pumps, TestClient(app))
    with clinic.client:
        yield clinic
    app.state.engine.dispose()


def _interrogated_at(clinic: Clinic, pid: int) -> str:
    form = clinic.client.get(f"/patients/{pid}").text
    clinic.client.post(f"/patients/{pid}/interrogate", data={"csrf_token": csrf_in(form)})
    page = clinic.client.get(f"/patients/{pid}").text
    match = re.search(r'id="last-interrogation">(.*?)</dd>', page)
    assert match is not None
    return match.group(1)


def test_a_pump_time_is_shown_in_the_clinics_zone_named_on_the_patient_page(
    paris_clinic: Clinic,
) -> None:
    _page_login(paris_clinic, "nurse_demo")
    pid = paris_clinic.patient_id("DEMO-003")
    assert _interrogated_at(paris_clinic, pid) == "2026-11-25 12:00 CET"
    page = paris_clinic.client.get(f"/patients/{pid}").text
    visits = visible_text(element(page, "visits"))
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", visits)


def test_in_summer_a_pump_time_on_standard_time_is_shown_an_hour_later_with_the_zone(
    paris_clinic: Clinic,
) -> None:
    """The pump keeps the patient's standard time all year: its 12:00 in July is 13:00 CEST
    on the clinic's wall clock, and the page says so, zone named."""
    _page_login(paris_clinic, "nurse_demo")
    pid = paris_clinic.patient_id("DEMO-003")
    paris_clinic.clock.now = datetime(2027, 7, 1, 12, 0)
    _page_login(paris_clinic, "nurse_demo")
    assert _interrogated_at(paris_clinic, pid) == "2027-07-01 13:00 CEST"


# Every page, every role ---------------------------------------------------------------------
@pytest.mark.parametrize("username", ROLES)
def test_no_page_shows_json_field_paths_codes_none_or_microseconds(
    clinic: Clinic, username: str
) -> None:
    _page_login(clinic, "dr_demo")
    paths = page_paths(demo_patients(clinic.client))
    _page_login(clinic, username)
    found = []
    for path in paths:
        answer = clinic.client.get(path)
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        found += [f"{path} ({answer.status_code}) {o}" for o in offences(visible_text(answer.text))]
    assert not found, "\n".join(found[:40])


def test_the_clinics_zone_is_an_iana_name_or_refused_in_words() -> None:
    import typer
    from typer.testing import CliRunner

    from itb.cli.clinic import serve

    command = typer.Typer()
    command.command()(serve)
    refused = CliRunner().invoke(command, ["--time-zone", "Mars/Olympus"])
    assert refused.exit_code == 2
    assert "'Mars/Olympus' is not a time zone; allowed e.g. Europe/Paris" in refused.output
