"""Issue 11's program-review holes through the real path: ``itb programmer program`` over
telemetry to a real ``itb pump serve`` process (the pump starts at 600 µg/day of 500 µg/mL)."""

from __future__ import annotations

from pathlib import Path

from tests.pumpd.support import connection, itb_json, make_pump, running


def _daily_dose(conn: list[str]) -> float:
    code, status = itb_json("programmer", "interrogate", *conn)
    assert code == 0
    # The pump computes the daily dose from µg/h rates: 780.0000000000005 for 780 µg/day.
    return round(float(status["daily_dose_ug"]), 6)


def test_two_increases_within_24_hours_need_a_confirmation_on_the_second(tmp_path: Path) -> None:
    # 600 → 780 (+30 %, spinal titration's limit) then 780 → 1000: +28.2 % alone, but +66.7 %
    # against the 600 µg/day in force 24 h earlier (the pump's event log gives it).
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    limits = ["--origin", "spinal", "--phase", "titration"]
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        code, out = itb_json("programmer", "program", *conn, *limits, "--rate-ug-per-day", "780")
        assert (code, out["status"]) == (0, "done"), out
        code, out = itb_json("programmer", "program", *conn, *limits, "--rate-ug-per-day", "1000")
        assert (code, out["status"], out["field"]) == (
            1,
            "needs_confirmation",
            "confirmation_reason",
        )
        assert "+66.7%" in out["error"] and "24 h" in out["error"]
        assert _daily_dose(conn) == 780.0  # nothing sent
        code, out = itb_json(
            "programmer", "program", *conn, *limits, "--rate-ug-per-day", "1000",
            "--confirm", "--reason", "titration reviewed with the physician",
        )  # fmt: skip
        assert (code, out["status"]) == (0, "done"), out
        assert _daily_dose(conn) == 1000.0


def test_without_origin_and_phase_the_strictest_limits_apply_and_reshaping_is_reviewed(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    # Same 600 µg/day total, one hour at 4× its old 25 µg/h: 8 × 25 + 100 + 15 × 20 = 600.
    reshaped = tmp_path / "reshaped.toml"
    reshaped.write_text(
        "[program]\nsteps = [\n"
        '  { start = "00:00", rate_ug_per_h = 25.0 },\n'
        '  { start = "08:00", rate_ug_per_h = 100.0 },\n'
        '  { start = "09:00", rate_ug_per_h = 20.0 },\n]\n',
        encoding="utf-8",
    )
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        # +20 %: within spinal maintenance's +40 % (the old default), beyond the strictest +15 %.
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "720", "--dry-run"
        )
        assert (code, out["status"], out["sent"]) == (0, "done", False)
        assert out["review"]["verdict"] == "warn"
        words = {c["name"]: c["reason"] for c in out["review"]["checks"]}
        assert "origin not given" in words["change_limits"]
        assert "phase not given" in words["change_limits"]
        code, out = itb_json("programmer", "program", *conn, "--rate-ug-per-day", "720")
        assert (code, out["status"]) == (1, "needs_confirmation")
        # A reshaped flex schedule with the same total needs a confirmation too, even with the
        # loosest limits given.
        loose = ["--origin", "spinal", "--phase", "maintenance"]
        code, out = itb_json("programmer", "program", *conn, *loose, "--file", str(reshaped))
        assert (code, out["status"]) == (1, "needs_confirmation"), out
        assert "08:00" in out["error"] and "+300.0%" in out["error"]
        assert _daily_dose(conn) == 600.0


def test_what_is_reviewed_is_what_is_sent(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "650", "--dry-run"
        )
        assert code == 0
        token = out["review_token"]
        assert len(token) == 64
        # Another program with the token of the 650 review: refused, nothing sent.
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "680", "--review-token", token
        )
        assert (code, out["status"], out["field"]) == (2, "error", "review_token")
        assert _daily_dose(conn) == 600.0
        # The pump's program changes after the review: the old token no longer matches.
        code, out = itb_json("programmer", "program", *conn, "--rate-ug-per-day", "620")
        assert (code, out["status"]) == (0, "done")
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "650", "--review-token", token
        )
        assert (code, out["field"]) == (2, "review_token")
        assert _daily_dose(conn) == 620.0
        # Reviewed again, sent with the new token: done, and the send reports the same token.
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "650", "--dry-run"
        )
        fresh = out["review_token"]
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "650", "--review-token", fresh
        )
        assert (code, out["status"], out["review_token"]) == (0, "done", fresh)
        assert _daily_dose(conn) == 650.0


def test_ambiguous_and_boundary_input(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    both = tmp_path / "both.toml"
    both.write_text(
        '[program]\nrate_ug_per_day = 600.0\nsteps = [{ start = "00:00", rate_ug_per_h = 30.0 }]\n',
        encoding="utf-8",
    )
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        code, out = itb_json("programmer", "program", *conn, "--file", str(both))
        assert (code, out["field"]) == (2, "rate_ug_per_day")
        assert "rate_ug_per_day and steps" in out["error"]
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "600", "--file", str(both)
        )
        assert code == 2 and "--rate-ug-per-day and --file" in out["error"]
        # 600 → 690 is +15 % exactly, the strictest limit: allowed; a hair more is not.
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "690", "--dry-run"
        )
        assert out["review"]["verdict"] == "ok", out["review"]["checks"]
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "690.0001", "--dry-run"
        )
        assert out["review"]["verdict"] == "warn"
        # A child (S25: 24 to 1199 µg/day under 12 years): 1250 µg/day is named as such.
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "1250", "--age-years", "8",
            "--dry-run",
        )  # fmt: skip
        dose_check = next(c for c in out["review"]["checks"] if c["name"] == "daily_dose")
        assert dose_check["verdict"] == "warn" and "under 12 years" in dose_check["reason"]
        assert _daily_dose(conn) == 600.0
