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

Delivery modes, in order of precedence:
    EOS, stall or empty reservoir estimate -> nothing
    safe state (memory error) or stopped   -> the model's minimum rate
    bridge or priming bolus                -> the bolus rate replaces the basal schedule
    otherwise                              -> the schedule, plus any clinician/patient bolus

Every command validates first and raises :class:`CommandRejected` before changing anything.
"""

from __future__ import annotations

import enum
import json
import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itb import guardrails
from itb.drugs import BACLOFEN, UnknownDrugError
from itb.guardrails import LimitError
from itb.pump.alarms import ALARM_RULES, Alarm, AlarmKind, ClearedBy, Priority
from itb.pump.eventlog import EventLog
from itb.pump.hardware import PumpModel, UnknownModelError, pump_model
from itb.pump.memory import DualBankMemory, MemoryCorrupted
from itb.pump.world import Slug, World
from itb.therapy import (
    Program,
    ProgramError,
    RateProfile,
    RateSegment,
    continuous,
    from_pump_s,
    program_from_dict,
    to_pump_s,
)
from itb.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE, UL_PER_ML

IMAGE_FORMAT = 1
ROLLING_WINDOW_S = 24 * SECONDS_PER_HOUR
# Catheter: 110 cm at 0.0026 mL/cm (S31); the default is an untrimmed one.
DEFAULT_CATHETER_VOLUME_ML = 110 * 0.0026
# A stroke that lands within this share of a quantum of the boundary counts (float noise).
_QUANTUM_SLACK = 1e-9
_MIN_STEP_S = 1e-6
_CLOCK_RESOLUTION_S = 1e-6
# Peristaltic stall after MRI: recovery within 2 to 24 h (S19 S23); default when none is given.
DEFAULT_MRI_RECOVERY_H = 6.0
DEFAULT_STALL_RECOVERY_H = 2.0


class CommandRejected(ValueError):
    """A command the pump refused. It changed nothing; ``field`` and ``reason`` say why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def __reduce__(self) -> tuple[type[CommandRejected], tuple[str, str]]:
        return (CommandRejected, (self.field, self.reason))  # picklable across processes


class BolusKind(str, enum.Enum):
    CLINICIAN = "clinician"
    BRIDGE = "bridge"
    PRIMING = "priming"
    PATIENT = "patient"


class FaultKind(str, enum.Enum):
    MOTOR_STALL = "motor_stall"
    MRI = "mri"
    CATHETER_OCCLUSION = "catheter_occlusion"
    CATHETER_LEAK = "catheter_leak"
    CATHETER_CLEARED = "catheter_cleared"


