"""In Chromium: a nurse refills a demo pump and sees the new dates; a viewer cannot program."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.support import DEMO_PASSWORD, Template, template_for
from tests.conftest import require

if TYPE_CHECKING:  # playwright itself is imported by the fixture, which skips without it
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> Iterator[str]:
    """The demo clinic served by uvicorn on a free port, in a background thread."""
    url, pumps, clock = template_for("sqlite", templates, tmp_path_factory.getbasetemp()).copy(
        tmp_path
    )
    app = create_app(ClinicSettings(database_url=url, links=pumps, clock=clock))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


@pytest.fixture
def page(server: str) -> Iterator[Page]:
    require(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())  # the "are you sure" before a command
        yield page
        browser.close()


def _log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/")


def _cell(page: Page, mrn: str, column: str) -> Locator:
    return page.locator(f'tr[data-mrn="{mrn}"] td[data-col="{column}"]')


def test_nurse_refills_a_demo_pump_and_the_dashboard_shows_the_new_dates(page: Page) -> None:
    _log_in(page, "nurse_demo")
    alex = "DEMO-001"  # Alex Near-Empty
    assert float(_cell(page, alex, "days_to_low_reservoir").inner_text()) < 3
    refill_before = _cell(page, alex, "next_refill").get_attribute("data-next-due")

    page.click(f'tr[data-mrn="{alex}"] a')
    page.click("a[data-action=refill]")
    page.click("#refill-interrogate")
    page.wait_for_url("**/refill?step=2")
    assert 2.5 < float(page.get_attribute("#expected-ml", "data-expected-ml") or "nan") < 3.5
    page.fill("input[name=withdrawn_ml]", "2.8")
    page.fill("input[name=filled_ml]", "20")
    page.select_option("select[name=concentration_ug_per_ml]", "500.0")
    page.click("#refill-submit")
    page.wait_for_selector("#notice")
    assert page.get_attribute("#notice", "data-notice") == "refilled"
    latest_visit = page.locator("#visits tbody tr").first
    assert latest_visit.get_attribute("data-kind") == "refill"
    assert latest_visit.get_attribute("data-status") == "completed"

    page.click("nav a[href='/']")
    days_left = float(_cell(page, alex, "days_to_low_reservoir").inner_text())
    assert days_left == pytest.approx(20.0, abs=0.1)
    refill_after = _cell(page, alex, "next_refill").get_attribute("data-next-due")
    assert refill_before and refill_after and refill_after > refill_before  # ISO dates sort


def test_a_viewer_is_refused_a_program_change(page: Page) -> None:
    _log_in(page, "viewer_demo")
    page.click('tr[data-mrn="DEMO-003"] a')  # Casey Titration
    assert page.locator("a[data-action=program]").count() == 0
    patient_url = page.url
    response = page.goto(patient_url + "/program")
    assert response is not None and response.status == 403
    assert page.get_attribute("h1", "data-status-code") == "403"
    # the JSON route says no as well, with the viewer's own session
    api = page.request.post(
        patient_url.replace("/patients/", "/api/patients/") + "/program",
        data={"rate_ug_per_day": 300},
    )
    assert api.status == 403
    page.goto(patient_url)
    assert page.get_attribute("#program", "data-program-version") == "5"  # unchanged


def test_a_program_edited_after_its_review_is_not_sent_from_the_browser(page: Page) -> None:
    """H32 in Chromium: review 230 µg/day, edit the field to 280, press Send: the confirmation
    names the reviewed dose in words and units, and the edited program goes back to review."""
    _log_in(page, "dr_demo")
    page.click('tr[data-mrn="DEMO-003"] a')  # Casey Titration, 200 µg/day, program version 5
    patient_url = page.url
    page.goto(patient_url + "/program")
    page.fill("input[name=rate_ug_per_day]", "230")
    page.click("button[value=review]")
    page.wait_for_selector("#program-send")
    questions: list[str] = []
    page.on("dialog", lambda dialog: questions.append(dialog.message))  # the fixture accepts
    page.fill("input[name=rate_ug_per_day]", "280")  # edited after the review
    page.click("#program-send")
    page.wait_for_selector("#program-error")
    assert "230 µg/day (two hundred thirty micrograms per day)" in questions[0]
    assert page.get_attribute("#program-error", "data-field") == "review_token"
    new = page.locator('tr[data-quantity="daily_dose_ug"]')
    assert new.get_attribute("data-new") == "280"  # the review of what is now in the form
    page.goto(patient_url)
    assert page.get_attribute("#program", "data-program-version") == "5"  # nothing sent
