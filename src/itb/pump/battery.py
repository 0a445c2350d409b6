"""The battery: what drains it, when it reaches the elective replacement indicator (ERI) and
when delivery ends (EOS).

Theory of operation
-------------------
The battery sees the continuous flow (not the counted strokes): a quiescent current plus a
charge per quantum of volume (``hardware.PumpModel``). At a rate ``scale * profile(t) + extra``
(µL/s) the charge drawn is linear in the profile's integral, so the time to ERI is one
``RateProfile.time_to_integral`` call, the same closed form the reservoir alarms use. EOS follows
ERI by ``PumpModel.eos_after_eri_s`` (S3 S21).

The service life caps both (S3 S4): the pump shuts off ``max_service_life`` after implant
whatever charge is left. So that the clinic still gets its warning, ERI comes at the latest
``eos_after_eri`` before the shut-off; EOS is whichever comes first, ERI + 90 days or the
shut-off. At 0.25 mL/day or less the shut-off comes first on the peristaltic model:

    ERI = min(battery charge at ERI, implant + service life − eos_after_eri)
    EOS = min(ERI + eos_after_eri, implant + service life)

A pump that does not know its implant date (both memory banks lost) has no shut-off modelled.

The firmware asks for the prediction at every step it takes, and the cohort simulator once
more after each event (``itb.sim.timeline``); :class:`EriPredictor` remembers the last answer
and what it depended on, so an ask in an unchanged state costs a comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from itb.pump.hardware import PumpModel
from itb.therapy import Program
from itb.units import SECONDS_PER_DAY, UC_PER_MAH, UL_PER_ML

# The battery reaches ERI when the charge used is within this share of the usable charge.
_CHARGE_SLACK = 1e-12


def reached_eri(model: PumpModel, battery_used_uc: float) -> bool:
    return battery_used_uc >= model.usable_charge_to_eri_mah * UC_PER_MAH * (1 - _CHARGE_SLACK)


def time_to_eri_s(
    model: PumpModel,
    program: Program,
    t_s: float,
    battery_used_uc: float,
    rate: tuple[float, float],
) -> float:
    """When the battery reaches ERI if the pumping ``rate`` (scale on the program profile in
    µL per µg, extra µL/s) goes on from ``t_s`` (pump seconds)."""
    scale, extra = rate
    remaining_uc = model.usable_charge_to_eri_mah * UC_PER_MAH - battery_used_uc
    uc_per_ul = model.charge_per_quantum_uc / model.quantum_ul
    return program.profile.time_to_integral(
        t_s, remaining_uc, uc_per_ul * scale, model.quiescent_current_ua + uc_per_ul * extra
    )


def shutoff_s(model: PumpModel, implanted_s: float | None) -> float:
    """The automatic shut-off (pump seconds); ``math.inf`` when the implant date is unknown."""
    return math.inf if implanted_s is None else implanted_s + model.max_service_life_s


def service_life_eri_s(model: PumpModel, implanted_s: float | None) -> float:
    """The latest ERI the service life allows: ``eos_after_eri`` before the shut-off."""
    return shutoff_s(model, implanted_s) - model.eos_after_eri_s


def eos_after_eri_at_s(model: PumpModel, eri_s: float, implanted_s: float | None) -> float:
    """EOS for a pump that reached ERI at ``eri_s``: 90 days on, or the shut-off if sooner."""
    return min(eri_s + model.eos_after_eri_s, shutoff_s(model, implanted_s))


@dataclass(slots=True)
class _Prediction:
    t_s: float
    battery_used_uc: float
    rate: tuple[float, float]
    program: Program
    eri_s: float


@dataclass(frozen=True, slots=True)
class _PeakDrain:
    """The most charge a pump can draw per second until its next command, and what it has."""

    program: Program
    concentration_ug_per_ml: float
    bolus_ul_per_s: float
    implanted_s: float | None
    peak_uc_per_s: float
    usable_uc: float
    service_life_eri_s: float


def _peak_drain(
    model: PumpModel,
    program: Program,
    concentration_ug_per_ml: float,
    bolus_ul_per_s: float,
    implanted_s: float | None,
) -> _PeakDrain:
    # the program's peak, the bolus and the minimum rate together: more than the pump can pump
    # without a command (a stall's end, an empty reservoir or a bolus's end only lower it)
    peak_ul_per_s = (
        UL_PER_ML / concentration_ug_per_ml * program.profile.max_rate_ug_per_s
        + bolus_ul_per_s
        + model.min_flow_ml_per_day * UL_PER_ML / SECONDS_PER_DAY
    )
    uc_per_ul = model.charge_per_quantum_uc / model.quantum_ul
    return _PeakDrain(
        program,
        concentration_ug_per_ml,
        bolus_ul_per_s,
        implanted_s,
        model.quiescent_current_ua + uc_per_ul * peak_ul_per_s,
        model.usable_charge_to_eri_mah * UC_PER_MAH,
        service_life_eri_s(model, implanted_s),
    )


@dataclass(slots=True)
class EriPredictor:
    """:func:`time_to_eri_s`, computed once per state of the pump."""

    last: _Prediction | None = None
    drain: _PeakDrain | None = None

    def predict(
        self,
        model: PumpModel,
        program: Program,
        t_s: float,
        battery_used_uc: float,
        rate: tuple[float, float],
    ) -> float:
        last = self.last
        if (
            last is not None
            and last.t_s == t_s
            and last.battery_used_uc == battery_used_uc
            and last.rate == rate
            and last.program is program
        ):
            return last.eri_s
        eri_s = time_to_eri_s(model, program, t_s, battery_used_uc, rate)
        self.last = _Prediction(t_s, battery_used_uc, rate, program, eri_s)
        return eri_s

    def not_before_s(
        self,
        model: PumpModel,
        program: Program,
        concentration_ug_per_ml: float,
        bolus_ul_per_s: float,
        implanted_s: float | None,
        t_s: float,
        battery_used_uc: float,
    ) -> float:
        """A time before which the battery cannot reach ERI until the next command: the charge
        left drawn at the most the pump can draw, or the service life's notice. A division,
        where :meth:`predict` searches the program: asked first by whoever only needs to know
        that ERI is not before some time."""
        drain = self.drain
        if (
            drain is None
            or drain.program is not program
            or drain.concentration_ug_per_ml != concentration_ug_per_ml
            or drain.bolus_ul_per_s != bolus_ul_per_s
            or drain.implanted_s != implanted_s
        ):
            drain = _peak_drain(
                model, program, concentration_ug_per_ml, bolus_ul_per_s, implanted_s
            )
            self.drain = drain
        left_uc = max(drain.usable_uc - battery_used_uc, 0.0)
        # a hair earlier than the division says, so that rounding never makes it a late bound
        by_charge_s = t_s + left_uc / drain.peak_uc_per_s * (1.0 - 1e-9)
        return min(by_charge_s, drain.service_life_eri_s)
