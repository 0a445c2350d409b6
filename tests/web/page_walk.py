"""Every page of the demo clinic as each role sees it, for the browser walks (accessibility,
layouts): the app's own GET page routes, filled with demo ids, so a page added later is walked
without a change here."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from itb.clinic.demo import DEMO_CAREGIVER, DEMO_USERS
from itb.web.app import app_routes
from tests.clinic.support import DEMO_PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page

WIDTHS_PX = (390, 768, 1280)  # a phone, a tablet in the clinic room, a desktop
SUBPAGES_MRN = "DEMO-003"  # the patient whose every page is walked: a pump, a family
REFILL_MRN = "DEMO-001"  # the patient whose refill visit's pages are walked
NOT_HTML = (".pdf", ".ics")


def accounts() -> list[str]:
    """One demo account per role (the first of each), and the demo family's parent."""
    seen: dict[str, str] = {}
    for username, role in DEMO_USERS:
        seen.setdefault(str(role), username)
    return [*seen.values(), DEMO_CAREGIVER[0]]


def log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def _patient_ids(page: Page) -> dict[str, int]:
    answer = page.request.get("/api/patients")
    if answer.ok:
        return {row["mrn"]: int(row["id"]) for row in answer.json()}
    return {}


def _refill_visit(page: Page, patient_id: int) -> int | None:
    answer = page.request.get(f"/api/patients/{patient_id}/visits")
    if not answer.ok:
        return None
    return next((int(v["id"]) for v in answer.json() if v["kind"] == "refill"), None)


def page_urls(page: Page, every_patient: bool = False) -> list[str]:
    """The pages to walk for the signed-in user: every page route with the walked patient's
    ids (a page the role may not see shows the error page) and, with ``every_patient``, each
    other patient's page too (their forecasts make them the slowest pages: one role is enough)."""
    ids = _patient_ids(page)
    family = re.search(r"/family/(\d+)", page.url)
    walked = ids.get(SUBPAGES_MRN) or (int(family.group(1)) if family else 1)
    refilled = ids.get(REFILL_MRN, walked)
    visit = _refill_visit(page, refilled) or 1
    values = {"patient_id": walked, "visit_id": visit}
    others = sorted(pid for mrn, pid in ids.items() if mrn != SUBPAGES_MRN)
    urls = [f"/patients/{pid}" for pid in others] if every_patient else []
    for route in app_routes():
        path = route.path
        if "GET" not in (route.methods or ()) or path.startswith("/api") or path == "/login":
            continue
        if path.endswith(NOT_HTML):
            continue
        names = re.findall(r"{(\w+)}", path)
        if all(name in values for name in names):
            # a visit's page: the patient with a refill visit (the walked one has none yet)
            filled = values | ({"patient_id": refilled} if "visit_id" in names else {})
            urls.append(path.format(**{name: filled[name] for name in names}))
    return urls


def slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-") or "home"
