"""Commands that meet each other, through the real path: ``itb programmer ...`` over telemetry
to a real ``itb pump serve`` process (600 µg/day of 500 µg/mL, peristaltic-20: 24 mL/day at
most), with volumes typed as a person types them (decimal commas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pumpd.support import connection, itb, itb_json, make_pump, running


def _status(conn: list[str]) -> dict[str, Any]:
    code, status = itb_json("programmer", "interrogate", *conn)
    assert code == 0, status
    return status


def test_a_program_change_during_a_bolus_that_would_outrun_the_motor_is_refused(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        # 100 µg over 13 min (typed "13,0") = 200 µL / 780 s = 0.2564 µL/s on top of 1.2 mL/day
        code, out = itb_json("programmer", "bolus", *conn, "--kind", "clinician",
                             "--dose-ug", "100", "--duration-min", "13,0")  # fmt: skip
        assert (code, out["status"]) == (0, "done"), out
        # 1000 µg/day = 2 mL/day = 0.0231 µL/s: 0.2795 µL/s with the bolus > 0.2778 (24 mL/day)
        code, out = itb_json(
            "programmer", "program", *conn, "--origin", "spinal", "--phase", "maintenance",
            "--rate-ug-per-day", "1000", "--confirm", "--reason", "physician's order",
        )  # fmt: skip
        assert (code, out["status"], out["field"]) == (1, "rejected", "program"), out
        assert "bolus is in progress" in out["reason"]
        status = _status(conn)
        assert round(float(status["daily_dose_ug"]), 6) == 600.0
        assert status["bolus"]["kind"] == "clinician"  # the bolus goes on


def test_stop_then_refill_typed_with_commas_at_a_new_concentration_waits_for_resume(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        left = f"{float(_status(conn)['reservoir_ml']):.2f}".replace(".", ",")
        refill = ["programmer", "refill", *conn, "--withdrawn-ml", left, "--volume-ml", "17,93"]
        # "1,000" µg/mL: one thousand, or one? Refused in words before anything is sent.
        bad = itb(*refill, "--concentration-ug-per-ml", "1,000")
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert "ambiguous" in bad.stderr and "--concentration-ug-per-ml" in bad.stderr
        assert float(_status(conn)["concentration_ug_per_ml"]) == 500.0
        code, out = itb_json("programmer", "stop", *conn)
        assert (code, out["status"]) == (0, "done"), out
        code, out = itb_json(*refill, "--concentration-ug-per-ml", "1000",
                             "--acknowledge-discrepancy")  # fmt: skip
        assert (code, out["status"]) == (0, "done"), out
        status = _status(conn)
        # a refill does not restart a stopped pump; 17,93 mL was read as 17.93 mL
        assert status["mode"] == "stopped" and float(status["concentration_ug_per_ml"]) == 1000.0
        assert abs(float(status["reservoir_ml"]) - 17.93) < 0.01
        code, out = itb_json("programmer", "resume", *conn)
        assert (code, out["status"]) == (0, "done"), out
        status = _status(conn)
        # the program is in µg: 600 µg/day, now 0.6 mL/day of 1000 µg/mL
        assert status["mode"] == "running" and round(float(status["daily_dose_ug"]), 6) == 600.0
