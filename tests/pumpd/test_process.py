"""End to end with real processes: keygen, init, pair, serve, and the programmer CLI over TCP."""

from __future__ import annotations

import stat
from pathlib import Path

from itb.pumpd.state import StateDir
from tests.pumpd.support import connection, itb, itb_json, make_pump, running


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    code, out = itb_json("programmer", "keygen", "--out", str(tmp_path / "k"))
    assert code == 0 and out["status"] == "done"
    mode = stat.S_IMODE((tmp_path / "k" / "programmer.key").stat().st_mode)
    assert mode == 0o600
    assert (tmp_path / "k" / "programmer.pub").exists()
    code, out = itb_json("programmer", "keygen", "--out", str(tmp_path / "k"))
    assert code == 2 and "refusing to overwrite" in out["error"]


def test_clinician_programs_and_refills_and_interrogate_shows_it(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir, speed=60.0) as pump:
        conn = connection(pump, clinician)
        code, before = itb_json("programmer", "interrogate", *conn)
        assert code == 0
        for key in ("program", "daily_dose_ug", "reservoir_ml", "battery", "alarms"):
            assert key in before
        assert before["daily_dose_ug"] == 600.0 and before["alarms"] == []

        code, out = itb_json("programmer", "program", *conn, "--rate-ug-per-day", "650")
        assert (code, out["status"]) == (0, "done")
        assert out["review"]["old_daily_dose_ug"] == 600.0
        assert out["review"]["new_daily_dose_ug"] == 650.0

        code, out = itb_json(
            "programmer", "refill", *conn, "--withdrawn-ml", "19.9", "--volume-ml", "18",
            "--concentration-ug-per-ml", "500", "--acknowledge-discrepancy",
        )  # fmt: skip
        assert (code, out["status"]) == (0, "done"), out
        assert out["schedule"]["next_refill_on"] is not None

        code, after = itb_json("programmer", "interrogate", *conn)
        assert after["program"] == {"rate_ug_per_day": 650.0}
        assert after["daily_dose_ug"] == 650.0
        assert 17.9 < after["reservoir_ml"] <= 18.0
        assert after["delivered_ug"] >= before["delivered_ug"]


def test_a_warning_needs_confirm_and_reason_and_changes_nothing_without(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        code, out = itb_json("programmer", "program", *conn, "--rate-ug-per-day", "1200")
        assert (code, out["status"]) == (1, "needs_confirmation")
        assert itb_json("programmer", "interrogate", *conn)[1]["daily_dose_ug"] == 600.0
        code, out = itb_json(
            "programmer", "program", *conn, "--rate-ug-per-day", "1200", "--confirm",
            "--reason", "planned escalation, reviewed",
        )  # fmt: skip
        assert (code, out["status"]) == (0, "done")
        assert itb_json("programmer", "interrogate", *conn)[1]["daily_dose_ug"] == 1200.0


def test_a_withdrawn_volume_discrepancy_needs_an_acknowledgement(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        refill = ["--withdrawn-ml", "12", "--volume-ml", "20", "--concentration-ug-per-ml", "500"]
        code, out = itb_json("programmer", "refill", *conn, *refill)
        assert (code, out["status"]) == (1, "needs_acknowledgement")
        assert out["discrepancy"]["flagged"] is True
        code, log = itb_json("programmer", "interrogate", *conn)
        assert log["last_refill_at"] == "2027-01-04T08:00:00"  # nothing changed


def test_patient_key_is_refused_a_program_change_and_the_pump_logs_it(tmp_path: Path) -> None:
    pump_dir, (clinician, patient) = make_pump(tmp_path, "clinician", "patient")
    with running(pump_dir) as pump:
        code, out = itb_json(
            "programmer", "program", *connection(pump, patient), "--rate-ug-per-day", "650"
        )
        assert (code, out["status"]) == (1, "refused")
        code, status = itb_json("programmer", "interrogate", *connection(pump, clinician))
        assert status["daily_dose_ug"] == 600.0
        code, out = itb_json("programmer", "patient-bolus", *connection(pump, patient))
        assert out["status"] == "rejected" and "not enabled" in out["reason"]
    booted = StateDir(pump_dir).boot()
    refusals = [e for e in booted.firmware.log.entries() if e.kind == "link_refused"]
    assert [r.data["reason"] for r in refusals] == ["role_forbidden"]
    assert refusals[0].data["request_type"] == "set_program"
    assert refusals[0].data["role"] == "patient"


def test_an_unpaired_key_is_refused_and_logged(tmp_path: Path) -> None:
    pump_dir, (_clinician,) = make_pump(tmp_path, "clinician")
    itb("programmer", "keygen", "--out", str(tmp_path / "stranger"), check=True)
    with running(pump_dir) as pump:
        code, out = itb_json("programmer", "interrogate", *connection(pump, tmp_path / "stranger"))
        assert (code, out["status"]) == (1, "refused")
    log = StateDir(pump_dir).boot().firmware.log.entries()
    assert [e.data["reason"] for e in log if e.kind == "link_refused"] == ["unknown_key"]


def test_bad_input_names_the_field_and_exits_2(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    code, out = itb_json(
        "programmer", "interrogate", "--pump", "localhost", "--key",
        str(clinician / "programmer.key"), "--pump-key", str(pump_dir / "pump.pub"),
    )  # fmt: skip
    assert code == 2 and out["field"] == "pump"
    result = itb("pump", "init", "--state", str(tmp_path / "p2"), "--volume-ml", "25",
                 "--concentration-ug-per-ml", "500", "--rate-ug-per-day", "100")  # fmt: skip
    assert result.returncode == 2 and "volume_ml" in result.stderr
    assert not (tmp_path / "p2" / "identity.json").exists()
    result = itb("pump", "pair", "--state", str(pump_dir), "--programmer",
                 str(clinician / "programmer.pub"), "--role", "admin")  # fmt: skip
    assert result.returncode == 2 and "role" in result.stderr


def test_pairing_is_refused_while_the_pump_is_served(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    with running(pump_dir):
        result = itb("pump", "pair", "--state", str(pump_dir), "--programmer",
                     str(clinician / "programmer.pub"), "--role", "patient")  # fmt: skip
        assert result.returncode == 2 and "another process" in result.stderr
    paired = StateDir(pump_dir).boot().paired_keys
    assert [k.role.value for k in paired] == ["clinician"]
