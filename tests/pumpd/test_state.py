"""The state directory: crash-safe writes, bank fallback with the matching world, pairing."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from itb.link.keys import generate_private_key, public_key_of
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.state import BANK_FILES, PumpBusyError, StateDir, atomic_write
from itb.telemetry.endpoint import Role
from itb.therapy import continuous

START = datetime(2027, 1, 4, 8, 0)


def _pump(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / "pump")
    fw = Firmware.implant(
        pump_model("peristaltic-20"), START, serial="T-1", concentration_ug_per_ml=500.0,
        volume_ml=20.0, program=continuous(600.0),
    )  # fmt: skip
    state.create(fw)
    return state


def test_a_write_cut_before_the_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    atomic_write(path, b"old")

    def crash(*_: object) -> None:
        raise KeyboardInterrupt  # stands for the process dying at that instant

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"


def test_a_fresh_pump_boots_clean_and_refuses_a_second_init(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    booted = state.boot()
    assert booted.bad_banks == [] and booted.firmware.alarms == {}
    fw = booted.firmware
    with pytest.raises(ValueError, match="already holds a pump"):
        state.create(fw)


def test_a_torn_newest_bank_falls_back_to_the_other_with_its_own_world(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    booted = state.boot()
    fw = booted.firmware
    fw.advance(datetime(2027, 1, 5, 8, 0))
    old_world_ul = fw.world.reservoir_ul
    state.write_image(fw, booted.link_state, booted.paired_keys)
    fw.refill(datetime(2027, 1, 5, 9, 0), 20.0, 500.0)
    generation = state.write_image(fw, booted.link_state, booted.paired_keys)
    newest = state.path / BANK_FILES[(generation - 1) % 2]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # a torn write of the newest bank

    again = state.boot()
    assert again.generation == generation - 1
    assert again.firmware.now == datetime(2027, 1, 5, 8, 0)  # the state before the refill
    assert again.firmware.world.reservoir_ul == pytest.approx(old_world_ul)
    assert "memory_error" in {a.value for a in again.firmware.alarms}


def test_both_banks_bad_is_the_safe_state(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    for name in BANK_FILES:
        (state.path / name).write_bytes(b"garbage")
    booted = state.boot()
    assert booted.firmware.mode.value == "safe_state"


def test_pairing_records_the_key_and_role_in_memory_and_the_log(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    public = public_key_of(generate_private_key())
    with state.locked():
        state.pair(public, Role.PATIENT, "remote")
        state.pair(public, Role.CLINICIAN, "clinic")  # pairing again replaces the role
    booted = state.boot()
    assert [(k.public_key, k.role) for k in booted.paired_keys] == [(public, Role.CLINICIAN)]
    paired = [e.data["role"] for e in booted.firmware.log.entries() if e.kind == "paired"]
    assert paired == ["patient", "clinician"]


def test_one_process_at_a_time(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    with state.locked(), pytest.raises(PumpBusyError):
        StateDir(state.path).lock()
