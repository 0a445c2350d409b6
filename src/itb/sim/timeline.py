"""One patient's timeline: pumps (eras), scheduled visits and faults, run as a heap of events.

Theory of operation: a heap of ``(time, sequence, kind, argument)``, all numbers, popped in time
order (the sequence keeps the order of pushes for equal times). At each event the firmware is
advanced to its time (it integrates exactly and raises its own alarms on the way), the event is
handled, and then the clinic looks at the battery: ERI reached books the replacement; otherwise
the firmware's predicted ERI becomes a watch event, so that the clinic notices ERI when it
comes. A new prediction supersedes the watch before it: a superseded watch is dropped when it
is popped, without advancing the firmware (issue 13: they were a third of all events).
"""

from __future__ import annotations

import heapq
import math
from enum import IntEnum

import numpy as np

from itb.programmer.refill import RefillInput, RefillSchedule, plan_refill
from itb.pump.alarms import AlarmKind
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.status import Mode
from itb.sim.config import CohortConfig
from itb.sim.draws import draw_patient
from itb.therapy import Program, from_pump_s, to_pump_s
from itb.units import SECONDS_PER_DAY, SECONDS_PER_YEAR

BATTERY_FAULTS = (FaultKind.LOW_BATTERY_RESET, FaultKind.PREMATURE_ERI, FaultKind.PREMATURE_EOS)


class Event(IntEnum):
    """What happens at an event; the argument says which refill, pump, watch or fault."""

    REFILL = 0  # argument: the refill booking's generation (a replacement supersedes it)
    REPLACEMENT = 1  # argument: the era (pump) to replace
    REPROGRAM = 2  # argument: the era to reprogram after a low-battery reset
    ERI_WATCH = 3  # argument: the watch's number (only the latest one counts)
    OCCLUSION = 4
    REPAIR = 5
    STALL = 6
    BATTERY_FAULT = 7  # argument: the index in BATTERY_FAULTS


