"""In Chromium (issue 14): search from the dashboard's header, edit a patient, record a
follow-up, flag a refill as a nurse (who cannot review it) and review it as a physician; each
page at 390, 768 and 1280 px without horizontal scroll of the page."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from tests.clinic.clock import T0
from tests.clinic.support import DEMO_PASSWORD
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser

WIDTHS_PX = (390, 768, 1280)


def _log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/")


def _fits_every_width(page: Page) -> None:
    page.wait_for_load_state()  # a page still loading has no width to measure yet
    for width_px in WIDTHS_PX:
        page.set_viewport_size({"width": width_px, "height": 900})
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width_px, f"{page.url} at {width_px} px: {scroll_width} px wide"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_physician_finds_edits_and_follows_up_a_patient(page: Page) -> None:
    _log_in(page, "dr_demo")
    page.fill("#header-search-q", "flex")  # the last name's start, any case
    page.press("#header-search-q", "Enter")
    page.wait_for_url("**/search?q=flex")
    _fits_every_width(page)
    assert page.locator("#search-results").get_attribute("data-count") == "1"
    page.click("#search-table a:has-text('Eli Flex')")

    page.click("#edit-patient-link")
    page.wait_for_url("**/edit")  # measured on the new page, not mid-navigation
    _fits_every_width(page)
    page.fill("input[name=birth_date]", "1988-06-15")  # the demo record has none: required
    page.fill("input[name=mrn]", "DEMO-001")  # another patient's MRN: refused in words
    page.click("#patient-edit-submit")
    assert "Medical record number: already used" in page.inner_text("#form-error")
    page.fill("input[name=name]", "Eli Flexman")
    page.fill("input[name=mrn]", "DEMO-005X")
    page.click("#patient-edit-submit")
    page.wait_for_selector("#notice")
    assert page.get_attribute("#notice", "data-notice") == "edited"
    assert "Eli Flexman" in page.inner_text("h1")

    page.click("#follow-up-link")
    page.wait_for_url("**/follow-up")
    _fits_every_width(page)
    page.fill("input[name=mas]", "1,5")
    page.check("input[name=side_effects][value=dizziness]")
    when = (T0 + timedelta(days=40)).replace(hour=10, minute=30)  # the server's clinic clock
    page.fill("input[name=next_appointment_at]", when.strftime("%Y-%m-%dT%H:%M"))
    page.fill("textarea[name=notes]", "less spasm at night")
    page.click("#follow-up-submit")
    page.wait_for_selector("#notice")
    assert page.get_attribute("#notice", "data-notice") == "followed_up"
    page.click("#follow-up-link")
    row = page.locator("#follow-ups tbody tr").first
    assert row.get_attribute("data-mas") == "1.5"
    assert "Dizziness" in row.inner_text() and "less spasm at night" in row.inner_text()
    assert when.strftime("%Y-%m-%d 10:30") in row.inner_text()


def test_a_flagged_refill_waits_on_the_dashboard_for_a_physician(page: Page) -> None:
    _log_in(page, "nurse_demo")
    alex = 'tr[data-mrn="DEMO-001"]'
    page.click(f"{alex} a")
    page.click("a[data-action=refill]")
    page.click("#refill-interrogate")
    page.wait_for_url("**/refill?step=2")
    page.fill("input[name=withdrawn_ml]", "0.5")  # far below the expected volume: flagged
    page.fill("input[name=filled_ml]", "20")
    page.click("#refill-submit")
    page.check("input[name=acknowledge_discrepancy]")
    page.fill("textarea[name=discrepancy_note]", "pocket looked normal")
    page.click("#refill-submit")
    page.wait_for_selector("#notice")

    page.click("nav a[href='/']")
    assert page.locator(alex).get_attribute("data-flagged-refill") == "awaiting_review"
    _fits_every_width(page)
    page.click(f"{alex} a.flagged-refill")
    assert "only a physician" in page.inner_text("[data-review=physician-only]")
    assert page.locator("button[data-action=review-refill]").count() == 0  # a nurse cannot
    _fits_every_width(page)

    page.click("button:has-text('Log out')")
    _log_in(page, "dr_demo")
    page.click(f"{alex} a.flagged-refill")
    page.fill("textarea[name=note]", "catheter study booked")
    page.click("button[data-action=review-refill]")
    page.wait_for_selector("#notice")
    assert page.get_attribute("#notice", "data-notice") == "refill_reviewed"
    page.click("nav a[href='/']")
    assert page.locator(alex).get_attribute("data-flagged-refill") is None
