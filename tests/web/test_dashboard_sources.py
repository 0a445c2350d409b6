"""The dashboard's ranking is cited once, when it is built, then placed in each user's page:
the page served reads exactly as if the whole of it had been cited, on every page and filter."""

from __future__ import annotations

from itb.web.citations import cite_sources
from itb.web.pages.dashboard import RANKING_SLOT
from tests.clinic.support import Clinic


def test_the_served_dashboard_has_its_sources_linked_and_no_code_left_bare(
    clinic: Clinic,
) -> None:
    clinic.login("nurse_demo")
    for params in ({}, {"page": 2}, {"clinician_id": 1}):
        for _built_then_cached in range(2):
            html = clinic.client.get("/", params=params).text
            assert RANKING_SLOT not in html and "<h1>Patients by urgency</h1>" in html
            assert cite_sources(html) == html, params  # nothing left to cite
            # the ranking's "the low-reservoir alarm (S24)": a "why?" link, never the code
            assert 'alarm (<a class="why" href="/sources?cite=S24#S24"' in html, params
