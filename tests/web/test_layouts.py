"""Every page of the demo clinic, as each role, at a phone's, a clinic tablet's and a desktop's
width (390, 768, 1280 px): the page never scrolls sideways (a wide table scrolls inside its own
box). A full-page screenshot of each lands in build/screenshots/ (CI keeps it as an artifact)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.web.page_walk import WIDTHS_PX, accounts, log_in, page_urls, slug
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).parents[2] / "build" / "screenshots"


def _page_overflow_px(page: Page) -> int:
    """How far the page itself scrolls sideways (0: it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize("username", accounts())
def test_every_page_fits_each_width_without_sideways_scroll(page: Page, username: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, username)
    too_wide = []
    for url in page_urls(page, every_patient=username == accounts()[0]):
        page.goto(url)
        for width_px in WIDTHS_PX:  # the same page reflowed at each width
            page.set_viewport_size({"width": width_px, "height": 900})
            overflow_px = _page_overflow_px(page)
            if overflow_px > 0:
                too_wide.append(f"{url} at {width_px} px: {overflow_px} px too wide")
            shot = SCREENSHOTS / f"{username}_{slug(url)}_{width_px}.png"
            page.screenshot(path=str(shot), full_page=True)
    assert not too_wide, f"{username}:\n" + "\n".join(too_wide)


def test_the_dashboard_table_scrolls_inside_its_box_on_a_tablet(page: Page) -> None:
    page.set_viewport_size({"width": 768, "height": 900})
    log_in(page, "nurse_demo")
    assert _page_overflow_px(page) == 0
    table = page.locator("#dashboard")
    inner_px = table.evaluate("t => t.scrollWidth - t.clientWidth")
    assert inner_px > 0  # the columns are all there, reached by scrolling the table
    box = table.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 768
