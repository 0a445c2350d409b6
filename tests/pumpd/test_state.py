"""The state directory: crash-safe writes, bank fallback with the matching world, pairing, the
allow-list kept apart from the settings, and corrupt images kept before they are overwritten."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from itb.link.keys import generate_private_key, public_key_of
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.memory import DualBankMemory
from itb.pumpd.allowlist import ALLOWLIST_FILES, AllowListHealth, encode_allowlist
from itb.pumpd.files import atomic_write, corrupt_copies
from itb.pumpd.state import BANK_FILES, PumpBusyError, StateDir
from itb.telemetry.endpoint import PairedKey, Role
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
    state.write_image(fw, booted.link_state)
    fw.refill(datetime(2027, 1, 5, 9, 0), 20.0, 500.0)
    generation = state.write_image(fw, booted.link_state)
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


def _paired(state: StateDir, *roles: Role) -> list[bytes]:
    keys = [public_key_of(generate_private_key()) for _ in roles]
    with state.locked():
        for key, role in zip(keys, roles, strict=True):
            state.pair(key, role, role.value)
    return keys


def _corrupt(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the CRC fails
    path.write_bytes(bytes(data))
    return bytes(data)


def test_losing_both_settings_banks_keeps_the_pairing(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    clinician, patient = _paired(state, Role.CLINICIAN, Role.PATIENT)
    for name in BANK_FILES:
        _corrupt(state.path / name)
    booted = state.boot()
    assert booted.firmware.mode.value == "safe_state"
    assert [(k.public_key, k.role) for k in booted.paired_keys] == [
        (clinician, Role.CLINICIAN),
        (patient, Role.PATIENT),
    ]
    assert booted.allowlist is AllowListHealth.GOOD


def test_one_bad_allowlist_copy_falls_back_to_the_other_with_the_same_keys(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    (clinician,) = _paired(state, Role.CLINICIAN)
    for name in ALLOWLIST_FILES:  # either copy: both hold the same list after a pairing
        kept = (state.path / name).read_bytes()
        _corrupt(state.path / name)
        booted = state.boot()
        assert [k.public_key for k in booted.paired_keys] == [clinician], name
        assert booted.allowlist is AllowListHealth.ONE_COPY_BAD
        (state.path / name).write_bytes(kept)


def test_a_lost_allowlist_says_so_and_pairing_again_reaches_the_pump(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    _paired(state, Role.CLINICIAN)
    for name in ALLOWLIST_FILES:
        _corrupt(state.path / name)
    booted = state.boot()
    assert booted.allowlist is AllowListHealth.LOST and booted.paired_keys == []
    lost = [e for e in booted.firmware.log.entries() if e.kind == "allowlist_lost"]
    assert lost and lost[-1].data["copies"] == list(ALLOWLIST_FILES)
    findings = state.keep_corrupt_copies()
    assert findings.allowlist_lost
    assert "no programmer is paired" in (findings.warning() or "")
    (again,) = _paired(state, Role.CLINICIAN)
    assert [k.public_key for k in state.boot().paired_keys] == [again]
    assert all(corrupt_copies(state.path / name) for name in ALLOWLIST_FILES)


def test_pairing_a_pump_whose_settings_banks_are_both_lost_is_allowed(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    for name in BANK_FILES:
        _corrupt(state.path / name)
    (clinician,) = _paired(state, Role.CLINICIAN)
    booted = state.boot()
    assert [k.public_key for k in booted.paired_keys] == [clinician]
    assert booted.firmware.mode.value == "safe_state"  # the safe state was written, not lifted
    assert booted.firmware.status().concentration_ug_per_ml is None


def test_a_power_cut_at_every_byte_of_an_allowlist_write_leaves_the_old_or_the_new_list(
    tmp_path: Path,
) -> None:
    state = _pump(tmp_path)
    (first,) = _paired(state, Role.CLINICIAN)
    old = [PairedKey(first, Role.CLINICIAN, "clinician")]
    new = [*old, PairedKey(public_key_of(generate_private_key()), Role.PATIENT, "remote")]
    memory, _ = state.allowlist.memory()
    image_bytes = len(memory.plan_write(encode_allowlist(new))[1])
    outcomes = {"old": 0, "new": 0}
    for cut in range(image_bytes + 1):
        trial = DualBankMemory([bytearray(b) for b in memory.banks])
        trial.write(encode_allowlist(new), power_fails_after_bytes=cut)
        for path, bank in zip(state.allowlist.paths(), trial.banks, strict=True):
            path.write_bytes(bytes(bank))
        loaded = list(state.allowlist.load().keys)
        assert loaded in (old, new), f"a cut after {cut} bytes left a mix"
        outcomes["old" if loaded == old else "new"] += 1
    assert outcomes == {"old": image_bytes, "new": 1}


def test_a_corrupt_bank_is_kept_before_the_first_write_over_it(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    corrupt = {name: _corrupt(state.path / name) for name in BANK_FILES}
    booted = state.boot()
    state.write_image(booted.firmware, booted.link_state)  # overwrites bank0
    state.write_image(booted.firmware, booted.link_state)  # overwrites bank1
    state.write_image(booted.firmware, booted.link_state)  # a good bank: nothing kept
    for name, data in corrupt.items():
        copies = corrupt_copies(state.path / name)
        assert [c.name for c in copies] == [f"{name}.corrupt-1"]
        assert copies[0].read_bytes() == data
    assert state.boot().bad_banks == []


def test_the_same_corrupt_bytes_are_kept_once_and_new_ones_get_the_next_number(
    tmp_path: Path,
) -> None:
    state = _pump(tmp_path)
    path = state.path / BANK_FILES[0]
    first = _corrupt(path)
    state.keep_corrupt_copies()
    state.keep_corrupt_copies()
    path.write_bytes(first[:10])  # another corruption of the same bank
    findings = state.keep_corrupt_copies()
    assert [c.name for c in corrupt_copies(path)] == [f"{path.name}.corrupt-{n}" for n in (1, 2)]
    assert findings.bad_banks == (path.name,) and not findings.allowlist_lost
    warning = findings.warning() or ""
    assert warning.startswith("warning: settings bank bank0.bin failed its check")
    assert str(path) + ".corrupt-2" in warning and "\n" not in warning


def test_a_clean_pump_has_no_warning_and_keeps_nothing(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    _paired(state, Role.CLINICIAN)
    findings = state.keep_corrupt_copies()
    assert findings.clean and findings.warning() is None
    assert not list(state.path.glob("*.corrupt-*"))


def test_a_directory_from_before_the_split_moves_its_keys_to_the_allowlist(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    public = public_key_of(generate_private_key())
    booted = state.boot()
    image = booted.firmware.to_state()
    image["link"] = None
    image["paired_keys"] = [PairedKey(public, Role.CLINICIAN, "old").to_dict()]
    for name in ALLOWLIST_FILES:
        (state.path / name).unlink()
    memory = DualBankMemory()
    memory.write(json.dumps(image, sort_keys=True, separators=(",", ":")).encode())
    for name, bank in zip(BANK_FILES, [memory.banks[0], memory.banks[0]], strict=True):
        (state.path / name).write_bytes(bytes(bank))
    assert [k.public_key for k in state.boot().paired_keys] == [public]
    assert all((state.path / name).exists() for name in ALLOWLIST_FILES)
    assert [k.public_key for k in state.allowlist.load().keys] == [public]
