"""The implanted pump's firmware: a deterministic state machine driven by time and commands.

Theory of operation
-------------------
Time is the pump's own clock, passed in by the caller; nothing here reads a clock. Between two
events everything is linear in the program's cumulative dose, so ``advance(to)`` computes the
next event (a bolus end, a threshold crossing, a battery milestone, a fault recovery, the drug
front reaching the catheter tip), jumps to it, handles it, and repeats. Schedule steps are not
events: the compiled :class:`~itb.therapy.RateProfile` integrates across them exactly, so a
year of a ten-step flexible program costs a handful of iterations, not 3,650.

The pump pushes drug in quanta (one motor stroke or valve cycle) and carries the fractional
remainder, so the counted volume stays within one quantum of the program. The reservoir
estimate and its alarms move in quanta; the battery and the catheter see the continuous flow.

The modes and every change between them are the tables of :mod:`itb.pump.modes`; this class
changes its mode only in ``change_mode``, which follows that table. Delivery, by precedence:

    a stalled motor or an empty reservoir estimate   -> nothing
    the mode's delivery (modes.DELIVERY):
        nothing (EOS), the minimum rate (stopped, safe state), or
        the schedule: a bridge or priming bolus replaces it, a clinician or patient bolus
        adds to it

The rest lives beside it: bolus planning and the patient-bolus rule (:mod:`itb.pump.bolus`),
the physical world the pump cannot see (:mod:`itb.pump.world`, :mod:`itb.pump.faults`), the
memory image and boot (:mod:`itb.pump.persistence`), the status report
(:mod:`itb.pump.reporting`), and the device and drug rules it refuses with
(:mod:`itb.pump.checks`). Every command validates first and raises :class:`CommandRejected`
before changing anything.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Unpack, overload

from itb.pump import faults, implant, patient_gate, persistence, reporting
from itb.pump.alarms import (
    ALARM_RULES,
    ALARM_TEST_EVENT,
    Alarm,
    AlarmKind,
    ClearedBy,
    alarm_test_tones,
    check_clearable,
)
from itb.pump.battery import (
    EriPredictor,
    eos_after_eri_at_s,
    reached_eri,
    service_life_eri_s,
)
from itb.pump.bolus import (
    Bolus,
    BolusRequest,
    BolusSetting,
    check_patient_bolus_fits,
    check_patient_bolus_limits,
    check_program_beside_bolus,
    plan_bolus,
)
from itb.pump.checks import (
    CommandRejected,
    check_concentration,
    check_fill,
    check_low_reservoir_alarm,
    check_program,
    check_rolling_24h,
)
from itb.pump.clock import clock_correction_s, shifted_profile
from itb.pump.eventlog import EventLog
from itb.pump.faults import FaultKind, FaultParams
from itb.pump.hardware import PumpModel
from itb.pump.implant import ImplantFields, ImplantSettings
from itb.pump.memory import DualBankMemory
from itb.pump.modes import DELIVERY, REFUSALS, Delivery, Trigger, next_mode
from itb.pump.spans import Span, append_merged, forget_before, rolling_max_ug
from itb.pump.status import BolusKind, Mode, PatientBolusLimits, PumpStatus
from itb.pump.world import World
from itb.therapy import Program, RateProfile, RateSegment, from_pump_s, to_pump_s
from itb.units import SECONDS_PER_DAY, SECONDS_PER_MINUTE, UC_PER_MAH, UL_PER_ML

# Re-exported for callers that import them from here (their homes are the modules above).
__all__ = [
    "BolusKind",
    "CommandRejected",
    "FaultKind",
    "Firmware",
    "ImplantSettings",
    "Mode",
    "PatientBolusLimits",
]

# A stroke that lands within this share of a quantum of the boundary counts (float noise).
_QUANTUM_SLACK = 1e-9
_MIN_STEP_S = 1e-6
_CLOCK_RESOLUTION_S = 1e-6
# A bolus whose remainder is below this share of what was asked has ended (float noise).
_BOLUS_END_SLACK = 1e-9


@dataclass
class Firmware:
    model: PumpModel
    serial: str
    t_s: float
    program: Program
    concentration_ug_per_ml: float
    reservoir_ul: float
    low_alarm_ul: float
    world: World
    mode: Mode = Mode.RUNNING
    # Both memory banks lost: the concentration is unknown (reported as None, see persistence).
    concentration_lost: bool = False
    acc_ul: float = 0.0
    battery_used_uc: float = 0.0
    eri_s: float | None = None
    eos_s: float | None = None
    stall_until_s: float | None = None  # math.inf: until reset by the programmer
    bolus: Bolus | None = None
    patient_limits: PatientBolusLimits | None = None
    patient_bolus_times_s: list[float] = field(default_factory=list)
    alarms: dict[AlarmKind, Alarm] = field(default_factory=dict)
    delivered_ul: float = 0.0
    delivered_ug: float = 0.0
    received_ug: float = 0.0
    last_refill_s: float = 0.0
    delivered_since_refill_ul: float = 0.0
    log: EventLog = field(default_factory=EventLog)
    # Delivered spans (µg) of the last 24 h, for the rolling maximum.
    recent: deque[Span] = field(default_factory=deque)
    # When set, every received span (µg/s at the catheter tip) is appended here.
    received_spans: list[Span] | None = None
    # When the pump was implanted: its service life counts from here (None: not known).
    implanted_s: float | None = None
    # The clinician's correction of the clock: the clock (and the schedule's time of day) is
    # t_s + clock_offset_s; t_s stays the running time every duration is measured on (clock.py).
    clock_offset_s: float = 0.0
    _shifted: tuple[RateProfile, float, RateProfile] | None = field(
        default=None, compare=False, repr=False
    )
    _eri: EriPredictor = field(default_factory=EriPredictor, compare=False, repr=False)
    # ``now`` as last built (running seconds, datetime): a command at the pump's own "now"
    # compares datetimes instead of converting back (the cohort's every visit, issue 13)
    _now: tuple[float, datetime] | None = field(default=None, compare=False, repr=False)
    # The last program and concentration ``check_program`` accepted: the check is pure, and a
    # refill of the same drug asks it again of the same two (issue 13)
    _program_ok: tuple[Program, float] | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ construction
    @overload
    @classmethod
    def implant(cls, model: PumpModel, at: datetime, settings: ImplantSettings) -> Firmware: ...

    @overload
    @classmethod
    def implant(
        cls, model: PumpModel, at: datetime, **fields: Unpack[ImplantFields]
    ) -> Firmware: ...

    @classmethod
    def implant(
        cls,
        model: PumpModel,
        at: datetime,
        settings: ImplantSettings | None = None,
        **fields: Any,
    ) -> Firmware:
        """A new pump, filled and programmed: ``settings``, or its fields as keywords."""
        s = settings if settings is not None else ImplantSettings(**fields)
        return implant.build(cls, model, at, s)

    # ------------------------------------------------------------------ time
    @property
    def now(self) -> datetime:
        """The running time (what ``advance`` and the commands take)."""
        cached = self._now
        if cached is None or cached[0] != self.t_s:
            cached = self._now = (self.t_s, from_pump_s(self.t_s))
        return cached[1]

    def on_clock(self, t_s: float) -> datetime:
        """A running time as the pump's clock shows it (the offset set now)."""
        return from_pump_s(t_s + self.clock_offset_s)

    @property
    def clock_now(self) -> datetime:
        """The pump's clock: what it reports, and what the schedule's time of day follows."""
        return self.on_clock(self.t_s)

    @property
    def profile(self) -> RateProfile:
        """The program's profile on the running time: the schedule follows the clock."""
        base, offset = self.program.profile, self.clock_offset_s
        cached = self._shifted
        if cached is None or cached[0] is not base or cached[1] != offset:
            cached = (base, offset, shifted_profile(base, offset))
            self._shifted = cached
        return cached[2]

    def advance(self, to: datetime) -> None:
        cached = self._now
        if cached is not None and cached[0] == self.t_s and to == cached[1]:
            return  # ``now`` itself (within the clock's resolution by construction)
        to_s = to_pump_s(to)
        # a datetime holds microseconds: a time that rounds to the pump's own "now" is now
        if abs(to_s - self.t_s) <= _CLOCK_RESOLUTION_S:
            return
        self.advance_s(to_s)

    def advance_s(self, to_s: float) -> None:
        if self.t_s - _CLOCK_RESOLUTION_S <= to_s <= self.t_s:
            return  # the same instant, within the clock's microsecond resolution
        if to_s < self.t_s:
            raise CommandRejected(
                "at",
                f"{from_pump_s(to_s).isoformat()} is before the pump's clock "
                f"{self.now.isoformat()}; time only moves forward",
            )
        stuck = False
        while self.t_s < to_s:
            rate = self._volume_rate()  # nothing changes it between the search and the step
            next_s = min(self._next_event_s(to_s, rate), to_s)
            if stuck:  # an event due "now" that float rounding cannot reach: nudge time on
                next_s = max(next_s, min(to_s, self.t_s + _MIN_STEP_S))
            before = self.t_s
            self._integrate(next_s, rate)
            self._handle_events()
            stuck = self.t_s <= before

    # ------------------------------------------------------------------ delivery model
    def _volume_rate(self) -> tuple[float, float]:
        """Current pumping rate as (scale on the program profile in µL per µg, extra µL/s)."""
        if self._stalled() or self.reservoir_ul <= 0.0:
            return 0.0, 0.0
        delivery = DELIVERY[self.mode]
        if delivery is Delivery.NOTHING:
            return 0.0, 0.0
        if delivery is Delivery.MINIMUM_RATE:
            return 0.0, self.model.min_flow_ml_per_day * UL_PER_ML / SECONDS_PER_DAY
        ul_per_ug = UL_PER_ML / self.concentration_ug_per_ml
        if self.bolus is None:
            return ul_per_ug, 0.0
        if self.bolus.replaces_basal:
            return 0.0, self.bolus.rate_ul_per_s
        return ul_per_ug, self.bolus.rate_ul_per_s

    def predicted_eri_s(self) -> float:
        """When the pump reaches ERI if delivery goes on as it is now (pump seconds): the
        battery's charge or the service life's notice, whichever first (:mod:`battery`)."""
        if self.eri_s is not None:
            return self.eri_s
        rate = self._volume_rate()
        offset_s = self.clock_offset_s  # the schedule's phase: predicted on the clock
        by_charge_s = (
            self._eri.predict(
                self.model, self.program, self.t_s + offset_s, self.battery_used_uc, rate
            )
            - offset_s
        )
        return min(by_charge_s, service_life_eri_s(self.model, self.implanted_s))

    def eri_not_before_s(self) -> float:
        """A cheap lower bound of :meth:`predicted_eri_s` that holds until the next command
        (:meth:`itb.pump.battery.EriPredictor.not_before_s`)."""
        if self.eri_s is not None:
            return self.eri_s
        return self._eri.not_before_s(
            self.model,
            self.program,
            self.concentration_ug_per_ml,
            self.bolus.rate_ul_per_s if self.bolus is not None else 0.0,
            self.implanted_s,
            self.t_s,
            self.battery_used_uc,
        )

    def predicted_eos_s(self) -> float:
        """When delivery stops for good: entered, or ERI + 90 days or the shut-off if sooner."""
        if self.eos_s is not None:
            return self.eos_s
        return eos_after_eri_at_s(self.model, self.predicted_eri_s(), self.implanted_s)

    def _stalled(self) -> bool:
        return self.stall_until_s is not None and self.t_s < self.stall_until_s

    def _next_event_s(self, horizon_s: float, rate: tuple[float, float]) -> float:
        """The next moment something changes at the pumping ``rate`` (:meth:`_volume_rate`),
        or any time past ``horizon_s`` if nothing does before it (ERI is searched for only
        when it can come before the horizon)."""
        candidates = [math.inf]
        scale, extra = rate
        if scale > 0.0 or extra > 0.0:
            # the world: the real reservoir running dry, the next slug reaching the tip
            volumes_ul = self.world.counted_volumes_to_change_ul()
            reservoir_ul = self.reservoir_ul
            if reservoir_ul > 0.0:
                # the stroke that takes the estimate down to the low-reservoir threshold, or to
                # zero once below it (zero above the threshold comes later: never first)
                threshold_ul = self.low_alarm_ul if reservoir_ul > self.low_alarm_ul else 0.0
                q = self.model.quantum_ul
                strokes = math.ceil((reservoir_ul - threshold_ul) / q - _QUANTUM_SLACK)
                volumes_ul.append(max(strokes * q - self.acc_ul, 0.0))
            if volumes_ul:  # the time grows with the volume: only the least one can come first
                least_ul = min(volumes_ul)
                profile = self.profile
                peak_ul_per_s = scale * profile.max_rate_ug_per_s + extra
                # at the peak rate it comes no sooner than this (a hair earlier, for rounding):
                # the search is only needed when that is before the horizon
                if (
                    peak_ul_per_s > 0.0
                    and self.t_s + least_ul / peak_ul_per_s * (1.0 - 1e-9) < horizon_s
                ):
                    candidates.append(profile.time_to_integral(self.t_s, least_ul, scale, extra))
            if self.bolus is not None:
                candidates.append(self.t_s + self.bolus.remaining_ul / self.bolus.rate_ul_per_s)
        if self.eri_s is None and self.eri_not_before_s() <= horizon_s:
            candidates.append(self.predicted_eri_s())
        if self.eos_s is not None and self.mode is not Mode.EOS:
            candidates.append(self.eos_s)
        if self.stall_until_s is not None and self._stalled():
            candidates.append(self.stall_until_s)
        return max(min(candidates), self.t_s)

    def _integrate(self, to_s: float, rate: tuple[float, float]) -> None:
        """Deliver at ``rate`` (:meth:`_volume_rate`) from now to ``to_s``."""
        dt = to_s - self.t_s
        if dt <= 0.0:
            return
        scale, extra = rate
        profile = self.profile
        volume_ul = (
            scale * profile.integral_ug(self.t_s, to_s) + extra * dt if scale or extra else 0.0
        )
        # battery: quiescent drain plus the motor's share of the volume
        self.battery_used_uc += self.model.quiescent_current_ua * dt
        self.battery_used_uc += self.model.charge_per_quantum_uc / self.model.quantum_ul * volume_ul
        if volume_ul > 0.0:
            self._count_strokes(volume_ul, bolus_ul=extra * dt)
            ug_per_ul = self.concentration_ug_per_ml / UL_PER_ML
            # delivered µg spans (rolling 24 h maximum)
            self._remember(Span(self.t_s, to_s, profile, scale * ug_per_ul, extra * ug_per_ul))
            # the world: actual volume leaves the real reservoir and pushes the catheter column
            out = self.world.pump(volume_ul, self.concentration_ug_per_ml)
            self.received_ug += out.received_ug
            if self.received_spans is not None:
                received_fraction = self.world.received_fraction
                factor = (
                    (out.actual_ul / volume_ul)
                    * out.tip_concentration_ug_per_ml
                    / UL_PER_ML
                    * received_fraction
                )
                self._record_received(Span(self.t_s, to_s, profile, scale * factor, extra * factor))
        elif self.received_spans is not None:
            self._record_received(Span(self.t_s, to_s, profile, 0.0, 0.0))
        self.t_s = to_s

    def _count_strokes(self, volume_ul: float, bolus_ul: float) -> None:
        """The pump counts whole quanta of ``volume_ul`` and carries the remainder."""
        q = self.model.quantum_ul
        self.acc_ul += volume_ul
        strokes = math.floor(self.acc_ul / q + _QUANTUM_SLACK)
        strokes = min(strokes, math.ceil(self.reservoir_ul / q - _QUANTUM_SLACK))
        counted_ul = strokes * q
        self.acc_ul = max(self.acc_ul - counted_ul, 0.0)
        self.reservoir_ul = max(self.reservoir_ul - counted_ul, 0.0)
        if self.reservoir_ul < q * _QUANTUM_SLACK:
            self.reservoir_ul = 0.0
        self.delivered_ul += counted_ul
        self.delivered_since_refill_ul += counted_ul
        self.delivered_ug += counted_ul * self.concentration_ug_per_ml / UL_PER_ML
        if self.bolus is not None:
            self.bolus.remaining_ul = max(self.bolus.remaining_ul - bolus_ul, 0.0)

    def _remember(self, span: Span) -> None:
        # a pump process advances every fraction of a second: merging keeps this to a few spans
        append_merged(self.recent, span)
        forget_before(self.recent, self.t_s)

    def _record_received(self, span: Span) -> None:
        assert self.received_spans is not None
        append_merged(self.received_spans, span)

    # ------------------------------------------------------------------ events
    def _handle_events(self) -> None:
        t = self.t_s
        bolus = self.bolus
        if bolus is not None and bolus.remaining_ul <= _BOLUS_END_SLACK * max(
            bolus.requested_ul, 1.0
        ):
            self.bolus = None
            data = {"kind": bolus.kind.value, "volume_ml": bolus.requested_ul / UL_PER_ML}
            self.log.append(t, "bolus_end", data)
        self.check_reservoir_alarms()
        self._check_battery()
        if (
            self.stall_until_s is not None
            and math.isfinite(self.stall_until_s)
            and t >= self.stall_until_s
        ):
            self.stall_until_s = None
            self.log.append(t, "motor_stall_recovered", {})

    def check_reservoir_alarms(self) -> None:
        """Raise the low and empty reservoir alarms the estimate has reached."""
        if self.reservoir_ul <= self.low_alarm_ul + self.model.quantum_ul * _QUANTUM_SLACK:
            self.raise_alarm(AlarmKind.LOW_RESERVOIR, {"reservoir_ml": self.reservoir_ml})
        if self.reservoir_ul <= 0.0:
            if AlarmKind.EMPTY_RESERVOIR not in self.alarms:
                self.bolus = None
            self.raise_alarm(AlarmKind.EMPTY_RESERVOIR, {})

    def _check_battery(self) -> None:
        """ERI at the battery's charge or the service life's notice; EOS when it is due."""
        if self.eri_s is None:
            if reached_eri(self.model, self.battery_used_uc):
                self.enter_eri("battery")
            elif self.t_s >= service_life_eri_s(self.model, self.implanted_s):
                self.enter_eri("service_life")
        if self.eos_s is not None and self.t_s >= self.eos_s and self.mode is not Mode.EOS:
            self.change_mode(Trigger.EOS_REACHED, "eos")
            self.bolus = None
            self.raise_alarm(AlarmKind.EOS, {})

    def enter_eri(self, cause: str) -> None:
        self.eri_s = self.t_s
        self.eos_s = eos_after_eri_at_s(self.model, self.t_s, self.implanted_s)
        eos_at = from_pump_s(self.eos_s).isoformat()
        self.raise_alarm(AlarmKind.ERI, {"eos_at": eos_at, "cause": cause})

    def change_mode(self, trigger: Trigger, what: str) -> None:
        """The one place the mode changes: as :data:`itb.pump.modes.TRANSITIONS` says."""
        new = next_mode(self.mode, trigger)
        if new is None:
            raise CommandRejected(what, REFUSALS[(self.mode, trigger)])
        self.mode = new

    def _clear_alarms(self, cleared_by: ClearedBy) -> None:
        for kind in [k for k in self.alarms if ALARM_RULES[k].cleared_by is cleared_by]:
            del self.alarms[kind]

    def raise_alarm(self, kind: AlarmKind, data: Mapping[str, object]) -> None:
        """Raise ``kind`` (once: a raised alarm stays until its clearing rule ends it)."""
        if kind in self.alarms:
            return
        rule = ALARM_RULES[kind]
        self.alarms[kind] = Alarm(kind, self.t_s, rule.priority)
        self.log.append(
            self.t_s, "alarm", {"alarm": kind.value, "priority": rule.priority.value, **data}
        )

    # ------------------------------------------------------------------ checks (no changes)
    def _check_program(self, program: Program, concentration_ug_per_ml: float) -> None:
        """:func:`~itb.pump.checks.check_program` for this pump's model, asked once per
        program and concentration (pure: the same two always get the same answer)."""
        accepted = self._program_ok
        if (
            accepted is not None
            and accepted[0] is program
            and accepted[1] == concentration_ug_per_ml
        ):
            return
        check_program(self.model, program, concentration_ug_per_ml)
        self._program_ok = (program, concentration_ug_per_ml)

    def _require_delivering(self, what: str) -> None:
        """The concentration known, then the checks of :data:`patient_gate.DELIVERING`."""
        refusal = patient_gate.delivering_refusal(self, what)
        if refusal is not None:
            raise CommandRejected(refusal.field, refusal.reason)

    def rolling_24h_ug(self, extra_ug: float, future: Program | None = None) -> float:
        """Largest total of any 24 h window containing now: delivered before now, plus
        ``extra_ug``, plus the programmed basal still to come (the Open PCA pump fix)."""
        profile = self.profile
        if future is not None:
            profile = shifted_profile(future.profile, self.clock_offset_s)
        basal_scale = 1.0 if DELIVERY[self.mode] is Delivery.SCHEDULE else 0.0
        pending_ug = 0.0
        if self.bolus is not None and not self.bolus.replaces_basal:
            pending_ug = self.bolus.remaining_ul * self.concentration_ug_per_ml / UL_PER_ML
        best = rolling_max_ug(self.recent, self.t_s, profile, basal_scale)
        return best + extra_ug + pending_ug

    def _check_rolling(self, extra_ug: float, future: Program | None = None) -> None:
        check_rolling_24h(self.rolling_24h_ug(extra_ug, future))

    def bolus_setting(
        self, program: Program | None = None, concentration_ug_per_ml: float | None = None
    ) -> BolusSetting:
        """What a bolus is planned on: now, or with a program or concentration about to be set."""
        if concentration_ug_per_ml is None:
            concentration_ug_per_ml = self.concentration_ug_per_ml
        return BolusSetting(
            model=self.model,
            concentration_ug_per_ml=concentration_ug_per_ml,
            program=self.program if program is None else program,
            t_s=self.t_s,
            dead_space_ul=self.world.dead_space_ul,  # the firmware knows its tubing set-up
            dead_space_content_ug=self.world.dead_space_content_ug(),
        )

    def _check_patient_bolus_fits(self, setting: BolusSetting, what: str) -> None:
        """The enabled patient bolus still possible on a new program or concentration (else the
        remote would offer a bolus the pump can never give)."""
        limits = self.patient_limits
        if limits is None:
            return
        try:
            check_patient_bolus_fits(setting, limits)
        except CommandRejected as err:
            raise CommandRejected(
                what,
                f"the patient's {limits.dose_ug:g} µg bolus over {limits.duration_min:g} min "
                f"could no longer be given ({err.field}: {err.reason}); change or disable "
                "the patient bolus first",
            ) from None

    def plan_bolus(self, request: BolusRequest) -> Bolus:
        """The bolus ``request`` asks for now, within the rolling 24 h maximum (no change)."""
        bolus = plan_bolus(self.bolus_setting(), request)
        if not bolus.replaces_basal:
            self._check_rolling(bolus.dose_ug)
        return bolus

    # ------------------------------------------------------------------ commands
    def set_program(self, at: datetime, program: Program) -> None:
        self.advance(at)
        persistence.require_known_concentration(self, "program")
        self._check_program(program, self.concentration_ug_per_ml)
        self._check_rolling(0.0, program)
        check_program_beside_bolus(self.bolus_setting(program=program), self.bolus)
        self._check_patient_bolus_fits(self.bolus_setting(program=program), "program")
        old = self.program.to_dict()
        self.change_mode(Trigger.PROGRAM, "program")
        self.program = program
        self._clear_alarms(ClearedBy.REPROGRAM)  # the settings a low battery reset lost are back
        self.log.append(
            self.t_s,
            "program",
            {"old": old, "new": program.to_dict(), "daily_dose_ug": program.daily_dose_ug()},
        )

    def set_clock(self, at: datetime, new_time: datetime) -> None:
        """Set the pump's clock to ``new_time`` (the patient's standard time, from the
        programmer): the offset moves, the running time does not (clock.py)."""
        self.advance(at)
        old = self.clock_now
        correction_s = clock_correction_s(self.t_s + self.clock_offset_s, new_time)
        self.clock_offset_s += correction_s
        self.log.append(
            self.t_s,
            "clock",
            {
                "old": old.isoformat(),
                "new": self.clock_now.isoformat(),
                "correction_s": correction_s,
            },
        )

    def set_low_reservoir_alarm(self, at: datetime, volume_ml: float) -> None:
        self.advance(at)
        check_low_reservoir_alarm(self.model, volume_ml)
        old = self.low_alarm_ul / UL_PER_ML
        self.low_alarm_ul = volume_ml * UL_PER_ML
        self.log.append(self.t_s, "low_reservoir_threshold", {"old_ml": old, "new_ml": volume_ml})
        self.check_reservoir_alarms()

    def start_bolus(
        self,
        at: datetime,
        kind: BolusKind,
        *,
        dose_ug: float | None = None,
        volume_ml: float | None = None,
        duration_min: float | None = None,
    ) -> None:
        self.advance(at)
        kind = BolusKind(kind)
        if kind is BolusKind.PATIENT:
            raise CommandRejected("kind", "patient boluses are requested with patient_bolus()")
        self._require_delivering("bolus")
        bolus = self.plan_bolus(BolusRequest(kind, dose_ug, volume_ml, duration_min))
        self._begin(bolus, bolus.requested_ul / bolus.rate_ul_per_s / SECONDS_PER_MINUTE)

    def set_patient_bolus_limits(self, at: datetime, limits: PatientBolusLimits) -> None:
        """The patient remote's settings: each within its guardrail, meaningful together, and a
        bolus the gate could give on the present program and concentration
        (:func:`~itb.pump.bolus.check_patient_bolus_fits`, the gate's own planner)."""
        self.advance(at)
        check_patient_bolus_limits(limits)
        if not self.concentration_lost:  # unknown: the gate refuses every bolus until a refill
            check_patient_bolus_fits(self.bolus_setting(), limits)
        self.patient_limits = limits
        self.log.append(self.t_s, "patient_bolus_limits", asdict(limits))

    def patient_bolus(self, at: datetime) -> None:
        """The patient's bolus, if :mod:`itb.pump.patient_gate` admits it (the status asks the
        same checks for ``next_patient_bolus_at``)."""
        self.advance(at)
        bolus, given_in_window_s = patient_gate.admit(self)
        assert self.patient_limits is not None
        self._begin(bolus, self.patient_limits.duration_min)
        self.patient_bolus_times_s = [*given_in_window_s, self.t_s]

    def _begin(self, bolus: Bolus, duration_min: float) -> None:
        self.bolus = bolus
        data = {
            "kind": bolus.kind.value,
            "dose_ug": bolus.dose_ug,
            "volume_ml": bolus.requested_ul / UL_PER_ML,
            "duration_min": duration_min,
        }
        self.log.append(self.t_s, "bolus_start", data)

    def stop(self, at: datetime) -> None:
        self.advance(at)
        self.change_mode(Trigger.STOP, "stop")
        cancelled = self.bolus
        self.bolus = None
        self.log.append(
            self.t_s, "stop", {"cancelled_bolus": cancelled.kind.value if cancelled else None}
        )

    def resume(self, at: datetime) -> None:
        self.advance(at)
        persistence.require_known_concentration(self, "resume")
        self.change_mode(Trigger.RESUME, "resume")
        self.log.append(self.t_s, "resume", {})

    def refill(self, at: datetime, volume_ml: float, concentration_ug_per_ml: float) -> None:
        """The reservoir after emptying and refilling: ``volume_ml`` at a concentration."""
        self.advance(at)
        check_concentration(concentration_ug_per_ml)
        check_fill(self.model, volume_ml)
        if self.mode is Mode.EOS:
            raise CommandRejected("refill", "the pump has reached end of service; replace it")
        if not self.concentration_lost:  # a lost one's placeholder program is replaced
            self._check_program(self.program, concentration_ug_per_ml)
            if self.patient_limits is not None:  # (the setting's sums only when there is one)
                setting = self.bolus_setting(concentration_ug_per_ml=concentration_ug_per_ml)
                self._check_patient_bolus_fits(setting, "concentration_ug_per_ml")
        old = {
            "reservoir_ml": self.reservoir_ml,
            "concentration_ug_per_ml": persistence.known_concentration(self),
        }
        cancelled = None
        if self.bolus is not None and not self.bolus.replaces_basal:
            # a bolus in µg at the old concentration would now be wrong: it ends here, and the
            # log says what of it was not given (the clinician gives it again if needed)
            cancelled = {
                "kind": self.bolus.kind.value,
                "not_given_ug": self.bolus.remaining_ul * self.concentration_ug_per_ml / UL_PER_ML,
            }
            self.bolus = None
        persistence.recover_concentration(self, concentration_ug_per_ml)
        self.concentration_ug_per_ml = concentration_ug_per_ml
        self.reservoir_ul = volume_ml * UL_PER_ML
        self.world.reservoir_ul = volume_ml * UL_PER_ML
        self.last_refill_s = self.t_s
        self.delivered_since_refill_ul = 0.0
        self._clear_alarms(ClearedBy.REFILL)
        data = {
            "old": old,
            "volume_ml": volume_ml,
            "concentration_ug_per_ml": concentration_ug_per_ml,
            "cancelled_bolus": cancelled,
        }
        self.log.append(self.t_s, "refill", data)
        self.check_reservoir_alarms()

    def clear_alarm(self, at: datetime, kind: AlarmKind) -> None:
        self.advance(at)
        kind = check_clearable(self.alarms, kind)
        del self.alarms[kind]
        data: dict[str, object] = {"alarm": kind.value}
        if kind is AlarmKind.MOTOR_STALL and self.stall_until_s == math.inf:
            self.stall_until_s = None  # the valve-gated pump's valve is reset by the programmer
            data["valve_reset"] = True
        self.log.append(self.t_s, "alarm_cleared", data)

    def test_alarm(self, at: datetime) -> None:
        """Sound each alarm tone once (:func:`itb.pump.alarms.alarm_test_tones`) and log it.
        Any mode, stopped and EOS included (the EOS alarm itself still sounds); no delivery,
        alarm or setting changes."""
        self.advance(at)
        self.log.append(self.t_s, ALARM_TEST_EVENT, {"tones": alarm_test_tones()})

    def inject_fault(
        self,
        at: datetime,
        kind: FaultKind,
        *,
        recovery_h: float | None = None,
        leak_fraction: float = 0.5,
    ) -> None:
        """A fault from a scenario, the simulator or a test (:func:`itb.pump.faults.inject`)."""
        self.advance(at)
        faults.inject(self, FaultKind(kind), FaultParams(recovery_h, leak_fraction))

    def telemetry_session(self, at: datetime) -> None:
        self.advance(at)
        self.battery_used_uc += self.model.telemetry_session_charge_uc
        self._handle_events()

    def record(self, at: datetime, kind: str, data: Mapping[str, object]) -> None:
        """Log an event from outside the state machine (a refused telemetry frame, say)."""
        self.advance(at)
        self.log.append(self.t_s, kind, data)

    # ------------------------------------------------------------------ reading
    @property
    def reservoir_ml(self) -> float:
        return self.reservoir_ul / UL_PER_ML

    @property
    def low_reservoir_alarm_ml(self) -> float:
        return self.low_alarm_ul / UL_PER_ML

    def battery_remaining_mah(self) -> float:
        return self.model.battery_capacity_mah - self.battery_used_uc / UC_PER_MAH

    def status(self) -> PumpStatus:
        return reporting.firmware_status(self)

    def received_segments(self) -> list[RateSegment]:
        """What reached the spinal fluid, as µg/h rate segments (needs ``record_received``)."""
        if self.received_spans is None:
            raise ValueError("this pump was built without record_received=True")
        return [seg for span in self.received_spans for seg in span.segments()]

    # ------------------------------------------------------------------ memory image
    def to_state(self) -> dict[str, Any]:
        """What the pump keeps in non-volatile memory (see :mod:`itb.pump.persistence`)."""
        return persistence.to_state(self)

    def to_image(self) -> bytes:
        return persistence.to_image(self)

    @classmethod
    def from_image(cls, image: bytes, world: World) -> Firmware:
        """Rebuild the pump from its memory image. Raises ValueError on a malformed image."""
        return persistence.from_image(cls, image, world)

    @classmethod
    def boot(
        cls, memory: DualBankMemory, model: PumpModel, serial: str, at: datetime, world: World
    ) -> Firmware:
        """Start from non-volatile memory after a reset (see :func:`persistence.boot`)."""
        return persistence.boot(cls, memory, model, serial, at, world)

    @classmethod
    def safe_state(cls, model: PumpModel, serial: str, at: datetime, world: World) -> Firmware:
        """The pump with no trusted settings (see :func:`persistence.safe_state`)."""
        return persistence.safe_state(cls, model, serial, at, world)
