"""Non-volatile memory: a power cut at every byte leaves the old or the new state; a corrupted
image puts the pump in its safe state instead of running a garbage program."""

from __future__ import annotations

import pytest

from itb.pump.alarms import AlarmKind, Priority
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.memory import DualBankMemory, MemoryCorrupted, decode_bank, encode_bank
from itb.pump.status import BolusKind, Mode
from itb.therapy import continuous

from .helpers import START, days, hours, new_pump


def _two_states() -> tuple[bytes, bytes, Firmware]:
    fw = new_pump()
    fw.advance(START + hours(3))
    old = fw.to_image()
    fw.start_bolus(fw.now, BolusKind.CLINICIAN, dose_ug=25.0, duration_min=20.0)
    fw.set_program(fw.now, continuous(700.0))
    return old, fw.to_image(), fw


def test_power_loss_at_every_byte_leaves_the_old_or_the_new_state() -> None:
    old, new, _ = _two_states()
    assert old != new
    memory = DualBankMemory()
    memory.write(old)
    memory.write(old)  # both banks hold a valid image, as after a while in service
    _plan_index, image = memory.plan_write(new)
    outcomes = {"old": 0, "new": 0}
    for cut in range(len(image) + 1):
        trial = DualBankMemory([bytearray(b) for b in memory.banks])
        trial.write(new, power_fails_after_bytes=cut)
        payload = trial.read()
        assert payload in (old, new), f"a cut after {cut} bytes left a mix"
        outcomes["old" if payload == old else "new"] += 1
    # only the complete write shows the new state
    assert outcomes == {"old": len(image), "new": 1}


def test_write_alternates_banks_and_reads_the_newest() -> None:
    memory = DualBankMemory()
    for i in range(5):
        memory.write(f"state {i}".encode())
        assert memory.read() == f"state {i}".encode()
    assert memory.bad_banks() == []


def test_a_flipped_bit_fails_the_bank_check() -> None:
    bank = bytearray(encode_bank(7, b"payload"))
    assert decode_bank(bytes(bank)) == (7, b"payload")
    for i in range(len(bank)):
        for bit in range(8):
            bank[i] ^= 1 << bit
            assert decode_bank(bytes(bank)) != (7, b"payload")
            bank[i] ^= 1 << bit


def test_one_corrupted_bank_falls_back_to_the_last_good_one_with_a_non_critical_alarm() -> None:
    old, new, fw = _two_states()
    memory = DualBankMemory()
    memory.write(old)
    memory.write(new)
    newest_index = memory.newest()[0]  # type: ignore[index]
    memory.banks[newest_index][20] ^= 0xFF
    booted = Firmware.boot(memory, fw.model, fw.serial, fw.now, fw.world)
    assert booted.to_state()["program"] == {"rate_ug_per_day": 600.0}  # the old bank's program
    alarm = booted.alarms[AlarmKind.MEMORY_ERROR]
    assert alarm.priority is Priority.NON_CRITICAL
    assert booted.mode is Mode.RUNNING


def test_both_banks_corrupted_means_safe_state_at_minimum_rate_with_a_critical_alarm() -> None:
    _, new, fw = _two_states()
    memory = DualBankMemory()
    memory.write(new)
    memory.write(new)
    for bank in memory.banks:
        bank[30] ^= 0x01
    with pytest.raises(MemoryCorrupted):
        memory.read()
    booted = Firmware.boot(memory, pump_model("peristaltic-20"), "T-1", fw.now, fw.world)
    assert booted.mode is Mode.SAFE_STATE
    assert booted.alarms[AlarmKind.MEMORY_ERROR].priority is Priority.CRITICAL
    booted.advance(booted.now + days(10))
    # the minimum rate, 0.048 mL/day, keeps the catheter open; nothing from the lost program
    assert booted.status().delivered_ml == pytest.approx(0.48, abs=0.00025)


def test_a_garbage_image_with_a_valid_crc_is_still_refused() -> None:
    _, _, fw = _two_states()
    memory = DualBankMemory()
    memory.write(b'{"format": 1, "model": "peristaltic-20"}')
    booted = Firmware.boot(memory, fw.model, fw.serial, fw.now, fw.world)
    assert booted.mode is Mode.SAFE_STATE
