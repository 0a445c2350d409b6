"""In Chromium: a physician gives a bolus (review, then confirm), stops delivery with a reason,
resumes it, and a nurse clears an alarm; the bolus form is completed with the keyboard alone.
The pump page holds at 390, 768 and 1280 px without horizontal scroll."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from itb.clinic.pumps import SimulatedPumps
from itb.pump.faults import FaultKind
from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.clock import ManualClock
from tests.clinic.support import DEMO_PASSWORD, Template, template_for
from tests.conftest import require
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# What no page may show: JSON objects, Python field paths, source codes, microseconds.
LEAKS = re.compile(r'\{"|\b[a-z]+_[a-z_]+=|\bS\d{1,2}\b|\d{2}:\d{2}:\d{2}\.\d+')


@dataclass
class Served:
    url: str
    pumps: SimulatedPumps
    clock: ManualClock


@pytest.fixture
def served(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> Iterator[Served]:
    """The demo clinic served by uvicorn (as test_browser.py's ``server``), with its demo
    pumps at hand: a test makes a fault happen on one, as an MRI would."""
    template = template_for("sqlite", templates, tmp_path_factory.getbasetemp())
    url, pumps, clock = template.copy(tmp_path)
    app = create_app(ClinicSettings(database_url=url, links=pumps, clock=clock))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", pumps, clock)
    uv.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


@pytest.fixture
def page(served: Served) -> Iterator[Page]:
    require(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=served.url)
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


def _open_pump_page(page: Page, mrn: str) -> None:
    page.click(f'tr[data-mrn="{mrn}"] a')
    page.click("a[data-action=pump]")
    page.wait_for_url("**/pump")


def _holds(page: Page) -> None:
    for width_px in (390, 768, 1280):
        page.set_viewport_size({"width": width_px, "height": 900})
        # the page's own content (the header's nav is base.html's, shared by every page)
        right_px = page.evaluate(
            "Math.max(...[...document.querySelectorAll('main *')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        assert right_px <= width_px, width_px
    text = page.inner_text("main")
    assert LEAKS.search(text) is None, LEAKS.search(text)


def test_a_physician_gives_a_bolus_stops_and_resumes(page: Page) -> None:
    _log_in(page, "dr_demo")
    _open_pump_page(page, "DEMO-003")
    _holds(page)

    page.fill("#bolus-dose", "150")
    page.fill("#bolus-duration", "30")
    page.click("#bolus-review-button")
    assert page.get_attribute("#bolus-review", "data-verdict") == "warn"
    assert "150 µg" in page.inner_text("#bolus-confirmation")
    page.check("#bolus-confirm-box input[name=confirm]")
    page.fill("#bolus-reason", "spasms after a fall")
    page.click("#bolus-send")  # the "are you sure" dialog is accepted by the fixture
    page.wait_for_selector("#notice")
    assert "Bolus sent" in page.inner_text("#notice")

    assert "hours after the stop" in page.inner_text("#stop-outlook")
    page.fill("#stop-reason", "catheter revision")
    page.click("#stop-send")
    page.wait_for_selector("#resume-form")
    assert "Delivery stopped" in page.inner_text("#notice")
    assert page.get_attribute("#pump-now", "data-mode") == "stopped"
    assert "µg/day" in page.inner_text("#resume-outlook")
    _holds(page)

    page.click("#resume-send")
    page.wait_for_selector("#stop-form")
    assert "Delivery resumed" in page.inner_text("#notice")
    page.click("main h1 a")
    page.wait_for_selector("#visits tbody tr")  # the patient page, not the one it left
    kinds = page.locator("#visits tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    # the clinic's clock stands still in the test: the three visits share one minute
    assert sorted(kinds[:3]) == ["clinician_bolus", "pump_resume", "pump_stop"]


def test_a_nurse_clears_an_alarm(page: Page, served: Served) -> None:
    _log_in(page, "nurse_demo")
    _open_pump_page(page, "DEMO-005")
    assert page.locator("#bolus-form").count() == 0
    assert page.locator("#no-clearable-alarm").is_visible()
    # an MRI stalls the valve-gated pump until a clinician clears it: made on the demo pump
    firmware = served.pumps.firmware("SIM-005")
    firmware.inject_fault(max(served.clock(), firmware.now), FaultKind.MRI)
    page.click("#pump-read")
    page.wait_for_selector("#alarm-kind")
    page.select_option("#alarm-kind", "motor_stall")
    page.click("#clear-alarm-send")
    page.wait_for_selector("#notice")
    assert "Alarm cleared" in page.inner_text("#notice")
    assert page.locator("#no-clearable-alarm").is_visible()
    _holds(page)


def test_the_bolus_form_is_completed_with_the_keyboard_alone(page: Page) -> None:
    _log_in(page, "dr_demo")
    _open_pump_page(page, "DEMO-003")
    page.focus("#bolus-dose")
    page.keyboard.type("40")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "bolus-duration"
    page.keyboard.type("10")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "bolus-review-button"
    page.keyboard.press("Enter")
    page.wait_for_selector("#bolus-send")
    page.focus("#bolus-duration")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "bolus-send"
    page.keyboard.press("Enter")
    page.wait_for_selector("#notice")
    assert "Bolus sent" in page.inner_text("#notice")
