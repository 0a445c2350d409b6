"""One virtual patient over the horizon: the real firmware, driven by a clinic and by faults.

Everything random about patient ``index`` comes from its own generator, seeded from
``(cohort seed, index)``, so the results do not depend on how patients are split among workers.
The pharmacology is evaluated only around the stretches where nothing reached the spinal fluid
(empty reservoir, end of service, stall, occluded catheter): elsewhere the patient is on the
program, at or near the maintenance effect, which is above the withdrawal threshold by definition.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from itb.pharmacology.exact import Piece, pieces_from_segments
from itb.pharmacology.model import Patients
from itb.pump.alarms import AlarmKind
from itb.pump.faults import FaultKind
from itb.pump.spans import Span
from itb.sim.config import CohortConfig
from itb.sim.timeline import Clinic
from itb.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_YEAR

ALARM_KINDS = tuple(kind.value for kind in AlarmKind)
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
    # hours at each grade of the withdrawal syndrome (pharmacology/withdrawal_course.py)
    withdrawal_signs_h: float = 0.0
    withdrawal_severe_h: float = 0.0

    def to_row(self) -> dict[str, object]:
        row = asdict(self)
        del row["alarms"], row["visit_days"]
        row.update({f"alarms_{k}": self.alarms.get(k, 0) for k in ALARM_KINDS})
        row["visits"] = len(self.visit_days)
        return row


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


def _window_pieces(spans: list[Span], a: float, b: float) -> list[Piece]:
    """What reached the spinal fluid from ``a`` to ``b`` (pump seconds), as pieces in hours
    from ``a``."""
    segments = (
        seg
        for span in spans
        if span.end_s > a and span.start_s < b
        for seg in Span(
            max(a, span.start_s), min(b, span.end_s), span.profile, span.scale, span.extra_ug_per_s
        ).segments()
        if seg.end_s > seg.start_s
    )
    return pieces_from_segments(segments, a)


def withdrawal_measures(
    spans: list[Span],
    windows: list[tuple[float, float]],
    pk: Patients,
    maintenance_ug_per_h: float,
    fraction: float,
) -> tuple[float, float, float]:
    """Inside the windows: hours with the effect below the withdrawal threshold, then hours
    with early withdrawal signs and with severe signs expected (each window's pieces built
    once for both)."""
    from itb.pharmacology.withdrawal import time_below_threshold_h
    from itb.pharmacology.withdrawal_course import DEFAULT_STEP_H, severity_course

    below = signs = severe = 0.0
    for a, b in windows:
        pieces = _window_pieces(spans, a, b)
        if not pieces:
            continue
        below += float(time_below_threshold_h(pk, pieces, maintenance_ug_per_h, fraction)[0])
        hours = (b - a) / SECONDS_PER_HOUR
        t_h = np.linspace(0.0, hours, max(2, round(hours / DEFAULT_STEP_H) + 1))
        delivering = [piece for piece in pieces if piece.rate_ug_per_h > 0.0]
        course = severity_course(pk, delivering, maintenance_ug_per_h, t_h)
        window_signs, window_severe = course.hours_at_grade()
        signs += float(window_signs[0])
        severe += float(window_severe[0])
    return below, signs, severe


def simulate_patient(config: CohortConfig, index: int) -> PatientOutcome:
    clinic = Clinic(config, index)
    clinic.run()
    d = clinic.draws
    spans = [s for era in clinic.eras for s in (era.received_spans or [])]
    zero = _zero_stretches(spans)
    no_delivery_h = sum(b - a for a, b in zero) / SECONDS_PER_HOUR
    withdrawal_h = withdrawal_signs_h = withdrawal_severe_h = 0.0
    if zero and config.pharmacology.enabled:
        from itb.pharmacology.population import draw_patients

        pk = draw_patients(clinic.rng, 1)
        windows = _merge(
            [
                (max(a - WINDOW_BEFORE_S, clinic.start_s), min(b + WINDOW_AFTER_S, clinic.end_s))
                for a, b in zero
            ]
        )
        withdrawal_h, withdrawal_signs_h, withdrawal_severe_h = withdrawal_measures(
            spans,
            windows,
            pk,
            d.program.mean_daily_dose_ug() / 24.0,
            config.pharmacology.withdrawal_fraction,
        )
    alarms = dict.fromkeys(ALARM_KINDS, 0)
    for era in clinic.eras:
        for data in era.log.data_of("alarm"):  # no hash chain needed to count (eventlog.py)
            alarms[str(data["alarm"])] += 1
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
        withdrawal_signs_h=withdrawal_signs_h,
        withdrawal_severe_h=withdrawal_severe_h,
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
