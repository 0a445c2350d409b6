"""The pump's clock through the real path: ``itb programmer interrogate`` says how far a real
``itb pump serve`` drifted from the patient's standard time, ``set-clock --dry-run`` shows the
correction, ``set-clock`` sets it (logged by the pump, old and new), a patient's key is
refused, and a schedule reviewed on a drifted pump says every step moves (issue 11, H77).

The pump is made 7 min behind: its scenario starts 7 min before the programmer's clock (UTC,
the patient's zone here), and it runs at the speed of real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from itb.pumpd.state import StateDir
from tests.pumpd.support import connection, itb, itb_json, running

ZONE = ["--patient-zone", "UTC"]
FLEX = """
[program]
steps = [
  { start = "00:00", rate_ug_per_h = 20.0 },
  { start = "09:00", rate_ug_per_h = 30.0 },
  { start = "21:00", rate_ug_per_h = 20.0 },
]
"""


def _pump_behind(tmp: Path, minutes: float, *roles: str) -> tuple[Path, list[Path]]:
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(tzinfo=None, microsecond=0)
    scenario = tmp / "scenario.toml"
    scenario.write_text(
        f'[pump]\nmodel = "peristaltic-20"\nstart = {start.isoformat()}\nserial = "CLOCK-1"\n'
        "[drug]\nconcentration_ug_per_ml = 500.0\nvolume_ml = 20.0\n"
        "[program]\nrate_ug_per_day = 600.0\n",
        encoding="utf-8",
    )
    pump = tmp / "pump"
    itb("pump", "init", "--state", str(pump), "--scenario", str(scenario), check=True)
    keys = []
    for role in roles:
        key_dir = tmp / f"programmer-{role}"
        itb("programmer", "keygen", "--out", str(key_dir), check=True)
        itb("pump", "pair", "--state", str(pump), "--programmer",
            str(key_dir / "programmer.pub"), "--role", role, check=True)  # fmt: skip
        keys.append(key_dir)
    return pump, keys


def _clock(conn: list[str]) -> dict[str, Any]:
    code, status = itb_json("programmer", "interrogate", *conn, *ZONE)
    assert code == 0, status
    clock: dict[str, Any] = status["clock"]
    return clock


def test_a_pump_seven_minutes_behind_is_said_in_words_and_set_right_with_set_clock(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = _pump_behind(tmp_path, 7, "clinician")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        clock = _clock(conn)
        # the seconds the pump process took to start only add to the lag
        assert clock["needs_setting"] and -9.0 < clock["drift_min"] <= -7.0, clock
        assert "min behind the patient's standard time" in clock["words"]
        assert "every flex step runs" in clock["words"]
        human = itb("programmer", "interrogate", *conn, *ZONE)
        assert human.returncode == 0 and "pump clock" in human.stdout
        assert "min behind the patient's" in " ".join(human.stdout.split())

        code, dry = itb_json("programmer", "set-clock", *conn, *ZONE, "--dry-run")
        assert (code, dry["status"], dry["sent"]) == (0, "done", False), dry
        assert _clock(conn)["needs_setting"]  # a dry run sends nothing

        code, done = itb_json("programmer", "set-clock", *conn, *ZONE)
        assert (code, done["status"]) == (0, "done"), done
        after = _clock(conn)
        assert not after["needs_setting"] and abs(after["drift_min"]) < 1.0, after
        assert after["words"] == "pump clock within 5 min of the patient's time"
    # the pump logged the correction, old and new, with the command that asked for it
    firmware = StateDir(pump_dir).boot().firmware
    (entry,) = [e for e in firmware.log.entries() if e.kind == "clock"]
    correction_min = float(str(entry.data["correction_s"])) / 60
    assert 7.0 <= correction_min < 9.0 and str(entry.data["old"]) < str(entry.data["new"])
    commands = [e.data for e in firmware.log.entries() if e.kind == "command"]
    assert [(c["request"], c["outcome"]) for c in commands] == [("set_clock", "applied")]


def test_a_patients_key_cannot_set_the_clock(tmp_path: Path) -> None:
    pump_dir, (_, patient) = _pump_behind(tmp_path, 7, "clinician", "patient")
    with running(pump_dir) as pump:
        conn = connection(pump, patient)
        code, out = itb_json("programmer", "set-clock", *conn, *ZONE)
        assert (code, out["status"]) == (1, "refused"), out
        assert _clock(conn)["needs_setting"]  # nothing changed


def test_a_schedule_reviewed_on_a_pump_whose_clock_is_off_says_every_step_moves(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = _pump_behind(tmp_path, 7, "clinician")
    program = tmp_path / "flex.toml"
    program.write_text(FLEX, encoding="utf-8")
    with running(pump_dir) as pump:
        conn = connection(pump, clinician)
        review = ["programmer", "program", *conn, *ZONE, "--file", str(program),
                  "--origin", "spinal", "--phase", "maintenance", "--dry-run"]  # fmt: skip
        code, out = itb_json(*review)
        assert code == 0, out
        assert "each step of this schedule will run" in out["clock"]
        assert "min late by the patient's clock" in out["clock"]
        human = itb(*review)
        assert "warning: pump clock" in human.stdout
        # the clock set right, the same review has nothing to say about it
        code, _ = itb_json("programmer", "set-clock", *conn, *ZONE)
        assert code == 0
        code, out = itb_json(*review)
        assert code == 0 and "clock" not in out, out
