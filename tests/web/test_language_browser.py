"""In Chromium, as a physician, a nurse and a viewer: every page of the demo clinic, its text as
the browser shows it scanned for JSON, Python field paths, source codes, ``[R]``, ``None`` and
microsecond timestamps; a failure names the page and the offending text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.web.test_browser import _log_in, page, server
from tests.web.test_language import ROLES, offences, page_paths

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser


def _demo_patients(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.request.get("/api/patients").json()
    patients = []
    for row in rows:
        visits = page.request.get(f"/api/patients/{row['id']}").json().get("visits") or []
        patients.append({"id": row["id"], "visit_id": visits[0]["id"] if visits else 1})
    return patients


@pytest.mark.parametrize("username", ROLES)
def test_every_page_reads_in_words_in_the_browser(page: Page, username: str) -> None:
    _log_in(page, username)
    found = []
    for path in page_paths(_demo_patients(page)):
        answer = page.goto(path)
        if answer is None or "text/html" not in (answer.headers.get("content-type") or ""):
            continue
        text = page.evaluate("document.body.innerText")
        found += [f"{path} ({answer.status}) {o}" for o in offences(str(text))]
    assert not found, "\n".join(found[:40])
