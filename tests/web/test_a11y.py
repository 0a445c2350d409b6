"""axe-core (the npm package, installed by the Makefile into build/node) in Chromium on every
page of the demo clinic as each role: no serious or critical accessibility violation.

Without axe.min.js the test skips and says why (fails under CI=true)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import require
from tests.web.page_walk import accounts, log_in, page_urls
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser

AXE_JS = Path(
    os.environ.get(
        "ITB_AXE_JS",
        Path(__file__).parents[2] / "build/node/node_modules/axe-core/axe.min.js",
    )
)
BLOCKING = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it stands."""
    page.add_script_tag(path=str(AXE_JS))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def _described(url: str, violation: dict[str, Any]) -> str:
    where = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
    return f"{url}: {violation['id']} ({violation['impact']}): {violation['help']} at {where}"


@pytest.mark.parametrize("username", accounts())
def test_no_serious_accessibility_violation_on_any_page(
    browser_page_without_csp: Page, username: str
) -> None:
    require(AXE_JS.exists(), f"axe-core not installed ({AXE_JS}): run the Makefile's a11y-deps")
    page = browser_page_without_csp
    log_in(page, username)
    found = []
    for url in page_urls(page, every_patient=username == accounts()[0]):
        page.goto(url)
        found += [_described(url, v) for v in axe_violations(page)]
    page.context.clear_cookies()
    page.goto("/login")  # and the log-in page, signed out
    found += [_described("/login", v) for v in axe_violations(page)]
    assert not found, f"{username}:\n" + "\n".join(found)


@pytest.fixture
def browser_page_without_csp(server: str) -> Any:
    """A page that may run axe-core: the app's CSP (script-src 'self') would refuse the
    injected script, so this browser context bypasses CSP (and only this one)."""
    from playwright.sync_api import sync_playwright

    from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

    require(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server, bypass_csp=True)
        new_page = context.new_page()
        new_page.set_default_timeout(15_000)
        new_page.on("dialog", lambda dialog: dialog.accept())
        yield new_page
        browser.close()


# Keyboard only: Tab / Shift+Tab to move, Enter to follow or press, Space to tick, typing ---------
MAX_TABS = 120


def _tab_to(page: Page, selector: str, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab) until the focus is on ``selector``, as a keyboard user would."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MAX_TABS):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with {key}")


def _press_enter_and_wait(page: Page) -> None:
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_a_flagged_refill_is_done_with_the_keyboard_alone(page: Page) -> None:
    log_in(page, "nurse_demo")
    _tab_to(page, 'tr[data-mrn="DEMO-001"] a')
    _press_enter_and_wait(page)
    _tab_to(page, "a[data-action=refill]")
    _press_enter_and_wait(page)
    _tab_to(page, "#refill-interrogate")
    _press_enter_and_wait(page)
    _tab_to(page, "input[name=withdrawn_ml]")
    page.keyboard.type("1.5")  # about 2.9 mL expected: beyond the 1 mL tolerance (S28)
    _tab_to(page, "#refill-submit")
    _press_enter_and_wait(page)
    assert page.locator("#discrepancy").is_visible()
    # the checkbox sits on its label's line, before the words (it once sat above them)
    box = page.locator("input[name=acknowledge_discrepancy]").bounding_box()
    label = page.locator("label:has(input[name=acknowledge_discrepancy])").bounding_box()
    assert box is not None and label is not None
    assert box["width"] < 40 and label["height"] < 2 * box["height"] + 12
    # the acknowledgement: reached backwards from the button, ticked with Space
    _tab_to(page, "input[name=acknowledge_discrepancy]", backwards=True)
    page.keyboard.press("Space")
    assert page.is_checked("input[name=acknowledge_discrepancy]")
    _tab_to(page, "textarea[name=discrepancy_note]")
    page.keyboard.type("pocket checked, no swelling")
    _tab_to(page, "#refill-submit")
    _press_enter_and_wait(page)
    assert page.get_attribute("#notice", "data-notice") == "refilled_flagged"


def test_a_program_change_is_reviewed_and_sent_with_the_keyboard_alone(page: Page) -> None:
    log_in(page, "dr_demo")
    _tab_to(page, 'tr[data-mrn="DEMO-003"] a')  # Casey Titration, 200 µg/day
    _press_enter_and_wait(page)
    version = int(page.get_attribute("#program", "data-program-version") or "0")
    _tab_to(page, "a[data-action=program]")
    _press_enter_and_wait(page)
    _tab_to(page, "input[name=rate_ug_per_day]")
    page.keyboard.type("210")
    _tab_to(page, "button[value=review]")
    _press_enter_and_wait(page)
    assert page.locator("#review-confirmation").is_visible()
    _tab_to(page, "#program-send")
    _press_enter_and_wait(page)  # the "send to pump ...?" question is accepted
    assert page.get_attribute("#notice", "data-notice") == "programmed"
    assert page.get_attribute("#program", "data-program-version") == str(version + 1)
