"""The patient page leads the care team to the family tab and to the FHIR export, and the export
it links to is the patient's own validated bundle (issues 14 and 16)."""

from __future__ import annotations

from tests.clinic.support import Clinic
from tests.web.markup import find, find_all
from tests.web.test_pages import _page_login


def test_the_patient_page_links_the_family_tab_for_the_care_team_and_the_fhir_export(
    clinic: Clinic,
) -> None:
    _page_login(clinic, "nurse_demo")
    dana_id = clinic.patient_id("DEMO-004")
    page = clinic.client.get(f"/patients/{dana_id}").text
    assert find(page, id="family-link")["href"] == f"/patients/{dana_id}/family"
    export = find(page, id="fhir-link")
    bundle = clinic.client.get(str(export["href"]))
    assert bundle.status_code == 200 and bundle.json()["resourceType"] == "Bundle"
    patients = [e for e in bundle.json()["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 1
    # a viewer reads the record but invites no caregiver
    _page_login(clinic, "viewer_demo")
    page = clinic.client.get(f"/patients/{dana_id}").text
    assert not find_all(page, id="family-link")
    assert find(page, id="fhir-link")
