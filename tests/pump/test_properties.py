"""Property tests over random programs and random command sequences (Hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from itb.pump.alarms import AlarmKind
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.status import BolusKind, Mode, PatientBolusLimits
from itb.therapy import FlexStep, Program, continuous, flex, to_pump_s
from itb.units import SECONDS_PER_DAY, UL_PER_ML

from .helpers import START, new_pump
from .test_patient_gate import assert_status_matches_the_pump

CONCENTRATIONS = (500.0, 1000.0, 2000.0)


@st.composite
def programs(draw: st.DrawFn) -> Program:
    if draw(st.booleans()):
        return continuous(draw(st.floats(120.0, 1500.0)))
    # 5 µg/h at 2000 µg/mL is 0.06 mL/day: above the 0.048 mL/day minimum of every model
    starts = sorted(draw(st.sets(st.integers(0, 24 * 60 - 1), min_size=1, max_size=13)))
    return flex([FlexStep(s, draw(st.floats(5.0, 60.0))) for s in starts])


@given(program=programs(), hours=st.floats(0.01, 24 * 60.0), conc=st.just(2000.0))
def test_delivered_volume_stays_within_one_quantum_of_the_program(
    program: Program, hours: float, conc: float
) -> None:
    fw = new_pump(program, model="peristaltic-40", concentration_ug_per_ml=conc, volume_ml=40.0)
    end = START + timedelta(hours=hours)
    fw.advance(end)
    asked_ul = program.profile.integral_ug(to_pump_s(START), to_pump_s(end)) / conc * UL_PER_ML
    delivered_ul = fw.delivered_ul
    if fw.reservoir_ul > 0:
        assert asked_ul - fw.model.quantum_ul - 1e-6 <= delivered_ul <= asked_ul + 1e-6
    else:
        assert delivered_ul <= asked_ul + 1e-6


class PumpMachine(RuleBasedStateMachine):
    """Random clinician and patient commands, faults and waits against the invariants."""

    fw: Firmware

    @initialize(model=st.sampled_from(["peristaltic-20", "valve-gated-40"]), program=programs())
    def implant(self, model: str, program: Program) -> None:
        try:
            self.fw = new_pump(program, model=model, concentration_ug_per_ml=2000.0, volume_ml=20.0)
        except CommandRejected:
            self.fw = new_pump(
                continuous(500.0), model=model, concentration_ug_per_ml=2000.0, volume_ml=20.0
            )
        self.asked_ul = 0.0
        self.fw.set_patient_bolus_limits(self.fw.now, PatientBolusLimits(10.0, 5.0, 60.0, 4))

    def _try(self, command, *args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        before = self.fw.to_image()
        try:
            command(*args, **kwargs)
        except CommandRejected as err:
            note(f"refused: {err}")
            # a refusal changes nothing (the clock may have advanced only if `at` was later)
            assert self.fw.to_image() == before
            return False
        return True

    @rule(hours=st.floats(0.0, 24 * 30.0))
    def wait(self, hours: float) -> None:
        fw = self.fw
        t0 = fw.t_s
        t1 = t0 + hours * 3600.0
        if fw.mode is Mode.RUNNING:
            self.asked_ul += (
                fw.program.profile.integral_ug(t0, t1) / fw.concentration_ug_per_ml * UL_PER_ML
            )
        else:
            self.asked_ul += fw.model.min_flow_ml_per_day * UL_PER_ML * (t1 - t0) / SECONDS_PER_DAY
        stopped_for_good = fw.mode is Mode.EOS or AlarmKind.EMPTY_RESERVOIR in fw.alarms
        delivered_before = fw.delivered_ul
        seq_before = fw.log.next_seq
        fw.advance_s(t1)
        if stopped_for_good:
            assert fw.delivered_ul == delivered_before
        for entry in fw.log.entries(since_seq=seq_before - 1):
            if entry.kind == "alarm" and entry.data["alarm"] == "low_reservoir":
                threshold_ml = fw.low_alarm_ul / UL_PER_ML
                reservoir_ml = float(entry.data["reservoir_ml"])  # type: ignore[arg-type]
                assert (
                    threshold_ml - fw.model.quantum_ml - 1e-9 < reservoir_ml <= threshold_ml + 1e-9
                )

    @rule(dose=st.floats(1.0, 150.0), minutes=st.floats(1.0, 180.0))
    def clinician_bolus(self, dose: float, minutes: float) -> None:
        fw = self.fw
        if self._try(
            fw.start_bolus, fw.now, BolusKind.CLINICIAN, dose_ug=dose, duration_min=minutes
        ):
            self.asked_ul += dose / fw.concentration_ug_per_ml * UL_PER_ML

    @rule()
    def bridge_bolus(self) -> None:
        fw = self.fw
        if self._try(fw.start_bolus, fw.now, BolusKind.BRIDGE):
            assert fw.bolus is not None
            self.asked_ul += fw.bolus.requested_ul

    @rule()
    def patient_bolus(self) -> None:
        fw = self.fw
        if self._try(fw.patient_bolus, fw.now):
            self.asked_ul += 10.0 / fw.concentration_ug_per_ml * UL_PER_ML

    @rule()
    def stop(self) -> None:
        self._try(self.fw.stop, self.fw.now)

    @rule()
    def resume(self) -> None:
        self._try(self.fw.resume, self.fw.now)

    @rule(volume=st.floats(0.5, 25.0), conc=st.sampled_from(CONCENTRATIONS))
    def refill(self, volume: float, conc: float) -> None:
        self._try(self.fw.refill, self.fw.now, volume, conc)

    @rule(program=programs())
    def reprogram(self, program: Program) -> None:
        self._try(self.fw.set_program, self.fw.now, program)

    @rule(
        kind=st.sampled_from(
            [
                FaultKind.MOTOR_STALL,
                FaultKind.MRI,
                FaultKind.CATHETER_OCCLUSION,
                FaultKind.CATHETER_CLEARED,
                FaultKind.LOW_BATTERY_RESET,
                FaultKind.PREMATURE_ERI,
                FaultKind.PREMATURE_EOS,
            ]
        ),
        recovery_h=st.floats(0.5, 24.0),
    )
    def fault(self, kind: FaultKind, recovery_h: float) -> None:
        self._try(self.fw.inject_fault, self.fw.now, kind, recovery_h=recovery_h)

    @rule(kind=st.sampled_from(list(AlarmKind)))
    def clear_alarm(self, kind: AlarmKind) -> None:
        self._try(self.fw.clear_alarm, self.fw.now, kind)

    @invariant()
    def delivered_never_exceeds_what_was_asked_by_more_than_a_quantum(self) -> None:
        assert self.fw.delivered_ul <= self.asked_ul + self.fw.model.quantum_ul + 1e-6

    @invariant()
    def reservoir_is_never_negative(self) -> None:
        assert self.fw.reservoir_ul >= 0.0
        assert self.fw.world.reservoir_ul >= -1e-9

    @invariant()
    def log_sequence_has_no_gaps_but_the_counted_roll_off(self) -> None:
        log = self.fw.log
        seqs = [e.seq for e in log.entries()]
        assert seqs == list(range(log.first_seq, log.next_seq))
        assert log.first_seq - 1 == log.lost_count

    @invariant()
    def the_status_says_a_patient_bolus_is_available_exactly_when_the_pump_gives_one(
        self,
    ) -> None:
        assert_status_matches_the_pump(self.fw)

    @invariant()
    def memory_image_round_trips(self) -> None:
        image = self.fw.to_image()
        assert Firmware.from_image(image, self.fw.world).to_image() == image


TestPumpMachine = PumpMachine.TestCase
TestPumpMachine.settings = settings(settings.default, stateful_step_count=30)
