"""Calendar privacy (issue 14): .ics events name the patient by MRN (or initials); the full
name only when asked for explicitly, through the API and the command line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from itb.cli import app
from tests.clinic.support import Clinic

NAMES = ("Alex Near-Empty", "Blake Battery-ERI", "Casey Titration", "Dana Stability", "Eli Flex")


def _unfolded(text: str) -> str:
    return text.replace("\r\n ", "")


def test_calendar_events_carry_the_mrn_and_no_name_by_default(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    ics = _unfolded(clinic.client.get("/api/calendar.ics").text)
    assert "SUMMARY:ITB refill: DEMO-001 (SIM-001)" in ics
    assert not any(name in ics for name in NAMES)
    assert not any(part in ics for name in NAMES for part in name.split())


def test_initials_or_the_full_name_only_when_asked(clinic: Clinic) -> None:
    clinic.login("viewer_demo")
    initials = _unfolded(clinic.client.get("/api/calendar.ics?patient_label=initials").text)
    assert "SUMMARY:ITB refill: A.N. (SIM-001)" in initials  # Alex Near-Empty
    assert "DEMO-001" not in initials and "Alex" not in initials
    named = _unfolded(clinic.client.get("/api/calendar.ics?patient_label=full_name").text)
    assert "SUMMARY:ITB refill: Alex Near-Empty (SIM-001)" in named
    bad = clinic.client.get("/api/calendar.ics?patient_label=everything")
    assert bad.status_code == 422
    assert "patient_label" in bad.json()["detail"][0]["msg"]


def test_itb_clinic_calendar_writes_mrns_unless_names_are_asked_for(
    clinic: Clinic, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "refills.ics"
    result = runner.invoke(
        app, ["clinic", "calendar", "--out", str(out), "--database-url", clinic.url]
    )
    assert result.exit_code == 0, result.output
    assert "patients named by mrn" in result.output
    text = _unfolded(out.read_bytes().decode())
    assert text.startswith("BEGIN:VCALENDAR\r\n") and "DEMO-001" in text
    assert not any(name in text for name in NAMES)
    named = runner.invoke(
        app,
        ["clinic", "calendar", "--out", str(out), "--patient-label", "full_name",
         "--database-url", clinic.url],
    )  # fmt: skip
    assert named.exit_code == 0 and "Alex Near-Empty" in _unfolded(out.read_bytes().decode())
    bad = runner.invoke(
        app,
        ["clinic", "calendar", "--out", str(out), "--patient-label", "names",
         "--database-url", clinic.url],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "--patient-label: allowed mrn, initials, full_name" in bad.output
