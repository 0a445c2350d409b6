"""Non-volatile memory: a power cut at every byte leaves the old or the new state; a corrupted
image puts the pump in its safe state instead of running a garbage program."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from itb.drugs import BACLOFEN
from itb.pump.alarms import AlarmKind, Priority
from itb.pump.firmware import CommandRejected, Firmware
from itb.pump.hardware import pump_model
from itb.pump.memory import DualBankMemory, MemoryCorrupted, decode_bank, encode_bank
from itb.pump.status import BolusKind, Mode, PatientBolusLimits
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


def _safe_stated() -> Firmware:
    _, new, fw = _two_states()
    memory = DualBankMemory()
    memory.write(new)
    memory.write(new)
    for bank in memory.banks:
        bank[30] ^= 0x01
    return Firmware.boot(memory, fw.model, fw.serial, fw.now, fw.world)


def test_a_pump_that_lost_both_banks_never_reports_a_concentration_or_dose_it_does_not_know() -> (
    None
):
    booted = _safe_stated()
    status = booted.status()
    assert status.concentration_ug_per_ml is None
    assert status.program is None and status.daily_dose_ug == 0.0
    # the memory image keeps "unknown": a restart does not turn it into a number
    again = Firmware.from_image(booted.to_image(), booted.world)
    assert again.to_state()["concentration_ug_per_ml"] is None
    assert again.status().concentration_ug_per_ml is None
    assert again.status().program is None


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(lambda fw: fw.set_program(fw.now, continuous(600.0)), id="program"),
        pytest.param(
            lambda fw: fw.start_bolus(fw.now, BolusKind.CLINICIAN, dose_ug=25.0, duration_min=20),
            id="clinician_bolus",
        ),
        pytest.param(
            lambda fw: fw.start_bolus(fw.now, BolusKind.BRIDGE, volume_ml=0.1, duration_min=60),
            id="bridge_bolus",
        ),
        pytest.param(lambda fw: fw.patient_bolus(fw.now), id="patient_bolus"),
        pytest.param(lambda fw: (fw.stop(fw.now), fw.resume(fw.now)), id="stop_then_resume"),
    ],
)
def test_what_needs_the_concentration_is_refused_until_a_refill_sets_it(
    command: Callable[[Firmware], object],
) -> None:
    booted = _safe_stated()
    booted.set_patient_bolus_limits(booted.now, PatientBolusLimits(25.0, 10.0, 60.0, 4))
    with pytest.raises(CommandRejected) as refused:
        command(booted)
    assert refused.value.field == "concentration_ug_per_ml"
    assert "refill" in refused.value.reason
    assert booted.mode in (Mode.SAFE_STATE, Mode.STOPPED)  # never running a guessed schedule
    assert booted.bolus is None
    assert AlarmKind.MEMORY_ERROR in booted.alarms


def test_a_refill_sets_the_concentration_and_then_a_program_is_accepted() -> None:
    booted = _safe_stated()
    model = booted.model
    booted.advance(booted.now + days(1))
    booted.refill(booted.now, 18.0, 500.0)
    status = booted.status()
    assert status.concentration_ug_per_ml == 500.0
    # what the safe state delivers anyway: the model's minimum flow, now known in µg
    assert status.daily_dose_ug == pytest.approx(model.min_flow_ml_per_day * 500.0)
    assert status.mode is Mode.SAFE_STATE  # a refill is not a clinician's program
    booted.set_program(booted.now, continuous(600.0))
    assert booted.mode is Mode.RUNNING and booted.status().daily_dose_ug == 600.0
    # the critical alarm stays until the clinician clears it
    assert booted.alarms[AlarmKind.MEMORY_ERROR].priority is Priority.CRITICAL


def test_the_minimum_flow_is_counted_against_the_24h_maximum_at_the_highest_concentration() -> None:
    booted = _safe_stated()
    booted.advance(booted.now + days(1))
    # 0.048 mL/day could have been 2000 µg/mL: the rolling window assumes the most
    assert booted.rolling_24h_ug(0.0) == pytest.approx(
        booted.model.min_flow_ml_per_day * max(BACLOFEN.concentrations_ug_per_ml), rel=0.01
    )
