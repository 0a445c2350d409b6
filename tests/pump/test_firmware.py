"""The firmware against closed forms worked out by hand, and its refusals."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from itb.pump.alarms import AlarmKind
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.status import BolusKind, PatientBolusLimits
from itb.therapy import FlexStep, continuous, flex

from .helpers import START, alarm_times, days, hours, new_pump

QUANTUM_UL = 0.25  # peristaltic stroke


def test_low_and_empty_times_match_the_closed_form_for_a_continuous_program() -> None:
    # 600 µg/day at 500 µg/mL = 1.2 mL/day; (20 - 2) / 1.2 = 15 days; 20 / 1.2 = 16.667 days
    fw = new_pump(continuous(600.0))
    fw.advance(START + days(30))
    alarms = alarm_times(fw)
    quantum_s = QUANTUM_UL / 1000 / 1.2 * 86400  # 18 s of flow per stroke
    assert abs((alarms["low_reservoir"] - (START + days(15))).total_seconds()) <= quantum_s
    assert abs((alarms["empty_reservoir"] - (START + days(20 / 1.2))).total_seconds()) <= quantum_s
    # delivery stopped at empty: exactly the 20 mL that was filled, never more
    assert fw.status().delivered_ml == pytest.approx(20.0)
    assert fw.status().reservoir_ml == 0.0


def test_low_reservoir_time_for_a_flex_program_matches_a_day_by_day_hand_count() -> None:
    # 00:00-07:30 at 20 µg/h, 07:30-24:00 at 30 µg/h: 150 + 495 = 645 µg/day = 1.29 mL/day
    # at 500 µg/mL. From Monday 08:00, the low alarm needs (20 - 2) mL = 9000 µg.
    fw = new_pump(flex([FlexStep(0, 20.0), FlexStep(450, 30.0)]))
    fw.advance(START + days(20))
    # 08:00 to midnight on day one: 16 h at 30 = 480 µg; then whole days of 645 µg
    remaining = 9000.0 - 480.0  # 8520 µg
    whole_days = 13  # 13 * 645 = 8385; 135 µg left into day 15 (from midnight at 20 µg/h)
    left = remaining - whole_days * 645.0
    expected = START.replace(hour=0) + days(1 + whole_days) + hours(left / 20.0)
    assert left == pytest.approx(135.0)
    quantum_s = QUANTUM_UL / 1000 * 500 / 20.0 * 3600  # a stroke at 20 µg/h: 22.5 s
    assert abs((alarm_times(fw)["low_reservoir"] - expected).total_seconds()) <= quantum_s


@pytest.mark.parametrize("flow_ml_per_day", [0.1, 0.5, 1.0])
def test_eri_falls_six_to_seven_years_after_implant_and_eos_90_days_later(
    flow_ml_per_day: float,
) -> None:
    # concentration 2000 µg/mL so that a 40 mL reservoir lasts; refilled every 30 days
    fw = new_pump(
        continuous(flow_ml_per_day * 2000.0),
        model="peristaltic-40",
        concentration_ug_per_ml=2000.0,
        volume_ml=40.0,
    )
    t = START
    while t < START + days(8 * 365):
        t += days(30)
        fw.advance(t)
        if fw.mode.value != "eos":
            fw.refill(t, 40.0, 2000.0)
    alarms = alarm_times(fw)
    years_to_eri = (alarms["eri"] - START).total_seconds() / (365.25 * 86400)
    assert 6.0 <= years_to_eri <= 7.0
    assert alarms["eos"] - alarms["eri"] == timedelta(days=90)
    delivered_at_eos = fw.status().delivered_ml
    fw.advance(fw.now + days(30))
    assert fw.status().delivered_ml == delivered_at_eos  # delivery has stopped


def test_higher_flow_brings_eri_earlier() -> None:
    model = pump_model("peristaltic-20")
    assert model.years_to_eri(1.0) < model.years_to_eri(0.1)


def test_clinician_bolus_adds_exactly_its_dose() -> None:
    plain = new_pump()
    dosed = new_pump()
    dosed.start_bolus(START + hours(1), BolusKind.CLINICIAN, dose_ug=50.0, duration_min=30.0)
    assert dosed.status().bolus is not None
    plain.advance(START + days(2))
    dosed.advance(START + days(2))
    extra_ug = dosed.status().delivered_ug - plain.status().delivered_ug
    assert abs(extra_ug - 50.0) <= QUANTUM_UL / 1000 * 500  # within one stroke (0.125 µg)
    kinds = [e.kind for e in dosed.log.entries()]
    assert kinds.count("bolus_start") == 1 and kinds.count("bolus_end") == 1


def test_rolling_24h_maximum_counts_the_basal_still_to_come() -> None:
    # 1950 µg/day basal at 2000 µg/mL: delivered in the last 24 h is only 8 h worth
    # (650 µg) but the next 16 h of basal (1300 µg) are already programmed. A 100 µg bolus
    # would make 2050 µg in the window ending 16 h from now: over the 2000 µg maximum.
    fw = new_pump(continuous(1950.0), concentration_ug_per_ml=2000.0)
    fw.advance(START + hours(8))
    before = fw.to_image()
    with pytest.raises(CommandRejected, match="rolling_24h_dose_ug"):
        fw.start_bolus(fw.now, BolusKind.CLINICIAN, dose_ug=100.0, duration_min=30.0)
    assert fw.to_image() == before  # a refused command changes nothing
    fw.start_bolus(fw.now, BolusKind.CLINICIAN, dose_ug=40.0, duration_min=30.0)  # 1990 µg: fine


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (lambda fw: fw.refill(fw.now, 25.0, 500.0), "volume_ml"),  # overfill of a 20 mL pump
        (lambda fw: fw.refill(fw.now, -1.0, 500.0), "volume_ml"),
        (lambda fw: fw.refill(fw.now, 10.0, 750.0), "concentration_ug_per_ml"),  # not marketed
        (lambda fw: fw.set_program(fw.now, continuous(6000.0)), "daily_dose_ug"),  # 10x typo of 600
        (
            lambda fw: fw.start_bolus(
                fw.now, BolusKind.CLINICIAN, dose_ug=500.0, duration_min=10.0
            ),
            "dose_ug",
        ),
        (lambda fw: fw.set_low_reservoir_alarm(fw.now, 0.1), "low_reservoir_alarm_ml"),
        (lambda fw: fw.clear_alarm(fw.now, AlarmKind.ERI), "kind"),
        (lambda fw: fw.resume(fw.now), "resume"),
        (lambda fw: fw.advance(START - hours(1)), "at"),
    ],
)
def test_refused_commands_name_the_field_and_change_nothing(command, field) -> None:  # type: ignore[no-untyped-def]
    fw = new_pump()
    fw.advance(START + hours(1))
    before = fw.to_image()
    with pytest.raises(CommandRejected) as caught:
        command(fw)
    assert caught.value.field == field
    assert fw.to_image() == before


def test_program_beyond_the_models_flow_range_is_refused() -> None:
    fw = new_pump(concentration_ug_per_ml=50.0)
    # 1500 µg/day at 50 µg/mL is 30 mL/day: above the 24 mL/day maximum
    with pytest.raises(CommandRejected, match="24 mL/day"):
        fw.set_program(START, continuous(1500.0))


def test_stop_runs_at_minimum_rate_and_resume_restores_the_program() -> None:
    fw = new_pump()
    fw.stop(START)
    fw.advance(START + days(10))
    # minimum rate 0.048 mL/day for 10 days = 0.48 mL
    assert fw.status().delivered_ml == pytest.approx(0.48, abs=QUANTUM_UL / 1000)
    fw.resume(fw.now)
    fw.advance(fw.now + days(1))
    assert fw.status().delivered_ml == pytest.approx(0.48 + 1.2, abs=QUANTUM_UL / 1000)


def test_refill_clears_reservoir_alarms_and_sets_the_new_concentration() -> None:
    fw = new_pump()
    fw.advance(START + days(17))
    assert {a.kind for a in fw.status().alarms} == {
        AlarmKind.LOW_RESERVOIR,
        AlarmKind.EMPTY_RESERVOIR,
    }
    fw.refill(fw.now, 20.0, 1000.0)
    status = fw.status()
    assert status.alarms == ()
    assert status.concentration_ug_per_ml == 1000.0
    assert status.reservoir_ml == 20.0
    fw.advance(fw.now + days(1))
    # the same 600 µg/day is now 0.6 mL/day
    assert fw.status().reservoir_ml == pytest.approx(19.4, abs=QUANTUM_UL / 1000)


def test_bridge_bolus_keeps_the_patients_dose_through_a_concentration_change() -> None:
    def received_first_day(bridge: bool) -> float:
        fw = new_pump(record_received=True)
        fw.advance(START + days(5))
        fw.refill(fw.now, 20.0, 1000.0)
        if bridge:
            fw.start_bolus(fw.now, BolusKind.BRIDGE)
        before = fw.status().received_ug
        fw.advance(fw.now + days(1))
        return fw.status().received_ug - before

    # Without a bridge the old 500 µg/mL drug in the 0.486 mL of tubing and catheter leaves at
    # the new, halved volume rate: the patient gets about 300 µg that day, not 600.
    assert received_first_day(False) == pytest.approx(
        600.0 * 0.5 + 600.0 * 0.5 * (1 - 0.486 / 0.6), rel=0.02
    )
    assert received_first_day(True) == pytest.approx(600.0, rel=0.01)


def test_unprimed_catheter_delivers_nothing_until_primed() -> None:
    fw = new_pump(catheter_primed=False)
    fw.advance(START + hours(6))
    assert fw.status().received_ug == 0.0
    assert fw.status().delivered_ug > 0.0
    fw.start_bolus(fw.now, BolusKind.PRIMING)  # 0.2 + 0.286 mL at the maximum rate
    fw.advance(fw.now + hours(2))
    assert fw.status().received_ug > 0.0


def test_catheter_occlusion_is_invisible_to_the_pump_but_not_to_the_patient() -> None:
    fw = new_pump()
    fw.advance(START + days(1))
    fw.inject_fault(fw.now, FaultKind.CATHETER_OCCLUSION)
    received = fw.status().received_ug
    fw.advance(fw.now + days(2))
    status = fw.status()
    assert status.received_ug == received
    assert status.delivered_ug == pytest.approx(3 * 600.0, abs=0.2)
    assert status.alarms == ()


def test_mri_stalls_the_peristaltic_pump_until_it_recovers() -> None:
    fw = new_pump()
    fw.inject_fault(START + hours(1), FaultKind.MRI, recovery_h=8.0)
    fw.advance(START + days(1))
    # 24 h minus 8 h stalled = 16 h of 25 µg/h
    assert fw.status().delivered_ug == pytest.approx(400.0, abs=0.2)
    assert AlarmKind.MOTOR_STALL in {a.kind for a in fw.status().alarms}  # latched
    fw.clear_alarm(fw.now, AlarmKind.MOTOR_STALL)
    assert fw.status().alarms == ()


def test_mri_closes_the_valve_gated_pump_until_the_programmer_resets_it() -> None:
    fw = new_pump(model="valve-gated-20")
    fw.inject_fault(START, FaultKind.MRI)
    fw.advance(START + days(3))
    assert fw.status().delivered_ug == 0.0
    fw.clear_alarm(fw.now, AlarmKind.MOTOR_STALL)
    fw.advance(fw.now + days(1))
    assert fw.status().delivered_ug == pytest.approx(600.0, abs=1.0)  # a 2 µL valve cycle is 1 µg


def test_patient_bolus_respects_lockout_and_daily_maximum() -> None:
    fw = new_pump()
    with pytest.raises(CommandRejected, match="not enabled"):
        fw.patient_bolus(START)
    fw.set_patient_bolus_limits(
        START, PatientBolusLimits(20.0, 10.0, lockout_min=120.0, max_per_day=2)
    )
    fw.patient_bolus(START + hours(1))
    with pytest.raises(CommandRejected, match="lockout"):
        fw.patient_bolus(START + hours(2))
    fw.patient_bolus(
        START
        + hours(
            3,
        )
    )
    with pytest.raises(CommandRejected, match="2 boluses already"):
        fw.patient_bolus(START + hours(6))
    fw.patient_bolus(START + hours(26))  # the first has left the 24 h window
    assert (
        sum(e.data.get("kind") == "patient" for e in fw.log.entries() if e.kind == "bolus_start")
        == 3
    )


def test_telemetry_sessions_drain_the_battery() -> None:
    quiet, chatty = new_pump(), new_pump()
    for i in range(100):
        chatty.telemetry_session(START + hours(i))
    quiet.advance(START + hours(100))
    chatty.advance(START + hours(100))
    # 100 sessions of 30 mC = 3 C = 0.8333 mAh
    assert quiet.battery_remaining_mah() - chatty.battery_remaining_mah() == pytest.approx(
        3.0 / 3.6
    )


def test_image_round_trip_restores_the_same_pump() -> None:
    fw = new_pump(flex([FlexStep(0, 20.0), FlexStep(450, 30.0)]))
    fw.start_bolus(START + hours(2), BolusKind.CLINICIAN, dose_ug=30.0, duration_min=60.0)
    fw.advance(START + hours(2.5))
    copy = Firmware.from_image(fw.to_image(), fw.world)
    assert copy.to_image() == fw.to_image()
    fw.advance(START + days(3))
    copy.advance(START + days(3))
    assert copy.status() == fw.status()


def test_a_long_run_costs_events_not_ticks() -> None:
    fw = new_pump(
        flex([FlexStep(i * 90, 20.0 + i) for i in range(10)]),
        model="peristaltic-40",
        concentration_ug_per_ml=2000.0,
        volume_ml=40.0,
    )
    fw.advance(START + days(365))
    # a year of a 10-step schedule: the log holds the implant and the two reservoir alarms only
    assert [e.kind for e in fw.log.entries()] == ["implant", "alarm", "alarm"]
    assert math.isclose(fw.status().delivered_ml, 40.0)


def test_a_pump_advanced_in_small_steps_behaves_as_one_advanced_in_one_jump() -> None:
    # a served pump advances every fraction of a second; that must neither change the answers
    # nor grow the memory kept for the rolling 24 h maximum
    stepped, jumped = new_pump(), new_pump()
    t = START
    for _ in range(2 * 24 * 60):  # two days, a minute at a time
        t += timedelta(minutes=1)
        stepped.advance(t)
    jumped.advance(t)
    assert stepped.status().delivered_ug == pytest.approx(jumped.status().delivered_ug, abs=0.13)
    assert len(stepped.recent) <= 2
    assert stepped.rolling_24h_ug(50.0) == pytest.approx(jumped.rolling_24h_ug(50.0), abs=0.2)
