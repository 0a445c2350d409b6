"""One virtual patient over the horizon: the real firmware, driven by a clinic and by faults.

Everything random about patient ``index`` comes from its own generator, seeded from
``(cohort seed, index)``, so the results do not depend on how patients are split among workers.
The pharmacology is evaluated only around the stretches where nothing reached the spinal fluid
(empty reservoir, end of service, stall, occluded catheter): elsewhere the patient is on the
program, at or near the maintenance effect, which is above the withdrawal threshold by definition.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from itb.drugs import BACLOFEN
from itb.programmer.refill import RefillInput, plan_refill
from itb.pump.alarms import AlarmKind
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.hardware import PumpModel, pump_model
from itb.pump.spans import Span
from itb.pump.status import Mode
from itb.sim.config import CohortConfig
from itb.therapy import FlexStep, Program, continuous, flex, from_pump_s, to_pump_s
from itb.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_YEAR

ALARM_KINDS = tuple(kind.value for kind in AlarmKind)
BATTERY_FAULTS = (FaultKind.LOW_BATTERY_RESET, FaultKind.PREMATURE_ERI, FaultKind.PREMATURE_EOS)
BATTERY_FAULT_EVENTS = frozenset(kind.value for kind in BATTERY_FAULTS)
_Z90 = 1.2815515655446004  # standard normal quantile of 0.9
# Around a stretch with no delivery, the pharmacology looks this far before and after [R]:
# the effect settles within a day (CSF half-life 0.9 to 5 h, S60).
WINDOW_BEFORE_S = 1.0 * SECONDS_PER_DAY
WINDOW_AFTER_S = 3.0 * SECONDS_PER_DAY


@dataclass
class PatientOutcome:
    index: int
    origin: str
    age_years: float
    model: str
    concentration_ug_per_ml: float
    daily_dose_ug: float
    flex_program: bool
    years: float
    withdrawal_h: float
    no_delivery_h: float
    refills: int
    missed_visits: int
    replacements: int
    catheter_faults: int
    motor_stalls: int
    # the 2011 advisory's battery failure modes (S5), as injected
    low_battery_resets: int
    premature_eris: int
    premature_eoss: int
    delivered_ug: float
    received_ug: float
    refill_interval_mean_days: float
    refill_interval_min_days: float
    alarms: dict[str, int] = field(default_factory=dict)
    visit_days: list[float] = field(default_factory=list)

    def to_row(self) -> dict[str, object]:
        row = asdict(self)
        del row["alarms"], row["visit_days"]
        row.update({f"alarms_{k}": self.alarms.get(k, 0) for k in ALARM_KINDS})
        row["visits"] = len(self.visit_days)
        return row


@dataclass(frozen=True)
class Draws:
    origin: str
    age_years: float
    daily_dose_ug: float
    model: PumpModel
    concentration_ug_per_ml: float
    program: Program
    flow_error_fraction: float


def _lognormal_between(rng: np.random.Generator, p10: float, p90: float) -> float:
    median = math.sqrt(p10 * p90)
    sigma = math.log(p90 / p10) / (2 * _Z90)
    return float(median * math.exp(sigma * rng.standard_normal()))


def draw_patient(config: CohortConfig, rng: np.random.Generator) -> Draws:
    pop, pumps = config.population, config.pumps
    origin = "spinal" if rng.random() < pop.spinal_fraction else "cerebral"
    age = float(rng.uniform(pop.age_min_years, max(pop.age_min_years, pop.age_max_years)))
    if age < 12.0:
        dose = _lognormal_between(rng, pop.child_dose_p10_ug_per_day, pop.child_dose_p90_ug_per_day)
    elif origin == "spinal":
        dose = _lognormal_between(
            rng, pop.spinal_dose_p10_ug_per_day, pop.spinal_dose_p90_ug_per_day
        )
    else:
        dose = _lognormal_between(
            rng, pop.cerebral_dose_p10_ug_per_day, pop.cerebral_dose_p90_ug_per_day
        )
    dose = float(np.clip(dose, 20.0, BACLOFEN.warning_daily_dose_ug))  # S25 ranges, S46 warning
    names = sorted(pumps.models)
    shares = np.array([pumps.models[n] for n in names], dtype=float)
    model = pump_model(names[int(rng.choice(len(names), p=shares / shares.sum()))])
    use_flex = bool(rng.random() < pop.flex_fraction)
    program = day_night_program(dose) if use_flex else continuous(dose)
    concentration = choose_concentration(
        model, program, pumps.low_reservoir_alarm_ml, pumps.target_refill_interval_days
    )
    # this pump's real flow error within its accuracy band (S9): most pumps are close
    error = float(
        np.clip(
            rng.normal(0.0, model.flow_accuracy_fraction * pumps.flow_error_sd_of_band),
            -model.flow_accuracy_fraction,
            model.flow_accuracy_fraction,
        )
    )
    return Draws(origin, age, dose, model, concentration, program, error)


def choose_concentration(
    model: PumpModel, program: Program, alarm_ml: float, target_days: float
) -> float:
    """The lowest marketed concentration whose every rate the pump can run and that lasts
    ``target_days`` between refills; the most concentrated usable one otherwise."""
    low_ug_per_day = program.profile.min_rate_ug_per_s * SECONDS_PER_DAY
    high_ug_per_day = program.profile.max_rate_ug_per_s * SECONDS_PER_DAY
    usable = [
        c
        for c in BACLOFEN.concentrations_ug_per_ml
        if low_ug_per_day / c >= model.min_flow_ml_per_day
        and high_ug_per_day / c <= model.max_flow_ml_per_day
    ]
    daily_ml = {c: program.mean_daily_dose_ug() / c for c in usable}
    for concentration in usable:
        if (model.reservoir_ml - alarm_ml) / daily_ml[concentration] >= target_days:
            return concentration
    return usable[-1]


def day_night_program(daily_dose_ug: float) -> Program:
    """More at night against night spasms, the same daily dose (a common flex pattern [R])."""
    mean = daily_dose_ug / 24.0
    night, day = 1.3 * mean, mean - 0.3 * mean * 9.0 / 15.0  # 9 h of night, 15 h of day
    return flex([FlexStep(7 * 60, day), FlexStep(22 * 60, night)])


class _Clinic:
    """The patient's timeline: pumps (eras), scheduled visits, faults."""

    def __init__(self, config: CohortConfig, index: int) -> None:
        self.config = config
        self.rng = np.random.default_rng(np.random.SeedSequence([config.cohort.seed, index]))
        self.draws = draw_patient(config, self.rng)
        self.start_s = to_pump_s(config.cohort.start)
        self.end_s = self.start_s + config.cohort.years * SECONDS_PER_YEAR
        self.eras: list[Firmware] = []
        self.events: list[tuple[float, int, str]] = []
        self._seq = 0
        self.refill_generation = 0
        self.replacement_pending = False
        self.eri_watch_s = math.nan
        self.refill_times: list[float] = []
        self.visit_times: list[float] = []
        self.missed = 0
        self.catheter_faults = 0
        self.stalls = 0
        self.battery_faults = dict.fromkeys(BATTERY_FAULTS, 0)

    @property
    def fw(self) -> Firmware:
        return self.eras[-1]

    def push(self, t_s: float, kind: str) -> None:
        self._seq += 1
        heapq.heappush(self.events, (t_s, self._seq, kind))

    def implant(self, t_s: float) -> None:
        d = self.draws
        self.eras.append(
            Firmware.implant(
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
        )
        self.schedule_refill(t_s)

    def schedule_refill(self, t_s: float) -> None:
        fw, policy = self.fw, self.config.policy
        plan = plan_refill(
            RefillInput(
                fw.model,
                fw.reservoir_ml,
                fw.concentration_ug_per_ml,
                fw.program.mean_daily_dose_ug(),
                low_reservoir_alarm_ml=fw.low_reservoir_alarm_ml,
                safety_margin_days=policy.refill_margin_days,
            )
        )
        late_days = (
            float(self.rng.exponential(policy.late_visit_days_mean))
            if policy.late_visit_days_mean
            else 0.0
        )
        self.refill_generation += 1
        self.push(
            t_s + (plan.next_refill_days + late_days) * SECONDS_PER_DAY,
            f"refill:{self.refill_generation}",
        )

    def schedule_faults(self) -> None:
        faults = self.config.faults
        for kind, rate in (
            ("occlusion", faults.catheter_occlusion_per_year),
            ("stall", faults.motor_stall_per_year),
            (FaultKind.LOW_BATTERY_RESET.value, faults.low_battery_reset_per_year),
            (FaultKind.PREMATURE_ERI.value, faults.premature_eri_per_year),
            (FaultKind.PREMATURE_EOS.value, faults.premature_eos_per_year),
        ):
            if rate <= 0.0:
                continue
            t = self.start_s
            while True:
                t += float(self.rng.exponential(SECONDS_PER_YEAR / rate))
                if t >= self.end_s:
                    break
                self.push(t, kind)

    def check_eri(self) -> None:
        """The ERI tone brings the patient in: book the replacement when the battery reaches
        ERI (the firmware predicts it; an event at that moment makes the clinic notice)."""
        fw = self.fw
        if self.replacement_pending:
            return
        if fw.eri_s is not None:
            when = fw.eri_s + self.config.policy.replacement_days_after_eri * SECONDS_PER_DAY
            self.book_replacement(max(when, fw.t_s))
        else:
            predicted = fw.predicted_eri_s()
            if predicted < self.end_s and predicted != self.eri_watch_s:
                self.eri_watch_s = predicted
                self.push(predicted + 1.0, "eri_watch")

    def run(self) -> None:
        self.implant(self.start_s)
        self.schedule_faults()
        while self.events:
            t, _, kind = heapq.heappop(self.events)
            if t > self.end_s:
                break
            self.fw.advance_s(t)
            self.check_eri()
            self.handle(t, kind)
            self.check_eri()
        self.fw.advance_s(self.end_s)

    def handle(self, t: float, kind: str) -> None:
        fw = self.fw
        if kind.startswith("refill:"):
            self.refill_visit(t, kind)
        elif kind.startswith("replacement:"):
            if int(kind.split(":")[1]) == len(self.eras):  # not a pump replaced already
                self.visit_times.append(t)
                self.replace(t)
        elif kind.startswith("reprogram:"):
            self.reprogram(t, int(kind.split(":")[1]))
        elif kind in BATTERY_FAULT_EVENTS:
            self.battery_fault(t, FaultKind(kind))
        elif kind == "occlusion":
            self.catheter_faults += 1
            fw.inject_fault(from_pump_s(t), FaultKind.CATHETER_OCCLUSION)
            repair_days = float(self.rng.exponential(self.config.faults.catheter_repair_days_mean))
            self.push(t + repair_days * SECONDS_PER_DAY, "repair")
        elif kind == "repair":
            self.visit_times.append(t)
            fw.inject_fault(from_pump_s(t), FaultKind.CATHETER_CLEARED)
        elif kind == "stall":
            self.stalls += 1
            f = self.config.faults
            hours = float(
                self.rng.uniform(
                    f.stall_recovery_h_min, max(f.stall_recovery_h_min, f.stall_recovery_h_max)
                )
            )
            fw.inject_fault(from_pump_s(t), FaultKind.MOTOR_STALL, recovery_h=hours)

    def refill_visit(self, t: float, kind: str) -> None:
        fw, policy = self.fw, self.config.policy
        if int(kind.split(":")[1]) != self.refill_generation:
            return  # superseded by a replacement
        if self.rng.random() < policy.missed_visit_rate:
            self.missed += 1
            self.push(t + policy.rebook_days * SECONDS_PER_DAY, kind)
            return
        self.visit_times.append(t)
        fw.telemetry_session(from_pump_s(t))
        if fw.mode is Mode.EOS:  # the pump has died: replace it at this visit
            self.replace(t)
            return
        try:
            fw.refill(from_pump_s(t), fw.model.reservoir_ml, fw.concentration_ug_per_ml)
        except CommandRejected:
            self.replace(t)
            return
        self.refill_times.append(t)
        if AlarmKind.MOTOR_STALL in fw.alarms:
            fw.clear_alarm(from_pump_s(t), AlarmKind.MOTOR_STALL)
        self.schedule_refill(t)

    def book_replacement(self, t_s: float) -> None:
        """Book the current pump's replacement (a later booking for the same pump is dropped)."""
        self.replacement_pending = True
        self.push(t_s, f"replacement:{len(self.eras)}")

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
            self.push(t + response_s * SECONDS_PER_DAY, f"reprogram:{len(self.eras)}")
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


def _zero_stretches(spans: list[Span]) -> list[tuple[float, float]]:
    return [
        (s.start_s, s.end_s)
        for s in spans
        if s.scale == 0.0 and s.extra_ug_per_s == 0.0 and s.end_s > s.start_s
    ]


def _merge(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def withdrawal_hours(
    spans: list[Span],
    windows: list[tuple[float, float]],
    pk: object,
    maintenance_ug_per_h: float,
    fraction: float,
) -> float:
    """Hours with the effect below the withdrawal threshold inside the windows."""
    from itb.pharmacology.exact import Piece
    from itb.pharmacology.withdrawal import time_below_threshold_h

    total = 0.0
    for a, b in windows:
        pieces = []
        for span in spans:
            if span.end_s <= a or span.start_s >= b:
                continue
            clipped = Span(
                max(a, span.start_s),
                min(b, span.end_s),
                span.profile,
                span.scale,
                span.extra_ug_per_s,
            )
            for seg in clipped.segments():
                if seg.end_s > seg.start_s:
                    pieces.append(
                        Piece(
                            (seg.start_s - a) / SECONDS_PER_HOUR,
                            (seg.end_s - a) / SECONDS_PER_HOUR,
                            seg.rate_ug_per_h,
                        )
                    )
        if pieces:
            total += float(time_below_threshold_h(pk, pieces, maintenance_ug_per_h, fraction)[0])  # type: ignore[arg-type]
    return total


def simulate_patient(config: CohortConfig, index: int) -> PatientOutcome:
    clinic = _Clinic(config, index)
    clinic.run()
    d = clinic.draws
    spans = [s for era in clinic.eras for s in (era.received_spans or [])]
    zero = _zero_stretches(spans)
    no_delivery_h = sum(b - a for a, b in zero) / SECONDS_PER_HOUR
    withdrawal_h = 0.0
    if zero and config.pharmacology.enabled:
        from itb.pharmacology.population import draw_patients

        pk = draw_patients(clinic.rng, 1)
        windows = _merge(
            [
                (max(a - WINDOW_BEFORE_S, clinic.start_s), min(b + WINDOW_AFTER_S, clinic.end_s))
                for a, b in zero
            ]
        )
        withdrawal_h = withdrawal_hours(
            spans,
            windows,
            pk,
            d.program.mean_daily_dose_ug() / 24.0,
            config.pharmacology.withdrawal_fraction,
        )
    alarms = dict.fromkeys(ALARM_KINDS, 0)
    for era in clinic.eras:
        for entry in era.log.entries():
            if entry.kind == "alarm":
                alarms[str(entry.data["alarm"])] += 1
    intervals = (
        np.diff(clinic.refill_times) / SECONDS_PER_DAY
        if len(clinic.refill_times) > 1
        else np.array([])
    )
    return PatientOutcome(
        index=index,
        origin=d.origin,
        age_years=round(d.age_years, 2),
        model=d.model.name,
        concentration_ug_per_ml=d.concentration_ug_per_ml,
        daily_dose_ug=d.daily_dose_ug,
        flex_program=not d.program.is_continuous,
        years=config.cohort.years,
        withdrawal_h=withdrawal_h,
        no_delivery_h=no_delivery_h,
        refills=len(clinic.refill_times),
        missed_visits=clinic.missed,
        replacements=len(clinic.eras) - 1,
        catheter_faults=clinic.catheter_faults,
        motor_stalls=clinic.stalls,
        low_battery_resets=clinic.battery_faults[FaultKind.LOW_BATTERY_RESET],
        premature_eris=clinic.battery_faults[FaultKind.PREMATURE_ERI],
        premature_eoss=clinic.battery_faults[FaultKind.PREMATURE_EOS],
        delivered_ug=sum(era.delivered_ug for era in clinic.eras),
        received_ug=sum(era.received_ug for era in clinic.eras),
        refill_interval_mean_days=float(intervals.mean()) if intervals.size else math.nan,
        refill_interval_min_days=float(intervals.min()) if intervals.size else math.nan,
        alarms=alarms,
        visit_days=[(t - clinic.start_s) / SECONDS_PER_DAY for t in clinic.visit_times],
    )


def horizon_days(config: CohortConfig) -> float:
    return config.cohort.years * SECONDS_PER_YEAR / SECONDS_PER_DAY
