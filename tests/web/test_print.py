"""A nurse refills a pump, then prints the refill record and the interrogation report: the print
page carries the pump, drug, volumes, program and who did it; the PDF renders to a page that is
not blank (Debian's pdftoppm) and its text (pdftotext) names the pump serial."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from tests.clinic.support import Clinic
from tests.conftest import require
from tests.web.page_walk import log_in
from tests.web.test_browser import page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["page", "server"]  # the browser fixtures, shared with test_browser.py

SERIAL = "SIM-001"  # DEMO-001's pump


def _refill(clinic: Clinic) -> tuple[int, int]:
    """DEMO-001 refilled by the nurse: (patient id, refill visit id)."""
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    response = clinic.client.post(
        f"/api/patients/{pid}/refill",
        json={"withdrawn_ml": 2.8, "filled_ml": 20.0, "concentration_ug_per_ml": 500.0},
    )
    assert response.status_code == 200, response.text
    return pid, int(response.json()["visit_id"])


def _pdf_text_and_ink(pdf: bytes, tmp_path: Path) -> tuple[str, float]:
    """The PDF's text (pdftotext) and the share of its first page that is ink (pdftoppm)."""
    tools = ("pdftoppm", "pdftotext")
    require(all(shutil.which(t) for t in tools), "poppler-utils not installed (pdftoppm)")
    path = tmp_path / "printout.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(path), str(tmp_path / "p")],
        check=True,
    )
    (page,) = tmp_path.glob("p*.png")
    gray = Image.open(page).convert("L")
    dark = sum(count for level, count in enumerate(gray.histogram()) if level < 128)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return text, dark / (gray.width * gray.height)


def test_a_refill_record_prints_with_pump_drug_volumes_program_and_who(clinic: Clinic) -> None:
    pid, visit_id = _refill(clinic)
    page = clinic.client.get(f"/patients/{pid}/visits/{visit_id}/print")
    assert page.status_code == 200
    html = page.text
    for words in (
        "Refill record: pump SIM-001",
        "peristaltic-20",
        "baclofen 500 µg/mL",
        "2.80 mL",  # withdrawn
        "20.00 mL",  # filled
        "Rate (µg/h)",  # the program as a schedule table with units
        "nurse_demo",
        'href="/static/print.css" media="print"',
    ):
        assert words in html, words
    assert "{" not in page.text.split("<main>")[1]  # no JSON on the page


def test_the_refill_records_pdf_renders_and_shows_the_pump_serial(
    clinic: Clinic, tmp_path: Path
) -> None:
    pid, visit_id = _refill(clinic)
    response = clinic.client.get(f"/patients/{pid}/visits/{visit_id}/record.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    text, ink = _pdf_text_and_ink(response.content, tmp_path)
    assert 0.002 < ink < 0.5, f"the first page is {ink:.1%} ink: blank or a black box"
    assert SERIAL in text
    for words in ("peristaltic-20", "500 µg/mL", "20.00 mL", "µg/h", "nurse_demo", "Alarms"):
        assert words in text, words


def test_the_interrogation_reports_pdf_names_the_pump_and_who_read_it(
    clinic: Clinic, tmp_path: Path
) -> None:
    clinic.login("nurse_demo")
    pid = clinic.patient_id("DEMO-001")
    assert clinic.client.post(f"/api/patients/{pid}/interrogate").status_code == 200
    page = clinic.client.get(f"/patients/{pid}/report/print")
    assert page.status_code == 200 and "Interrogation report: pump SIM-001" in page.text
    text, ink = _pdf_text_and_ink(
        clinic.client.get(f"/patients/{pid}/report.pdf").content, tmp_path
    )
    assert ink > 0.002 and SERIAL in text and "nurse_demo" in text
    assert "Program read from the pump" in text and "mL" in text


def test_a_visit_that_is_not_a_refill_of_this_patient_is_not_found_in_words(
    clinic: Clinic,
) -> None:
    _pid, visit_id = _refill(clinic)
    other = clinic.patient_id("DEMO-002")
    response = clinic.client.get(f"/patients/{other}/visits/{visit_id}/print")
    assert response.status_code == 404
    assert "no refill visit" in response.text and "Traceback" not in response.text


@pytest.mark.browser
def test_the_refill_record_prints_without_the_apps_header_and_buttons(page: Page) -> None:
    """In Chromium: from the patient page to the refill record; printed, only the record
    shows; its PDF link downloads the PDF."""
    log_in(page, "viewer_demo")  # a viewer may print what it may see
    page.click('tr[data-mrn="DEMO-001"] a')
    page.click("#visits a[data-print-visit] >> nth=0")
    page.wait_for_selector("#printout")
    assert "Refill record: pump" in page.inner_text("h1")
    assert page.is_visible("header.top") and page.is_visible("#pdf-link")
    page.emulate_media(media="print")
    assert not page.is_visible("header.top") and not page.is_visible("#pdf-link")
    assert page.is_visible("#printout-patient")
    pdf = page.request.get(page.get_attribute("#pdf-link", "href") or "")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
