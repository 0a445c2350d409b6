"""The API documentation works offline: Swagger UI served by the app under its own CSP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.clinic.support import Clinic
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]


def test_api_docs_page_loads_its_assets_from_the_app_under_a_self_only_csp(
    clinic: Clinic,
) -> None:
    docs = clinic.client.get("/api/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "http" not in csp  # no CDN allowed
    assert "<script>" not in docs.text  # no inline script: the CSP would block it
    for asset in ("/api/docs/assets/swagger-ui-bundle.js", "/api/docs/assets/swagger-ui.css"):
        assert asset in docs.text
        assert clinic.client.get(asset).status_code == 200
    assert clinic.client.get("/static/api-docs.js").status_code == 200


@pytest.mark.browser
def test_api_docs_page_shows_the_operations_in_chromium(page: Page) -> None:
    errors: list[str] = []  # a CSP refusal is a console error ("Refused to load ...")
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto("/api/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/patients/{patient_id}/fhir" in p.replace("\u200b", "") for p in paths)
    assert any("/api/login" in p.replace("\u200b", "") for p in paths)
    assert errors == []
