"""In Chromium: a nurse sounds the alarm test from the pump page (a reason, then "are you
sure"), the notice says which tones sounded, the patient page lists the visit in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.web.test_pump_actions_browser import (
    _holds,
    _log_in,
    _open_pump_page,
    page,
    served,
)

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page

__all__ = ["page", "served"]  # the fixtures

pytestmark = pytest.mark.browser


def test_a_nurse_sounds_the_alarm_test_with_a_reason_and_a_confirmation(page: Page) -> None:
    _log_in(page, "nurse_demo")
    _open_pump_page(page, "DEMO-003")
    assert "two-tone (3 s)" in page.inner_text("#alarm-test-outlook")
    asked: list[str] = []

    def _note(dialog: Dialog) -> None:
        asked.append(dialog.message)

    page.on("dialog", _note)  # the fixture's own handler accepts it
    page.fill("#alarm-test-reason", "new caregiver at home")
    page.click("#alarm-test-send")
    page.wait_for_selector("#notice")
    assert asked == ["Sound every alarm tone of pump SIM-003 now?"]
    notice = page.inner_text("#notice")
    assert "critical two-tone (3 s) and non-critical single tone (1 s)" in notice
    _holds(page)
    page.click("main h1 a")
    row = page.locator('#visits tbody tr[data-kind="alarm_test"]')
    assert "Tones sounded" in row.inner_text() and "new caregiver at home" in row.inner_text()