class Mode(str, enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"  # programmed off: minimum rate keeps the catheter open
    SAFE_STATE = "safe_state"  # settings lost: minimum rate until reprogrammed
    EOS = "eos"  # end of service: delivery has stopped for good


@dataclass(frozen=True, slots=True)
class PatientBolusLimits:
    dose_ug: float
    duration_min: float
    lockout_min: float
    max_per_day: int

    def to_dict(self) -> dict[str, float]:
        return {
            "dose_ug": self.dose_ug,
            "duration_min": self.duration_min,
            "lockout_min": self.lockout_min,
            "max_per_day": self.max_per_day,
        }


@dataclass(slots=True)
class Bolus:
    kind: BolusKind
    replaces_basal: bool
    rate_ul_per_s: float
    remaining_ul: float
    requested_ul: float
    started_s: float
    dose_ug: float

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "replaces_basal": self.replaces_basal,
            "rate_ul_per_s": self.rate_ul_per_s,
            "remaining_ul": self.remaining_ul,
            "requested_ul": self.requested_ul,
            "started_s": self.started_s,
            "dose_ug": self.dose_ug,
        }

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Bolus:
        return cls(
            BolusKind(s["kind"]),
            bool(s["replaces_basal"]),
            float(s["rate_ul_per_s"]),
            float(s["remaining_ul"]),
            float(s["requested_ul"]),
            float(s["started_s"]),
            float(s["dose_ug"]),
        )


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time over which a rate is ``scale * profile(t) + extra`` (µg/s)."""

    start_s: float
    end_s: float
    profile: RateProfile
    scale: float
    extra_ug_per_s: float

    def integral_ug(self, t0_s: float, t1_s: float) -> float:
        a, b = max(t0_s, self.start_s), min(t1_s, self.end_s)
        if b <= a:
            return 0.0
        return self.scale * self.profile.integral_ug(a, b) + self.extra_ug_per_s * (b - a)

    def segments(self) -> Iterator[RateSegment]:
        if self.scale == 0.0:
            yield RateSegment(self.start_s, self.end_s, self.extra_ug_per_s * SECONDS_PER_HOUR)
            return
        for a, b, r in self.profile.segments(self.start_s, self.end_s):
            yield RateSegment(a, b, (self.scale * r + self.extra_ug_per_s) * SECONDS_PER_HOUR)


@dataclass(frozen=True, slots=True)
class PumpStatus:
    serial: str
    model: str
    now: datetime
    mode: str
    program: dict[str, object]
    daily_dose_ug: float
    concentration_ug_per_ml: float
    reservoir_ml: float
    low_reservoir_alarm_ml: float
    battery_remaining_mah: float
    eri_at: datetime | None
    eos_at: datetime | None
    alarms: tuple[dict[str, object], ...]
    delivered_ug: float
    delivered_ml: float
    received_ug: float
    bolus: dict[str, object] | None
    patient_bolus_limits: dict[str, float] | None
    last_refill_at: datetime
    delivered_since_refill_ml: float

    def to_dict(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "model": self.model,
            "now": self.now.isoformat(),
            "mode": self.mode,
            "program": self.program,
            "daily_dose_ug": self.daily_dose_ug,
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            "reservoir_ml": self.reservoir_ml,
            "low_reservoir_alarm_ml": self.low_reservoir_alarm_ml,
            "battery": {
                "remaining_mah": self.battery_remaining_mah,
                "eri_at": self.eri_at.isoformat() if self.eri_at else None,
                "eos_at": self.eos_at.isoformat() if self.eos_at else None,
            },
            "alarms": list(self.alarms),
            "delivered_ug": self.delivered_ug,
            "delivered_ml": self.delivered_ml,
            "received_ug": self.received_ug,
            "bolus": self.bolus,
            "patient_bolus_limits": self.patient_bolus_limits,
            "last_refill_at": self.last_refill_at.isoformat(),
            "delivered_since_refill_ml": self.delivered_since_refill_ml,
        }


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

    # ------------------------------------------------------------------ construction
    @classmethod
    def implant(
        cls,
        model: PumpModel,
        at: datetime,
        *,
        serial: str,
        concentration_ug_per_ml: float,
        volume_ml: float,
        program: Program,
        low_reservoir_alarm_ml: float = 2.0,
        catheter_volume_ml: float = DEFAULT_CATHETER_VOLUME_ML,
        catheter_primed: bool = True,
        flow_error_fraction: float = 0.0,
        record_received: bool = False,
    ) -> Firmware:
        """A new pump, filled and programmed. With ``catheter_primed`` false the tubing and
        catheter hold spinal fluid (no drug) until a priming bolus pushes drug to the tip."""
        t_s = to_pump_s(at)
        _check_concentration(concentration_ug_per_ml)
        _check_fill(model, volume_ml)
        _check_threshold(model, low_reservoir_alarm_ml)
        if not (0.0 <= catheter_volume_ml <= 1.0):
            raise CommandRejected(
                "catheter_volume_ml", f"{catheter_volume_ml:g} mL; allowed 0 to 1 mL"
            )
        if abs(flow_error_fraction) > model.flow_accuracy_fraction:
            raise CommandRejected(
                "flow_error_fraction",
                f"{flow_error_fraction:g}; allowed within the model's accuracy band "
                f"±{model.flow_accuracy_fraction:g}",
            )
        dead_space_ul = (model.internal_tubing_ml + catheter_volume_ml) * UL_PER_ML
        slug = Slug(dead_space_ul, concentration_ug_per_ml if catheter_primed else 0.0)
        world = World(
            reservoir_ul=volume_ml * UL_PER_ML,
            flow_error_fraction=flow_error_fraction,
            catheter=deque([slug]),
        )
        fw = cls(
            model=model,
            serial=serial,
            t_s=t_s,
            program=program,
            concentration_ug_per_ml=concentration_ug_per_ml,
            reservoir_ul=volume_ml * UL_PER_ML,
            low_alarm_ul=low_reservoir_alarm_ml * UL_PER_ML,
            world=world,
            last_refill_s=t_s,
            received_spans=[] if record_received else None,
        )
        fw._check_program(program, concentration_ug_per_ml)
        fw.log.append(
            t_s,
            "implant",
            {
                "model": model.name,
                "serial": serial,
                "volume_ml": volume_ml,
                "concentration_ug_per_ml": concentration_ug_per_ml,
                "program": program.to_dict(),
            },
        )
        fw._check_reservoir_alarms()
        return fw

    # ------------------------------------------------------------------ time
    @property
    def now(self) -> datetime:
        return from_pump_s(self.t_s)

    def advance(self, to: datetime) -> None:
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
            next_s = min(self._next_event_s(), to_s)
            if stuck:  # an event due "now" that float rounding cannot reach: nudge time on
                next_s = max(next_s, min(to_s, self.t_s + _MIN_STEP_S))
            before = self.t_s
            self._integrate(next_s)
            self._handle_events()
            stuck = self.t_s <= before

    # ------------------------------------------------------------------ delivery model
    def _volume_rate(self) -> tuple[float, float]:
        """Current pumping rate as (scale on the program profile in µL per µg, extra µL/s)."""
        if self.mode is Mode.EOS or self._stalled() or self.reservoir_ul <= 0.0:
            return 0.0, 0.0
        min_ul_per_s = self.model.min_flow_ml_per_day * UL_PER_ML / SECONDS_PER_DAY
        if self.mode in (Mode.SAFE_STATE, Mode.STOPPED):
            return 0.0, min_ul_per_s
        ul_per_ug = UL_PER_ML / self.concentration_ug_per_ml
        if self.bolus is not None:
            if self.bolus.replaces_basal:
                return 0.0, self.bolus.rate_ul_per_s
            return ul_per_ug, self.bolus.rate_ul_per_s
        return ul_per_ug, 0.0

    def predicted_eri_s(self) -> float:
        """When the battery reaches ERI if delivery goes on as it is now (pump seconds)."""
        if self.eri_s is not None:
            return self.eri_s
        scale, extra = self._volume_rate()
        remaining_uc = self.model.usable_charge_to_eri_mah * 3.6e6 - self.battery_used_uc
        uc_per_ul = self.model.charge_per_quantum_uc / self.model.quantum_ul
        return self.program.profile.time_to_integral(
            self.t_s,
            remaining_uc,
            uc_per_ul * scale,
            self.model.quiescent_current_ua + uc_per_ul * extra,
        )

    def _stalled(self) -> bool:
        return self.stall_until_s is not None and self.t_s < self.stall_until_s

    def _time_to_volume(self, volume_ul: float) -> float:
        scale, extra = self._volume_rate()
        return self.program.profile.time_to_integral(self.t_s, volume_ul, scale, extra)

    def _next_event_s(self) -> float:
        candidates = [math.inf]
        scale, extra = self._volume_rate()
        pumping = scale > 0.0 or extra > 0.0
        q = self.model.quantum_ul
        if pumping:
            # the stroke that takes the estimate down to the low-reservoir threshold, and to zero
            for threshold in (self.low_alarm_ul, 0.0):
                if self.reservoir_ul > threshold:
                    strokes = math.ceil((self.reservoir_ul - threshold) / q - _QUANTUM_SLACK)
                    candidates.append(self._time_to_volume(max(strokes * q - self.acc_ul, 0.0)))
            if self.bolus is not None:
                candidates.append(self.t_s + self.bolus.remaining_ul / self.bolus.rate_ul_per_s)
            # the world: the real reservoir running dry, the next slug reaching the tip
            actual_factor = 1.0 + self.world.flow_error_fraction
            if self.world.reservoir_ul > 0.0:
                candidates.append(self._time_to_volume(self.world.reservoir_ul / actual_factor))
            if len(self.world.catheter) > 1:
                candidates.append(self._time_to_volume(self.world.tip_slug_ul() / actual_factor))
        if self.eri_s is None:
            candidates.append(self.predicted_eri_s())
        if self.eos_s is not None and self.mode is not Mode.EOS:
            candidates.append(self.eos_s)
        if self.stall_until_s is not None and self.t_s < self.stall_until_s:
            candidates.append(self.stall_until_s)
        return max(min(candidates), self.t_s)

    def _integrate(self, to_s: float) -> None:
        dt = to_s - self.t_s
        if dt <= 0.0:
            return
        scale, extra = self._volume_rate()
        profile = self.program.profile
        volume_ul = (
            scale * profile.integral_ug(self.t_s, to_s) + extra * dt if scale or extra else 0.0
        )
        # battery: quiescent drain plus the motor's share of the volume
        self.battery_used_uc += self.model.quiescent_current_ua * dt
        self.battery_used_uc += self.model.charge_per_quantum_uc / self.model.quantum_ul * volume_ul
        if volume_ul > 0.0:
            q = self.model.quantum_ul
            self.acc_ul += volume_ul
            strokes = math.floor(self.acc_ul / q + _QUANTUM_SLACK)
            strokes = min(strokes, math.ceil(self.reservoir_ul / q - _QUANTUM_SLACK))
            counted_ul = strokes * q
            self.acc_ul = max(self.acc_ul - counted_ul, 0.0)
            self.reservoir_ul = max(self.reservoir_ul - counted_ul, 0.0)
            if self.reservoir_ul < q * _QUANTUM_SLACK:
                self.reservoir_ul = 0.0
            ug_per_ul = self.concentration_ug_per_ml / UL_PER_ML
            self.delivered_ul += counted_ul
            self.delivered_since_refill_ul += counted_ul
            self.delivered_ug += counted_ul * ug_per_ul
            if self.bolus is not None:
                bolus_ul = extra * dt
                self.bolus.remaining_ul = max(self.bolus.remaining_ul - bolus_ul, 0.0)
            # delivered µg spans (rolling 24 h maximum)
            self._remember(Span(self.t_s, to_s, profile, scale * ug_per_ul, extra * ug_per_ul))
            # the world: actual volume leaves the real reservoir and pushes the catheter column
            actual_ul = min(
                volume_ul * (1.0 + self.world.flow_error_fraction), self.world.reservoir_ul
            )
            self.world.reservoir_ul -= actual_ul
            tip_conc = self.world.tip_concentration_ug_per_ml
            received = self.world.push(actual_ul, self.concentration_ug_per_ml)
            self.received_ug += received
            if self.received_spans is not None:
                factor = (
                    (actual_ul / volume_ul) * tip_conc / UL_PER_ML * self.world.received_fraction
                )
                self._record_received(Span(self.t_s, to_s, profile, scale * factor, extra * factor))
        elif self.received_spans is not None:
            self._record_received(Span(self.t_s, to_s, profile, 0.0, 0.0))
        self.t_s = to_s

    def _remember(self, span: Span) -> None:
        # a pump process advances every fraction of a second: merging keeps this to a few spans
        _append_merged(self.recent, span)
        while self.recent and self.recent[0].end_s < self.t_s - ROLLING_WINDOW_S:
            self.recent.popleft()

    def _record_received(self, span: Span) -> None:
        assert self.received_spans is not None
        _append_merged(self.received_spans, span)

    def _handle_events(self) -> None:
        t = self.t_s
        if self.bolus is not None and self.bolus.remaining_ul <= 1e-9 * max(
            self.bolus.requested_ul, 1.0
        ):
            bolus = self.bolus
            self.bolus = None
            self.log.append(
                t,
                "bolus_end",
                {"kind": bolus.kind.value, "volume_ml": bolus.requested_ul / UL_PER_ML},
            )
        self._check_reservoir_alarms()
        if (
            self.eri_s is None
            and self.battery_used_uc >= self.model.usable_charge_to_eri_mah * 3.6e6 * (1 - 1e-12)
        ):
            self._enter_eri()
        if self.eos_s is not None and t >= self.eos_s and self.mode is not Mode.EOS:
            self._enter_eos()
        if (
            self.stall_until_s is not None
            and math.isfinite(self.stall_until_s)
            and t >= self.stall_until_s
        ):
            self.stall_until_s = None
            self.log.append(t, "motor_stall_recovered", {})

    def _check_reservoir_alarms(self) -> None:
        if self.reservoir_ul <= self.low_alarm_ul + self.model.quantum_ul * _QUANTUM_SLACK:
            self._raise(AlarmKind.LOW_RESERVOIR, {"reservoir_ml": self.reservoir_ul / UL_PER_ML})
        if self.reservoir_ul <= 0.0:
            if AlarmKind.EMPTY_RESERVOIR not in self.alarms:
                self.bolus = None
            self._raise(AlarmKind.EMPTY_RESERVOIR, {})

    def _enter_eri(self) -> None:
        self.eri_s = self.t_s
        self.eos_s = self.t_s + self.model.eos_after_eri_days * SECONDS_PER_DAY
        self._raise(AlarmKind.ERI, {"eos_at": from_pump_s(self.eos_s).isoformat()})

    def _enter_eos(self) -> None:
        self.mode = Mode.EOS
        self.bolus = None
        self._raise(AlarmKind.EOS, {})

    def _raise(self, kind: AlarmKind, data: Mapping[str, object]) -> None:
        if kind in self.alarms:
            return
        rule = ALARM_RULES[kind]
        self.alarms[kind] = Alarm(kind, self.t_s, rule.priority)
        self.log.append(
            self.t_s, "alarm", {"alarm": kind.value, "priority": rule.priority.value, **data}
        )

    # ------------------------------------------------------------------ checks (no changes)
    def _check_program(self, program: Program, concentration_ug_per_ml: float) -> None:
        try:
            guardrails.DAILY_DOSE.check(program.daily_dose_ug())
        except LimitError as err:
            raise CommandRejected(err.field, str(err)) from None
        ml_per_day_per_ug_per_s = SECONDS_PER_DAY / concentration_ug_per_ml
        top = program.profile.max_rate_ug_per_s * ml_per_day_per_ug_per_s
        low = program.profile.min_rate_ug_per_s * ml_per_day_per_ug_per_s
        if top > self.model.max_flow_ml_per_day * (1 + 1e-9):
            raise CommandRejected(
                "program",
                f"needs {top:.4g} mL/day at {concentration_ug_per_ml:g} µg/mL; "
                f"{self.model.name} delivers {self.model.min_flow_ml_per_day:g} to "
                f"{self.model.max_flow_ml_per_day:g} mL/day",
            )
        if low < self.model.min_flow_ml_per_day * (1 - 1e-9):
            raise CommandRejected(
                "program",
                f"a rate of {low:.4g} mL/day at {concentration_ug_per_ml:g} µg/mL is below "
                f"the {self.model.name} minimum of {self.model.min_flow_ml_per_day:g} mL/day "
                f"(allowed {self.model.min_flow_ml_per_day:g} to "
                f"{self.model.max_flow_ml_per_day:g})",
            )

    def _require_delivering(self, what: str) -> None:
        if self.mode is Mode.EOS:
            raise CommandRejected(what, "the pump has reached end of service")
        if self.mode is not Mode.RUNNING:
            raise CommandRejected(what, f"the pump is {self.mode.value}; resume or reprogram first")
        if self.reservoir_ul <= 0.0:
            raise CommandRejected(what, "the reservoir is empty; refill first")
        if self._stalled():
            raise CommandRejected(what, "the pump motor is stalled")
        if self.bolus is not None:
            raise CommandRejected(what, f"a {self.bolus.kind.value} bolus is in progress")

    def rolling_24h_ug(self, extra_ug: float, future: Program | None = None) -> float:
        """Largest total of any 24 h window containing now: delivered before now, plus
        ``extra_ug``, plus the programmed basal still to come (the Open PCA pump fix)."""
        now = self.t_s
        profile = (future or self.program).profile
        scale = 1.0 if self.mode is Mode.RUNNING else 0.0
        cuts = {0.0, ROLLING_WINDOW_S}
        for span in self.recent:
            for edge in (span.start_s, span.end_s):
                if now - ROLLING_WINDOW_S < edge < now:
                    cuts.add(edge - (now - ROLLING_WINDOW_S))
        for a, _, _ in profile.segments(now - ROLLING_WINDOW_S, now + ROLLING_WINDOW_S):
            for edge in (a - now, a - (now - ROLLING_WINDOW_S)):
                if 0.0 < edge < ROLLING_WINDOW_S:
                    cuts.add(edge)
        pending_ug = 0.0
        if self.bolus is not None and not self.bolus.replaces_basal:
            pending_ug = self.bolus.remaining_ul * self.concentration_ug_per_ml / UL_PER_ML
        best = 0.0
        for shift in cuts:
            past = sum(s.integral_ug(now - ROLLING_WINDOW_S + shift, now) for s in self.recent)
            to_come = scale * profile.integral_ug(now, now + shift)
            best = max(best, past + to_come)
        return best + extra_ug + pending_ug

    def _check_rolling(self, extra_ug: float, future: Program | None = None) -> None:
        total = self.rolling_24h_ug(extra_ug, future)
        limit = guardrails.ROLLING_24H_DOSE
        if total > limit.absolute_max:
            raise CommandRejected(
                "rolling_24h_dose_ug",
                f"{total:.1f} µg in a 24 h window (delivered, this dose and the programmed basal "
                f"to come) would exceed the maximum of {limit.absolute_max:g} µg",
            )

    # ------------------------------------------------------------------ commands
    def set_program(self, at: datetime, program: Program) -> None:
        self.advance(at)
        self._check_program(program, self.concentration_ug_per_ml)
        self._check_rolling(0.0, program)
        old = self.program.to_dict()
        self.program = program
        if self.mode is Mode.SAFE_STATE:
            self.mode = Mode.RUNNING
        self.log.append(
            self.t_s,
            "program",
            {"old": old, "new": program.to_dict(), "daily_dose_ug": program.daily_dose_ug()},
        )

    def set_low_reservoir_alarm(self, at: datetime, volume_ml: float) -> None:
        self.advance(at)
        _check_threshold(self.model, volume_ml)
        old = self.low_alarm_ul / UL_PER_ML
        self.low_alarm_ul = volume_ml * UL_PER_ML
        self.log.append(self.t_s, "low_reservoir_threshold", {"old_ml": old, "new_ml": volume_ml})
        self._check_reservoir_alarms()

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
        bolus = self._plan_bolus(kind, dose_ug, volume_ml, duration_min)
        self.bolus = bolus
        self.log.append(
            self.t_s,
            "bolus_start",
            {
                "kind": kind.value,
                "dose_ug": bolus.dose_ug,
                "volume_ml": bolus.requested_ul / UL_PER_ML,
                "duration_min": bolus.requested_ul / bolus.rate_ul_per_s / SECONDS_PER_MINUTE,
            },
        )

    def _plan_bolus(
        self,
        kind: BolusKind,
        dose_ug: float | None,
        volume_ml: float | None,
        duration_min: float | None,
    ) -> Bolus:
        conc = self.concentration_ug_per_ml
        max_ul_per_s = self.model.max_flow_ml_per_day * UL_PER_ML / SECONDS_PER_DAY
        dead_space_ul = self.world.dead_space_ul  # the firmware knows its tubing + catheter set-up
        if kind in (BolusKind.CLINICIAN, BolusKind.PATIENT):
            if dose_ug is None or volume_ml is not None:
                raise CommandRejected("dose_ug", f"a {kind.value} bolus is given as dose_ug")
            limit = (
                guardrails.PATIENT_BOLUS_DOSE
                if kind is BolusKind.PATIENT
                else guardrails.BOLUS_DOSE
            )
            _guard(limit, dose_ug, "dose_ug")
            if dose_ug <= 0.0:
                raise CommandRejected("dose_ug", f"{dose_ug:g} µg; must be more than 0")
            _guard(
                guardrails.BOLUS_DURATION,
                1.0 if duration_min is None else duration_min,
                "duration_min",
            )
            duration_s = (duration_min or 1.0) * SECONDS_PER_MINUTE
            requested_ul = dose_ug / conc * UL_PER_ML
            rate = requested_ul / duration_s
            basal_max = self.program.profile.max_rate_ug_per_s / conc * UL_PER_ML
            if rate + basal_max > max_ul_per_s:
                shortest_min = requested_ul / (max_ul_per_s - basal_max) / SECONDS_PER_MINUTE
                raise CommandRejected(
                    "duration_min",
                    f"{duration_s / 60:g} min is too short for {dose_ug:g} µg at "
                    f"{conc:g} µg/mL on top of the basal rate; at least {shortest_min:.1f} min",
                )
            self._check_rolling(dose_ug)
            return Bolus(kind, False, rate, requested_ul, requested_ul, self.t_s, dose_ug)
        if dose_ug is not None:
            raise CommandRejected("dose_ug", f"a {kind.value} bolus is given as volume_ml")
        requested_ul = dead_space_ul if volume_ml is None else volume_ml * UL_PER_ML
        if not (0.0 < requested_ul <= 1.0 * UL_PER_ML):
            raise CommandRejected(
                "volume_ml", f"{requested_ul / UL_PER_ML:g} mL; allowed above 0 up to 1 mL"
            )
        if kind is BolusKind.PRIMING:
            rate = (
                max_ul_per_s
                if duration_min is None
                else requested_ul / (duration_min * SECONDS_PER_MINUTE)
            )
        else:  # bridge: keep the patient's µg/h while the old drug in the tubing is pushed out
            basal_ug_per_s = self.program.mean_daily_dose_ug() / SECONDS_PER_DAY
            if duration_min is not None:
                rate = requested_ul / (duration_min * SECONDS_PER_MINUTE)
            elif basal_ug_per_s <= 0.0:
                raise CommandRejected("duration_min", "needed when the program delivers nothing")
            else:
                content_ug = (
                    self.world.dead_space_content_ug() * requested_ul / max(dead_space_ul, 1e-12)
                )
                rate = requested_ul / max(content_ug / basal_ug_per_s, 1.0)
        if not (0.0 < rate <= max_ul_per_s * (1 + 1e-9)):
            raise CommandRejected(
                "duration_min",
                f"this needs {rate * SECONDS_PER_DAY / UL_PER_ML:.3g} mL/day; "
                f"{self.model.name} delivers at most {self.model.max_flow_ml_per_day:g} mL/day",
            )
        # what reaches the patient is the column ahead of the new drug, not the new drug
        content_ug = self.world.dead_space_content_ug() * min(
            requested_ul / max(dead_space_ul, 1e-12), 1.0
        )
        return Bolus(kind, True, rate, requested_ul, requested_ul, self.t_s, content_ug)

    def set_patient_bolus_limits(self, at: datetime, limits: PatientBolusLimits) -> None:
        self.advance(at)
        _guard(guardrails.PATIENT_BOLUS_DOSE, limits.dose_ug, "dose_ug")
        _guard(guardrails.BOLUS_DURATION, limits.duration_min, "duration_min")
        _guard(guardrails.PATIENT_BOLUS_LOCKOUT, limits.lockout_min, "lockout_min")
        _guard(guardrails.PATIENT_BOLUS_PER_DAY, float(limits.max_per_day), "max_per_day")
        self.patient_limits = limits
        self.log.append(self.t_s, "patient_bolus_limits", limits.to_dict())

    def patient_bolus(self, at: datetime) -> None:
        self.advance(at)
        limits = self.patient_limits
        if limits is None or limits.max_per_day == 0:
            raise CommandRejected("patient_bolus", "the clinician has not enabled patient boluses")
        self._require_delivering("patient_bolus")
        recent = [t for t in self.patient_bolus_times_s if t > self.t_s - ROLLING_WINDOW_S]
        if recent and self.t_s - recent[-1] < limits.lockout_min * SECONDS_PER_MINUTE:
            wait_min = (
                recent[-1] + limits.lockout_min * SECONDS_PER_MINUTE - self.t_s
            ) / SECONDS_PER_MINUTE
            raise CommandRejected(
                "patient_bolus", f"lockout: next bolus allowed in {wait_min:.0f} min"
            )
        if len(recent) >= limits.max_per_day:
            raise CommandRejected(
                "patient_bolus", f"{limits.max_per_day} boluses already in the last 24 h"
            )
        bolus = self._plan_bolus(BolusKind.PATIENT, limits.dose_ug, None, limits.duration_min)
        self.bolus = bolus
        self.patient_bolus_times_s = [*recent, self.t_s]
        self.log.append(
            self.t_s,
            "bolus_start",
            {
                "kind": "patient",
                "dose_ug": bolus.dose_ug,
                "volume_ml": bolus.requested_ul / UL_PER_ML,
                "duration_min": limits.duration_min,
            },
        )

    def stop(self, at: datetime) -> None:
        self.advance(at)
        if self.mode is Mode.EOS:
            raise CommandRejected("stop", "the pump has reached end of service")
        if self.mode is Mode.STOPPED:
            raise CommandRejected("stop", "the pump is already stopped")
        self.mode = Mode.STOPPED
        cancelled = self.bolus
        self.bolus = None
        self.log.append(
            self.t_s, "stop", {"cancelled_bolus": cancelled.kind.value if cancelled else None}
        )

    def resume(self, at: datetime) -> None:
        self.advance(at)
        if self.mode is not Mode.STOPPED:
            raise CommandRejected("resume", f"the pump is {self.mode.value}, not stopped")
        self.mode = Mode.RUNNING
        self.log.append(self.t_s, "resume", {})

    def refill(self, at: datetime, volume_ml: float, concentration_ug_per_ml: float) -> None:
        """The reservoir after emptying and refilling: ``volume_ml`` at a concentration."""
        self.advance(at)
        _check_concentration(concentration_ug_per_ml)
        _check_fill(self.model, volume_ml)
        if self.mode is Mode.EOS:
            raise CommandRejected("refill", "the pump has reached end of service; replace it")
        self._check_program(self.program, concentration_ug_per_ml)
        old = {
            "reservoir_ml": self.reservoir_ul / UL_PER_ML,
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
        }
        if self.bolus is not None and not self.bolus.replaces_basal:
            self.bolus = None  # a bolus in µg at the old concentration would now be wrong
        self.concentration_ug_per_ml = concentration_ug_per_ml
        self.reservoir_ul = volume_ml * UL_PER_ML
        self.world.reservoir_ul = volume_ml * UL_PER_ML
        self.last_refill_s = self.t_s
        self.delivered_since_refill_ul = 0.0
        for kind in [k for k in self.alarms if ALARM_RULES[k].cleared_by is ClearedBy.REFILL]:
            del self.alarms[kind]
        self.log.append(
            self.t_s,
            "refill",
            {
                "old": old,
                "volume_ml": volume_ml,
                "concentration_ug_per_ml": concentration_ug_per_ml,
            },
        )
        self._check_reservoir_alarms()

    def clear_alarm(self, at: datetime, kind: AlarmKind) -> None:
        self.advance(at)
        try:
            kind = AlarmKind(kind)
        except ValueError:
            raise CommandRejected("kind", f"{kind!r} is not an alarm kind") from None
        rule = ALARM_RULES[kind]
        if kind not in self.alarms:
            raise CommandRejected("kind", f"no {kind.value} alarm is raised")
        if rule.cleared_by is not ClearedBy.PROGRAMMER:
            raise CommandRejected(
                "kind", f"{kind.value} is cleared by {rule.cleared_by.value}, not by the programmer"
            )
        del self.alarms[kind]
        data: dict[str, object] = {"alarm": kind.value}
        if kind is AlarmKind.MOTOR_STALL and self.stall_until_s == math.inf:
            self.stall_until_s = None  # the valve-gated pump's valve is reset by the programmer
            data["valve_reset"] = True
        self.log.append(self.t_s, "alarm_cleared", data)

    def inject_fault(
        self,
        at: datetime,
        kind: FaultKind,
        *,
        recovery_h: float | None = None,
        leak_fraction: float = 0.5,
    ) -> None:
        """Faults from a scenario: the firmware sees a stall; a catheter fault it cannot see."""
        self.advance(at)
        kind = FaultKind(kind)
        data: dict[str, object] = {"fault": kind.value}
        if kind in (FaultKind.MOTOR_STALL, FaultKind.MRI):
            if kind is FaultKind.MRI and not self.model.mri_recovers_by_itself:
                until = math.inf  # the flow-activated valve stays shut until reset (S32 S34)
            else:
                default_h = (
                    DEFAULT_MRI_RECOVERY_H if kind is FaultKind.MRI else DEFAULT_STALL_RECOVERY_H
                )
                hours = default_h if recovery_h is None else recovery_h
                if not (0.0 < hours <= 24 * 30):
                    raise CommandRejected("recovery_h", f"{hours:g} h; allowed above 0 up to 720 h")
                until = self.t_s + hours * SECONDS_PER_HOUR
            self.stall_until_s = (
                until if self.stall_until_s is None else max(self.stall_until_s, until)
            )
            self.bolus = None
            data["until"] = None if math.isinf(until) else from_pump_s(until).isoformat()
            self.log.append(self.t_s, "fault", data)
            self._raise(AlarmKind.MOTOR_STALL, {"cause": kind.value})
            return
        if kind is FaultKind.CATHETER_OCCLUSION:
            self.world.received_fraction = 0.0
        elif kind is FaultKind.CATHETER_LEAK:
            if not (0.0 < leak_fraction <= 1.0):
                raise CommandRejected(
                    "leak_fraction", f"{leak_fraction:g}; allowed above 0 up to 1"
                )
            self.world.received_fraction = 1.0 - leak_fraction
        else:
            self.world.received_fraction = 1.0
        # the pump cannot detect these: they are world events, not pump log entries

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

    def battery_remaining_mah(self) -> float:
        return self.model.battery_capacity_mah - self.battery_used_uc / 3.6e6

    def status(self) -> PumpStatus:
        alarms: tuple[dict[str, object], ...] = tuple(
            {
                "kind": a.kind.value,
                "priority": a.priority.value,
                "at": from_pump_s(a.raised_s).isoformat(),
                "active": True,
            }
            for a in sorted(self.alarms.values(), key=lambda a: a.raised_s)
        )
        bolus: dict[str, object] | None = None
        if self.bolus is not None:
            bolus = {
                "kind": self.bolus.kind.value,
                "dose_ug": self.bolus.dose_ug,
                "remaining_ml": self.bolus.remaining_ul / UL_PER_ML,
            }
        return PumpStatus(
            serial=self.serial,
            model=self.model.name,
            now=self.now,
            mode=self.mode.value,
            program=self.program.to_dict(),
            daily_dose_ug=self.program.daily_dose_ug(),
            concentration_ug_per_ml=self.concentration_ug_per_ml,
            reservoir_ml=self.reservoir_ml,
            low_reservoir_alarm_ml=self.low_alarm_ul / UL_PER_ML,
            battery_remaining_mah=self.battery_remaining_mah(),
            eri_at=from_pump_s(self.eri_s) if self.eri_s is not None else None,
            eos_at=from_pump_s(self.eos_s) if self.eos_s is not None else None,
            alarms=alarms,
            delivered_ug=self.delivered_ug,
            delivered_ml=self.delivered_ul / UL_PER_ML,
            received_ug=self.received_ug,
            bolus=bolus,
            patient_bolus_limits=self.patient_limits.to_dict() if self.patient_limits else None,
            last_refill_at=from_pump_s(self.last_refill_s),
            delivered_since_refill_ml=self.delivered_since_refill_ul / UL_PER_ML,
        )

    def received_segments(self) -> list[RateSegment]:
        """What reached the spinal fluid, as µg/h rate segments (needs ``record_received``)."""
        if self.received_spans is None:
            raise ValueError("this pump was built without record_received=True")
        return [seg for span in self.received_spans for seg in span.segments()]

    # ------------------------------------------------------------------ memory image
    def to_state(self) -> dict[str, Any]:
        """What the pump keeps in non-volatile memory (the world is not the pump's)."""
        return {
            "format": IMAGE_FORMAT,
            "model": self.model.name,
            "serial": self.serial,
            "t_s": self.t_s,
            "program": self.program.to_dict(),
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            "reservoir_ul": self.reservoir_ul,
            "low_alarm_ul": self.low_alarm_ul,
            "mode": self.mode.value,
            "acc_ul": self.acc_ul,
            "battery_used_uc": self.battery_used_uc,
            "eri_s": self.eri_s,
            "eos_s": self.eos_s,
            "stall_until_s": None
            if self.stall_until_s is None
            else ("inf" if math.isinf(self.stall_until_s) else self.stall_until_s),
            "bolus": self.bolus.to_state() if self.bolus else None,
            "patient_limits": self.patient_limits.to_dict() if self.patient_limits else None,
            "patient_bolus_times_s": self.patient_bolus_times_s,
            "alarms": [a.to_dict() for a in self.alarms.values()],
            "delivered_ul": self.delivered_ul,
            "delivered_ug": self.delivered_ug,
            "received_ug": self.received_ug,
            "last_refill_s": self.last_refill_s,
            "delivered_since_refill_ul": self.delivered_since_refill_ul,
            "recent": [[s.start_s, s.end_s, s.scale, s.extra_ug_per_s] for s in self.recent],
            "log": self.log.to_state(),
        }

    def to_image(self) -> bytes:
        return json.dumps(self.to_state(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_image(cls, image: bytes, world: World) -> Firmware:
        """Rebuild the pump from its memory image. Raises ValueError on a malformed image."""
        try:
            s = json.loads(image)
            if s.get("format") != IMAGE_FORMAT:
                raise ValueError(
                    f"memory image format {s.get('format')!r}; expected {IMAGE_FORMAT}"
                )
            program = program_from_dict(s["program"])
            stall = s["stall_until_s"]
            fw = cls(
                model=pump_model(s["model"]),
                serial=str(s["serial"]),
                t_s=float(s["t_s"]),
                program=program,
                concentration_ug_per_ml=float(s["concentration_ug_per_ml"]),
                reservoir_ul=float(s["reservoir_ul"]),
                low_alarm_ul=float(s["low_alarm_ul"]),
                world=world,
                mode=Mode(s["mode"]),
                acc_ul=float(s["acc_ul"]),
                battery_used_uc=float(s["battery_used_uc"]),
                eri_s=None if s["eri_s"] is None else float(s["eri_s"]),
                eos_s=None if s["eos_s"] is None else float(s["eos_s"]),
                stall_until_s=None
                if stall is None
                else (math.inf if stall == "inf" else float(stall)),
                bolus=Bolus.from_state(s["bolus"]) if s["bolus"] else None,
                patient_limits=PatientBolusLimits(**s["patient_limits"])
                if s["patient_limits"]
                else None,
                patient_bolus_times_s=[float(t) for t in s["patient_bolus_times_s"]],
                alarms={a.kind: a for a in (Alarm.from_dict(d) for d in s["alarms"])},
                delivered_ul=float(s["delivered_ul"]),
                delivered_ug=float(s["delivered_ug"]),
                received_ug=float(s["received_ug"]),
                last_refill_s=float(s["last_refill_s"]),
                delivered_since_refill_ul=float(s["delivered_since_refill_ul"]),
                log=EventLog.from_state(s["log"]),
            )
            fw.recent = deque(Span(a, b, program.profile, sc, ex) for a, b, sc, ex in s["recent"])
            return fw
        except (KeyError, TypeError, ValueError, ProgramError, UnknownModelError) as err:
            raise ValueError(f"memory image is not a valid pump state: {err}") from None

    @classmethod
    def boot(
        cls, memory: DualBankMemory, model: PumpModel, serial: str, at: datetime, world: World
    ) -> Firmware:
        """Start from non-volatile memory after a reset. One bad bank: fall back to the other
        (last known good) with a non-critical memory alarm. Both bad: the safe state."""
        bad = memory.bad_banks()
        try:
            fw = cls.from_image(memory.read(), world)
        except (MemoryCorrupted, ValueError):
            return cls.safe_state(model, serial, at, world)
        if fw.model.name != model.name or fw.serial != serial:
            return cls.safe_state(model, serial, at, world)
        if bad:
            fw.alarms[AlarmKind.MEMORY_ERROR] = Alarm(
                AlarmKind.MEMORY_ERROR, fw.t_s, Priority.NON_CRITICAL
            )
            fw.log.append(
                fw.t_s,
                "alarm",
                {
                    "alarm": "memory_error",
                    "priority": "non_critical",
                    "detail": f"bank {bad[0]} failed its check; using the other",
                },
            )
        return fw

    @classmethod
    def safe_state(cls, model: PumpModel, serial: str, at: datetime, world: World) -> Firmware:
        """What a pump runs when both memory banks are corrupted: no trusted settings, so the
        minimum rate (stopping baclofen is not safe, security.md) and a critical alarm.
        The concentration is unknown; the lowest marketed one keeps dose accounting
        conservative, and the reservoir estimate is the model's full volume so that the
        minimum rate keeps the catheter open until a clinician interrogates and refills."""
        t_s = to_pump_s(at)
        fw = cls(
            model=model,
            serial=serial,
            t_s=t_s,
            program=_minimum_program(model, BACLOFEN.concentrations_ug_per_ml[0]),
            concentration_ug_per_ml=BACLOFEN.concentrations_ug_per_ml[0],
            reservoir_ul=model.reservoir_ml * UL_PER_ML,
            low_alarm_ul=2.0 * UL_PER_ML,
            world=world,
            mode=Mode.SAFE_STATE,
            last_refill_s=t_s,
        )
        fw._raise(AlarmKind.MEMORY_ERROR, {"detail": "both settings banks failed their check"})
        return fw


def _minimum_program(model: PumpModel, concentration_ug_per_ml: float) -> Program:
    return continuous(model.min_flow_ml_per_day * concentration_ug_per_ml)


def _append_merged(spans: deque[Span] | list[Span], span: Span) -> None:
    """Append ``span``, or extend the last one when it continues it at the same rate."""
    if spans:
        last = spans[-1]
        if (
            last.end_s == span.start_s
            and last.profile is span.profile
            and last.scale == span.scale
            and last.extra_ug_per_s == span.extra_ug_per_s
        ):
            spans[-1] = Span(
                last.start_s, span.end_s, span.profile, span.scale, span.extra_ug_per_s
            )
            return
    spans.append(span)


def _guard(limit: guardrails.Guardrail, value: float | None, name: str) -> None:
    if value is None:
        raise CommandRejected(name, "is required")
    try:
        limit.check(value, name)
    except LimitError as err:
        raise CommandRejected(name, str(err)) from None


def _check_concentration(concentration_ug_per_ml: float) -> None:
    try:
        BACLOFEN.check_concentration(concentration_ug_per_ml)
    except UnknownDrugError as err:
        raise CommandRejected("concentration_ug_per_ml", str(err)) from None


def _check_fill(model: PumpModel, volume_ml: float) -> None:
    if not (math.isfinite(volume_ml) and 0.0 < volume_ml <= model.reservoir_ml):
        raise CommandRejected(
            "volume_ml",
            f"{volume_ml:g} mL; allowed above 0 up to the {model.reservoir_ml:g} mL "
            f"reservoir of the {model.name} (never overfill)",
        )


def _check_threshold(model: PumpModel, volume_ml: float) -> None:
    _guard(guardrails.LOW_RESERVOIR_ALARM, volume_ml, "low_reservoir_alarm_ml")
    if volume_ml >= model.reservoir_ml:
        raise CommandRejected(
            "low_reservoir_alarm_ml",
            f"{volume_ml:g} mL; must be below the {model.reservoir_ml:g} mL reservoir",
        )
