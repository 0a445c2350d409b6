"""End to end with real processes: keygen, init, pair, serve, and the programmer CLI over TCP."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

from itb.link.keys import KeyOwner, load_private_key, load_public_key
from itb.pump.eventlog import SECURITY_KINDS
from itb.pumpd.state import StateDir
from tests.link.attackers import Attack, recorded_hello
from tests.pumpd.support import (
    COMMAND_WAIT_S,
    ITB,
    connection,
    itb,
    itb_json,
    make_pump,
    running,
    wait_s,
)


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
    # The programmer reads the log for the program of 24 h ago (issue 11) before it sends: the
    # pump refuses the patient both, and logs both.
    assert [r.data["reason"] for r in refusals] == ["role_forbidden", "role_forbidden"]
    assert [r.data["request_type"] for r in refusals] == ["read_event_log", "set_program"]
    assert {r.data["role"] for r in refusals} == {"patient"}


def test_an_unpaired_key_is_refused_and_logged(tmp_path: Path) -> None:
    pump_dir, (_clinician,) = make_pump(tmp_path, "clinician")
    itb("programmer", "keygen", "--out", str(tmp_path / "stranger"), check=True)
    with running(pump_dir) as pump:
        code, out = itb_json("programmer", "interrogate", *connection(pump, tmp_path / "stranger"))
        assert (code, out["status"]) == (1, "refused")
        # A refusal writes no memory (a keyless peer must not wear it): its entry is saved with
        # the pump's next write, here the clean stop.
        assert pump.terminate() == 0
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


def test_under_a_keyless_flood_interrogate_completes_and_the_log_and_memory_are_untouched(
    tmp_path: Path,
) -> None:
    """Issue 12 on the real process: idle sockets, garbage connections and a replayed first
    message keep neither a paired programmer out nor write the pump's memory or its log."""
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    programmer = load_private_key(clinician / "programmer.key", KeyOwner.PROGRAMMER)
    pump_public = load_public_key(pump_dir / "pump.pub", KeyOwner.PUMP)
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        started = time.monotonic()
        assert itb_json("programmer", "interrogate", *conn)[0] == 0
        quiet_s = time.monotonic() - started
        before = StateDir(pump_dir).boot()

        async def attack_then_interrogate() -> float:
            attack = Attack(pump.port)
            hello = await recorded_hello(pump.port, programmer, pump_public)
            await attack.idle(20)
            await attack.garbage(40)
            await attack.replay(hello, 30)
            assert StateDir(pump_dir).boot().generation == before.generation  # no write
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                ITB, "programmer", "interrogate", *conn, "--json",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _err = await asyncio.wait_for(proc.communicate(), wait_s(COMMAND_WAIT_S))
            took_s = time.monotonic() - started
            await attack.stop()
            assert proc.returncode == 0, out
            return took_s

        attacked_s = asyncio.run(attack_then_interrogate())
        # The attack run: 233 s with three idle sockets. Here: what a quiet pump takes, plus a
        # few seconds (a CLI process start dominates both).
        assert attacked_s < quiet_s + wait_s(10.0), (quiet_s, attacked_s)
        assert pump.terminate() == 0
    after = StateDir(pump_dir).boot().firmware.log
    clinical = [e.to_dict() for e in before.firmware.log.entries() if e.kind not in SECURITY_KINDS]
    kept = [e.to_dict() for e in after.entries() if e.kind not in SECURITY_KINDS]
    assert kept[: len(clinical)] == clinical and after.lost_count == 0
    security = [e for e in after.entries() if e.kind in SECURITY_KINDS]
    assert 1 <= len(security) <= 3  # the first refusal, and one summary (at the interrogate)
