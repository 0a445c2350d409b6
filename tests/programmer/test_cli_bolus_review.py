"""``itb programmer bolus --kind clinician`` is reviewed by the same checks as the clinic's bolus
page (:func:`itb.programmer.bolus_review.review_bolus`), against a real ``itb pump serve``: a
refused bolus and an unconfirmed warning send nothing; a confirmed one is given and logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pumpd.support import connection, itb_json, make_pump, running


def _bolus(conn: list[str], *extra: str) -> tuple[int, dict[str, Any]]:
    return itb_json("programmer", "bolus", *conn, "--kind", "clinician", *extra)


def _bolus_in_progress(conn: list[str]) -> object:
    code, status = itb_json("programmer", "interrogate", *conn)
    assert code == 0, status
    return status.get("bolus")


def test_a_cli_bolus_is_reviewed_refused_or_confirmed_as_on_the_clinic_page(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        # above the label's largest screening bolus (refused outright), nothing sent
        code, out = _bolus(conn, "--dose-ug", "250", "--duration-min", "30")
        assert (code != 0, out["field"], out["sent"]) == (True, "dose_ug", False), out
        assert _bolus_in_progress(conn) is None
        # above the usual maximum: a warning that needs a confirmation with a reason
        code, out = _bolus(conn, "--dose-ug", "150", "--duration-min", "30")
        assert code != 0 and out["field"] == "confirm", out
        assert (out["status"], out["sent"]) == ("needs_confirmation", False), out
        assert "0.3 mL at 500 µg/mL" in out["error"], out  # the dose, shown before it is given
        assert _bolus_in_progress(conn) is None
        code, out = _bolus(conn, "--dose-ug", "150", "--duration-min", "30",
                           "--confirm", "--reason", "severe spasms, physician's order")  # fmt: skip
        assert (code, out["status"]) == (0, "done"), out
        bolus = _bolus_in_progress(conn)
        assert isinstance(bolus, dict) and bolus["kind"] == "clinician", bolus
