"""In Chromium: a nurse refills a demo pump and sees the new dates; a viewer cannot program."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.support import DEMO_PASSWORD, Template, template_for
from tests.conftest import require

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
def page(server: str) -> Iterator:  # type: ignore[type-arg]
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


def _log_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/")


def _cell(page, name: str, column: str) -> str:  # type: ignore[no-untyped-def]
    return str(page.locator(f'tr:has-text("{name}") td[data-col="{column}"]').inner_text())


def test_nurse_refills_a_demo_pump_and_the_dashboard_shows_the_new_dates(page) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, "nurse_demo")
    assert float(_cell(page, "Alex Near-Empty", "days_to_low_reservoir")) < 3
    refill_before = _cell(page, "Alex Near-Empty", "next_refill")

    page.click("a:has-text('Alex Near-Empty')")
    page.click("a.button:has-text('Refill')")
    page.click("#refill-interrogate")
    page.wait_for_url("**/refill?step=2")
    assert 2.5 < float(page.inner_text("#expected-ml")) < 3.5
    page.fill("input[name=withdrawn_ml]", "2.8")
    page.fill("input[name=filled_ml]", "20")
    page.select_option("select[name=concentration_ug_per_ml]", "500.0")
    page.click("#refill-submit")
    page.wait_for_selector("#notice")
    assert "Refill completed" in page.inner_text("#notice")
    assert "completed" in page.locator("#visits tbody tr").first.inner_text()

    page.click("nav a:has-text('Dashboard')")
    assert float(_cell(page, "Alex Near-Empty", "days_to_low_reservoir")) == pytest.approx(
        20.0, abs=0.1
    )
    refill_after = _cell(page, "Alex Near-Empty", "next_refill")
    assert refill_after > refill_before  # ISO dates: later sorts higher


def test_a_viewer_is_refused_a_program_change(page) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, "viewer_demo")
    page.click("a:has-text('Casey Titration')")
    assert page.locator("a.button:has-text('Program')").count() == 0
    patient_url = page.url
    response = page.goto(patient_url + "/program")
    assert response.status == 403
    assert "Not allowed" in page.inner_text("h1")
    # the JSON route says no as well, with the viewer's own session
    api = page.request.post(
        patient_url.replace("/patients/", "/api/patients/") + "/program",
        data={"rate_ug_per_day": 300},
    )
    assert api.status == 403
    page.goto(patient_url)
    assert "Program version 5" in page.inner_text("body")  # unchanged