class Clinic:
    """The patient's timeline: pumps (eras), scheduled visits, faults."""

    def __init__(self, config: CohortConfig, index: int) -> None:
        self.config = config
        self.rng = np.random.default_rng(np.random.SeedSequence([config.cohort.seed, index]))
        self.draws = draw_patient(config, self.rng)
        self.start_s = to_pump_s(config.cohort.start)
        self.end_s = self.start_s + config.cohort.years * SECONDS_PER_YEAR
        self.eras: list[Firmware] = []
        self.fw: Firmware  # the pump in place: the last era (set by ``implant``)
        self.events: list[tuple[float, int, Event, int]] = []
        self._seq = 0
        self.refill_generation = 0
        self.replacement_pending = False
        self.eri_watch_s = math.nan
        self.watch = 0  # the latest ERI watch's number
        self.refill_times: list[float] = []
        self.visit_times: list[float] = []
        self.missed = 0
        self.catheter_faults = 0
        self.stalls = 0
        self.battery_faults = dict.fromkeys(BATTERY_FAULTS, 0)
        # plan_refill is pure and a refill leaves the same pump full of the same drug: the last
        # plan is kept with what it was worked out from (pump, program, concentration, fill,
        # alarm) and asked again only when one of them changed (issue 13)
        self._plan: tuple[Firmware, Program, float, float, float, RefillSchedule] | None = None

    def push(self, t_s: float, kind: Event, argument: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self.events, (t_s, self._seq, kind, argument))

    def implant(self, t_s: float) -> None:
        d = self.draws
        self.fw = Firmware.implant(
            d.model,
            from_pump_s(t_s),
            serial=f"SIM-{len(self.eras)}",
            concentration_ug_per_ml=d.concentration_ug_per_ml,
            volume_ml=d.model.reservoir_ml,
            program=d.program,
            low_reservoir_alarm_ml=self.config.pumps.low_reservoir_alarm_ml,
            flow_error_fraction=d.flow_error_fraction,
            record_received=True,
        )
        self.eras.append(self.fw)
        self.schedule_refill(t_s)

    def schedule_refill(self, t_s: float) -> None:
        fw, policy = self.fw, self.config.policy
        last = self._plan
        if (
            last is not None
            and last[0] is fw
            and last[1] is fw.program
            and last[2] == fw.concentration_ug_per_ml
            and last[3] == fw.reservoir_ul
            and last[4] == fw.low_alarm_ul
        ):
            plan = last[5]
        else:
            fill = RefillInput(
                fw.model,
                fw.reservoir_ml,
                fw.concentration_ug_per_ml,
                fw.program.mean_daily_dose_ug(),
                low_reservoir_alarm_ml=fw.low_reservoir_alarm_ml,
                safety_margin_days=policy.refill_margin_days,
            )
            plan = plan_refill(fill)
            self._plan = (
                fw,
                fw.program,
                fw.concentration_ug_per_ml,
                fw.reservoir_ul,
                fw.low_alarm_ul,
                plan,
            )
        late_days = (
            float(self.rng.exponential(policy.late_visit_days_mean))
            if policy.late_visit_days_mean
            else 0.0
        )
        self.refill_generation += 1
        self.push(
            t_s + (plan.next_refill_days + late_days) * SECONDS_PER_DAY,
            Event.REFILL,
            self.refill_generation,
        )

    def schedule_faults(self) -> None:
        faults = self.config.faults
        for kind, argument, rate in (
            (Event.OCCLUSION, 0, faults.catheter_occlusion_per_year),
            (Event.STALL, 0, faults.motor_stall_per_year),
            (Event.BATTERY_FAULT, 0, faults.low_battery_reset_per_year),
            (Event.BATTERY_FAULT, 1, faults.premature_eri_per_year),
            (Event.BATTERY_FAULT, 2, faults.premature_eos_per_year),
        ):
            if rate <= 0.0:
                continue
            t = self.start_s
            while True:
                t += float(self.rng.exponential(SECONDS_PER_YEAR / rate))
                if t >= self.end_s:
                    break
                self.push(t, kind, argument)

    def notice_eri(self) -> None:
        """The ERI tone brings the patient in: book the replacement once the pump is at ERI."""
        fw = self.fw
        if fw.eri_s is not None and not self.replacement_pending:
            when = fw.eri_s + self.config.policy.replacement_days_after_eri * SECONDS_PER_DAY
            self.book_replacement(max(when, fw.t_s))

    def check_eri(self) -> None:
        """As :meth:`notice_eri`; before ERI, watch for it at the firmware's predicted time (an
        event at that moment makes the clinic notice)."""
        fw = self.fw
        if self.replacement_pending:
            return
        if fw.eri_s is not None:
            self.notice_eri()
            return
        next_event_s = self.events[0][0] if self.events else math.inf
        not_before_s = fw.eri_not_before_s()
        if not_before_s >= self.end_s:
            return  # not in this run: no watch
        if not_before_s > next_event_s:
            # not before the next event, which looks again: the search is left to it, and a
            # watch set earlier is superseded (as a new prediction would supersede it)
            self.eri_watch_s = math.nan
            self.watch += 1
            return
        predicted = fw.predicted_eri_s()
        if predicted < self.end_s and predicted != self.eri_watch_s:
            self.eri_watch_s = predicted
            self.watch += 1
            self.push(predicted + 1.0, Event.ERI_WATCH, self.watch)

    def run(self) -> None:
        self.implant(self.start_s)
        self.schedule_faults()
        events, end_s = self.events, self.end_s
        while events:
            t, _, kind, argument = heapq.heappop(events)
            if kind is Event.ERI_WATCH and argument != self.watch:
                continue  # superseded by a later prediction: nothing to notice
            if t > end_s:
                break
            self.fw.advance_s(t)
            self.notice_eri()
            self.handle(t, kind, argument)
            self.check_eri()
        self.fw.advance_s(end_s)

    def handle(self, t: float, kind: Event, argument: int) -> None:
        fw = self.fw
        if kind is Event.REFILL:
            self.refill_visit(t, argument)
        elif kind is Event.REPLACEMENT:
            if argument == len(self.eras):  # not a pump replaced already
                self.visit_times.append(t)
                self.replace(t)
        elif kind is Event.REPROGRAM:
            self.reprogram(t, argument)
        elif kind is Event.BATTERY_FAULT:
            self.battery_fault(t, BATTERY_FAULTS[argument])
        elif kind is Event.OCCLUSION:
            self.catheter_faults += 1
            fw.inject_fault(from_pump_s(t), FaultKind.CATHETER_OCCLUSION)
            repair_days = float(self.rng.exponential(self.config.faults.catheter_repair_days_mean))
            self.push(t + repair_days * SECONDS_PER_DAY, Event.REPAIR)
        elif kind is Event.REPAIR:
            self.visit_times.append(t)
            fw.inject_fault(from_pump_s(t), FaultKind.CATHETER_CLEARED)
        elif kind is Event.STALL:
            self.stalls += 1
            f = self.config.faults
            hours = float(
                self.rng.uniform(
                    f.stall_recovery_h_min, max(f.stall_recovery_h_min, f.stall_recovery_h_max)
                )
            )
            fw.inject_fault(from_pump_s(t), FaultKind.MOTOR_STALL, recovery_h=hours)

    def refill_visit(self, t: float, generation: int) -> None:
        fw, policy = self.fw, self.config.policy
        if generation != self.refill_generation:
            return  # superseded by a replacement
        if self.rng.random() < policy.missed_visit_rate:
            self.missed += 1
            self.push(t + policy.rebook_days * SECONDS_PER_DAY, Event.REFILL, generation)
            return
        self.visit_times.append(t)
        at = fw.now  # the run advanced the pump to ``t``
        fw.telemetry_session(at)
        if fw.mode is Mode.EOS:  # the pump has died: replace it at this visit
            self.replace(t)
            return
        try:
            fw.refill(at, fw.model.reservoir_ml, fw.concentration_ug_per_ml)
        except CommandRejected:
            self.replace(t)
            return
        self.refill_times.append(t)
        if AlarmKind.MOTOR_STALL in fw.alarms:
            fw.clear_alarm(at, AlarmKind.MOTOR_STALL)
        self.schedule_refill(t)

    def book_replacement(self, t_s: float) -> None:
        """Book the current pump's replacement (a later booking for the same pump is dropped)."""
        self.replacement_pending = True
        self.push(t_s, Event.REPLACEMENT, len(self.eras))

    def battery_fault(self, t: float, kind: FaultKind) -> None:
        """The 2011 advisory's failure modes (S5): the alarm brings the patient in; the maker
        advises replacing the pump as soon as possible."""
        try:
            self.fw.inject_fault(from_pump_s(t), kind)
        except CommandRejected:
            return  # the pump is already past it (at ERI, or at EOS)
        self.battery_faults[kind] += 1
        f = self.config.faults
        response_s = float(self.rng.exponential(f.critical_alarm_response_days_mean))
        replace_s = float(self.rng.exponential(f.battery_fault_replacement_days_mean))
        if kind is FaultKind.LOW_BATTERY_RESET:  # reprogram at the visit the alarm brings
            self.push(t + response_s * SECONDS_PER_DAY, Event.REPROGRAM, len(self.eras))
        if kind is FaultKind.PREMATURE_EOS:  # delivery has stopped: replace urgently
            replace_s = response_s
        self.book_replacement(t + replace_s * SECONDS_PER_DAY)

    def reprogram(self, t: float, era: int) -> None:
        fw = self.fw
        if era != len(self.eras) or fw.mode is not Mode.SAFE_STATE:
            return  # replaced already, or the pump has since stopped for good
        self.visit_times.append(t)
        fw.set_program(from_pump_s(t), self.draws.program)

    def replace(self, t: float) -> None:
        old = self.fw
        occluded = old.world.received_fraction
        self.replacement_pending = False
        self.implant(t)
        # the catheter stays (the seed: the pump is replaced, not the catheter)
        self.fw.world.received_fraction = occluded
