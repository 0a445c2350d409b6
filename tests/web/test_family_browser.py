"""In Chromium, a parent walks through the family's page on a phone (390 px) and a desktop
(1280 px): the countdown, an alarm explained, the withdrawal checklist, the emergency card, and
a report that lands on the care team's dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.clinic.support import DEMO_PASSWORD
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser


def _log_in_as_parent(page: Page) -> None:
    page.goto("/login")
    page.fill("input[name=username]", "parent_demo")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/family/*")


def _fits_the_width(page: Page, width_px: int) -> bool:
    page.wait_for_load_state()  # a page still loading has no width to measure yet
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    return bool(scroll_width <= width_px)


@pytest.mark.parametrize("width_px", [390, 1280])
def test_a_parent_walks_through_the_family_page(page: Page, width_px: int) -> None:
    page.set_viewport_size({"width": width_px, "height": 844})
    _log_in_as_parent(page)
    assert page.inner_text("h1") == "Casey's baclofen pump"
    assert _fits_the_width(page, width_px)

    # the countdown in words, coloured by how near it is
    countdown = page.locator("#countdown")
    assert countdown.get_attribute("data-level") in ("ok", "amber", "red")
    words = page.inner_text("[data-countdown]")
    assert any(unit in words for unit in ("day", "week", "month", "today", "tomorrow"))

    # an alarm explained: what it sounds like, what to do, whom to call, when to go to the ED
    empty = page.locator("details[data-alarm=empty_reservoir]")
    assert not empty.locator("text=Emergency department").is_visible()
    empty.locator("summary").click()
    assert "two-tone" in empty.inner_text()
    assert empty.locator("text=Emergency department").is_visible()
    assert "+44 20 7946 0000" in empty.inner_text()

    # the withdrawal checklist, with the hours after a stop at the current dose
    checklist = page.locator("#withdrawal .checklist input")
    assert checklist.count() == 8
    checklist.nth(1).check()
    assert checklist.nth(1).is_checked()
    assert "hours" in page.inner_text("[data-onset-hours]")

    # the emergency card: pump, serial, drug and concentration, dose, clinic, never stop, MRI
    page.click("#visits a:has-text('Emergency card')")
    page.wait_for_url("**/card")
    card = page.inner_text("#card")
    assert page.inner_text("[data-card=serial]") == "SIM-003"
    assert "µg/mL" in page.inner_text("[data-card=drug]")
    assert "µg a day" in page.inner_text("[data-card=dose]")
    assert "Never stop" in card and "MRI" in card
    assert _fits_the_width(page, width_px)


def test_a_parents_alarm_report_shows_on_the_dashboard(page: Page) -> None:
    _log_in_as_parent(page)
    page.select_option("#report select[name=detail] >> nth=0", "two_tone")
    page.click("button:has-text('Send: we hear an alarm')")
    page.wait_for_selector(".notice")
    assert "sent to the care team" in page.inner_text(".notice")

    page.click("button:has-text('Log out')")
    page.fill("input[name=username]", "nurse_demo")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/")
    row = page.locator('tr[data-mrn="DEMO-003"]')
    assert row.get_attribute("data-harm") == "family_report"
    assert "the family reports" in row.inner_text()
