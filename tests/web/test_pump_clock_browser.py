"""In Chromium, at 390, 768 and 1280 px: a nurse finds a demo pump's clock 7 min behind and
corrects it on the pump-clock page (issue 11, H77). The demo pump's clock is put 7 min behind
by the firmware's own ``set_clock``; the clinic's zone is UTC (no summer hour)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from itb.clinic.pumps import SimulatedPumps
from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.support import DEMO_PASSWORD, Template, template_for
from tests.conftest import require
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
SERIAL = "SIM-001"


@pytest.fixture
def clinic_url(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> Iterator[tuple[str, SimulatedPumps]]:
    url, pumps, clock = template_for("sqlite", templates, tmp_path_factory.getbasetemp()).copy(
        tmp_path
    )
    app = create_app(
        ClinicSettings(database_url=url, links=pumps, clock=clock, zone=ZoneInfo("UTC"))
    )
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", pumps
    uv.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


@pytest.fixture
def page(clinic_url: tuple[str, SimulatedPumps]) -> Iterator[Page]:
    require(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(base_url=clinic_url[0]).new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def _fits(page: Page, width_px: int) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= width_px)


@pytest.mark.parametrize("width_px", [390, 768, 1280])
def test_a_nurse_corrects_a_pump_clock_seven_minutes_behind(
    page: Page, clinic_url: tuple[str, SimulatedPumps], width_px: int
) -> None:
    fw = clinic_url[1].firmware(SERIAL)
    fw.set_clock(fw.now, fw.clock_now - timedelta(minutes=7))  # the crystal ran slow
    page.set_viewport_size({"width": width_px, "height": 844})
    page.goto("/login")
    page.fill("input[name=username]", "nurse_demo")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/")
    patients = page.request.get("/api/patients").json()
    patient_id = next(p["id"] for p in patients if p["serial"] == SERIAL)

    page.goto(f"/patients/{patient_id}/pump/clock")
    assert _fits(page, width_px)
    page.click("#clock-read")
    page.wait_for_selector("#clock-words")
    words = page.inner_text("#clock-words")
    assert "7 min behind the patient's standard time" in words
    assert page.get_attribute("#pump-clock", "data-needs-setting") == "yes"
    assert _fits(page, width_px)
    text = page.inner_text("main")
    assert "{" not in text and "S1" not in text and "_s" not in text  # no JSON, codes, fields

    page.click("#clock-set")
    page.wait_for_selector("#clock-corrected")
    assert page.get_attribute("#pump-clock", "data-needs-setting") == "no"
    assert "within 5 min" in page.inner_text("#clock-words")
    assert abs(fw.clock_offset_s) < 1.0  # the pump's clock is the patient's time again
    assert _fits(page, width_px)
