"""In Chromium, an administrator on a phone (390 px) and a desktop (1280 px): creates a nurse,
resets her password, disables her, is refused the last administrator's demotion, and verifies
the audit log's chain; the new nurse must choose her own password first."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.clinic.support import DEMO_PASSWORD
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).parents[2] / "build" / "screenshots"  # CI artifacts, git-ignored
NEW_NURSE = "m.rossi@clinic"
HER_PASSWORD = "her-own-password-1"
# what no page may show: stored JSON, a Python field path, a source code, seconds
NEVER_ON_A_PAGE = re.compile(r'\{"|\b\w+\.\w+\[\d+\]|\bS\d{1,3}\b|\d{2}:\d{2}:\d{2}')


def _log_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Log in')")
    page.wait_for_load_state()


def _fits(page: Page, width_px: int) -> None:
    """No sideways scroll, nothing a clinician should not read; a screenshot for CI."""
    page.wait_for_load_state()  # a page still loading has no width to measure yet
    name = re.sub(r"[^a-z0-9]+", "-", page.url.split("/", 3)[-1].lower()).strip("-")
    page.screenshot(path=SCREENSHOTS / f"admin-{name}-{width_px}.png", full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width_px, f"{page.url} scrolls sideways at {width_px} px"
    text = page.inner_text("main")
    assert not NEVER_ON_A_PAGE.search(text), NEVER_ON_A_PAGE.search(text)


def _row(page: Page, username: str) -> str:
    return f'tr[data-username="{username}"]'


@pytest.mark.parametrize("width_px", [390, 768, 1280])
def test_an_administrator_manages_a_nurse_and_verifies_the_log(page: Page, width_px: int) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width_px, "height": 900})
    _log_in(page, "admin_demo")
    page.wait_for_url("**/admin/users")
    assert page.inner_text("h1") == "Accounts"
    _fits(page, width_px)

    # create a nurse: her one-time password is shown once
    page.fill("#new-account input[name=username]", NEW_NURSE)
    page.select_option("#new-account select[name=role]", "nurse")
    page.click("#new-account button:has-text('Create the account')")
    page.wait_for_selector("#one-time-password")
    first_password = page.inner_text("[data-otp]")
    assert f"Account {NEW_NURSE} created" in page.inner_text("#one-time-password")
    _fits(page, width_px)

    # reset it (the "are you sure" is accepted by the fixture): a new one-time password
    page.click(f"{_row(page, NEW_NURSE)} button:has-text('Reset password')")
    page.wait_for_selector("#one-time-password:has-text('reset')")
    second_password = page.inner_text("[data-otp]")
    assert second_password != first_password

    # the last administrator cannot be demoted
    page.select_option(f"{_row(page, 'admin_demo')} select[name=role]", "viewer")
    page.click(f"{_row(page, 'admin_demo')} button:has-text('Change role')")
    page.wait_for_selector("#admin-error")
    assert "last active administrator" in page.inner_text("#admin-error")
    assert "Administrator" in page.inner_text(f"{_row(page, 'admin_demo')} select")
    _fits(page, width_px)

    # verify the chain, then find this session's changes in the log
    page.click("nav a:has-text('Audit log')")
    page.click("button:has-text('Verify the chain')")
    page.wait_for_selector("#chain-result")
    assert page.get_attribute("#chain-result", "data-intact") == "yes"
    assert "The audit log is intact" in page.inner_text("#chain-result")
    page.fill("#audit-filters input[name=who]", "admin_demo")
    page.select_option("#audit-filters select[name=what]", "user.password_reset")
    page.click("#audit-filters button:has-text('Show')")
    page.wait_for_url("**/admin/audit?*")
    entries = page.locator("#entries tr[data-entry]")
    assert entries.count() == 1
    assert f"Account {NEW_NURSE}" in entries.first.inner_text()
    _fits(page, width_px)

    # the nurse's first log-in: only her own password's page, then the dashboard
    page.click("header button:has-text('Log out')")
    _log_in(page, NEW_NURSE, second_password)
    page.wait_for_url("**/account/password")
    assert page.inner_text("h1") == "Choose your own password"
    _fits(page, width_px)
    page.fill("input[name=current]", second_password)
    page.fill("input[name=new]", HER_PASSWORD)
    page.fill("input[name=repeat]", HER_PASSWORD)
    page.click("button:has-text('Save my password')")
    page.wait_for_selector("#password-changed")
    page.click("a:has-text('Continue')")
    page.wait_for_selector("tr[data-mrn]")
    _fits(page, width_px)

    # disabled by the administrator: she can no longer log in
    page.click("header button:has-text('Log out')")
    _log_in(page, "admin_demo")
    page.click(f"{_row(page, NEW_NURSE)} button:has-text('Disable')")
    page.wait_for_selector(f'{_row(page, NEW_NURSE)}[data-active="no"]')
    page.click("header button:has-text('Log out')")
    _log_in(page, NEW_NURSE, HER_PASSWORD)
    assert "unknown username or wrong password" in page.inner_text("main")
