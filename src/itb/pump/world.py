"""What the pump cannot see: the drug actually in the reservoir, the catheter, the body.

The firmware counts what it pushes; the world decides what reaches the spinal fluid. Flow
error (within the model's accuracy band, S9), a catheter occlusion or leak, and the drug left
in the tubing after a concentration change all live here. The catheter is a first-in first-out
column of slugs, each a volume at a concentration: what leaves the tip is what entered one
dead-space volume earlier, which is what makes bridge and priming boluses meaningful.

The firmware asks the world two things: how much counted volume it may pump before the world
changes (the real reservoir runs dry, the next slug reaches the tip), and, for a stretch of
pumping, what actually left the reservoir and reached the patient (:meth:`World.pump`).
Catheter faults (:mod:`itb.pump.faults`) change only the world; the pump cannot see them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from itb.pump.hardware import PumpModel
from itb.units import UL_PER_ML

_EPS_UL = 1e-9


@dataclass(frozen=True, slots=True)
class Outflow:
    """One stretch of pumping, as the world saw it."""

    actual_ul: float  # what left the real reservoir (flow error, and never more than it held)
    tip_concentration_ug_per_ml: float  # at the catheter tip when the stretch began
    received_ug: float  # what reached the spinal fluid


@dataclass(slots=True)
class Slug:
    volume_ul: float
    concentration_ug_per_ml: float


@dataclass
class World:
    # Drug actually in the reservoir (the pump only has its estimate).
    reservoir_ul: float
    # Delivered volume = counted volume × (1 + flow_error_fraction).
    flow_error_fraction: float = 0.0
    # Share of what leaves the catheter that reaches the spinal fluid: 1 normally, 0 when the
    # catheter is occluded or disconnected, between for a leak.
    received_fraction: float = 1.0
    # Catheter column from the pump outlet (left) to the tip (right).
    catheter: deque[Slug] = field(default_factory=deque)

    @classmethod
    def implanted(
        cls,
        model: PumpModel,
        volume_ml: float,
        concentration_ug_per_ml: float,
        catheter_volume_ml: float,
        *,
        catheter_primed: bool = True,
        flow_error_fraction: float = 0.0,
    ) -> World:
        """A new implant: the reservoir filled, tubing and catheter full of drug when primed,
        of spinal fluid (no drug) otherwise."""
        dead_space_ul = (model.internal_tubing_ml + catheter_volume_ml) * UL_PER_ML
        slug = Slug(dead_space_ul, concentration_ug_per_ml if catheter_primed else 0.0)
        return cls(
            reservoir_ul=volume_ml * UL_PER_ML,
            flow_error_fraction=flow_error_fraction,
            catheter=deque([slug]),
        )

    @property
    def actual_factor(self) -> float:
        """Delivered volume per counted volume."""
        return 1.0 + self.flow_error_fraction

    def counted_volumes_to_change_ul(self) -> list[float]:
        """Counted volumes after which the world changes: the real reservoir runs dry, the
        next slug reaches the tip (the firmware makes each an event)."""
        volumes = []
        if self.reservoir_ul > 0.0:
            volumes.append(self.reservoir_ul / self.actual_factor)
        if len(self.catheter) > 1:
            volumes.append(self.tip_slug_ul() / self.actual_factor)
        return volumes

    def pump(self, commanded_ul: float, concentration_ug_per_ml: float) -> Outflow:
        """The pump drove ``commanded_ul`` at a concentration: what the world did with it."""
        actual_ul = min(commanded_ul * self.actual_factor, self.reservoir_ul)
        self.reservoir_ul -= actual_ul
        tip = self.tip_concentration_ug_per_ml
        return Outflow(actual_ul, tip, self.push(actual_ul, concentration_ug_per_ml))

    @property
    def dead_space_ul(self) -> float:
        return sum(s.volume_ul for s in self.catheter)

    @property
    def tip_concentration_ug_per_ml(self) -> float:
        return self.catheter[-1].concentration_ug_per_ml if self.catheter else 0.0

    def tip_slug_ul(self) -> float:
        return self.catheter[-1].volume_ul if self.catheter else float("inf")

    def dead_space_content_ug(self) -> float:
        return sum(s.volume_ul * s.concentration_ug_per_ml / UL_PER_ML for s in self.catheter)

    def push(self, volume_ul: float, concentration_ug_per_ml: float) -> float:
        """Push ``volume_ul`` in at the pump end; return the µg that reach the spinal fluid."""
        if volume_ul <= 0.0:
            return 0.0
        if not self.catheter:  # no dead space modelled: straight through
            return volume_ul * concentration_ug_per_ml / UL_PER_ML * self.received_fraction
        if self.catheter[0].concentration_ug_per_ml == concentration_ug_per_ml:
            self.catheter[0].volume_ul += volume_ul
        else:
            self.catheter.appendleft(Slug(volume_ul, concentration_ug_per_ml))
        out_ug = 0.0
        remaining = volume_ul
        while remaining > _EPS_UL and len(self.catheter) > 1:
            tip = self.catheter[-1]
            take = min(tip.volume_ul, remaining)
            out_ug += take * tip.concentration_ug_per_ml / UL_PER_ML
            tip.volume_ul -= take
            remaining -= take
            if tip.volume_ul <= _EPS_UL:
                self.catheter.pop()
        if remaining > _EPS_UL:  # the whole column is one slug now
            tip = self.catheter[-1]
            out_ug += remaining * tip.concentration_ug_per_ml / UL_PER_ML
            tip.volume_ul -= remaining
        return out_ug * self.received_fraction

    def to_state(self) -> dict[str, object]:
        return {
            "reservoir_ul": self.reservoir_ul,
            "flow_error_fraction": self.flow_error_fraction,
            "received_fraction": self.received_fraction,
            "catheter": [[s.volume_ul, s.concentration_ug_per_ml] for s in self.catheter],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> World:
        return cls(
            reservoir_ul=float(state["reservoir_ul"]),  # type: ignore[arg-type]
            flow_error_fraction=float(state["flow_error_fraction"]),  # type: ignore[arg-type]
            received_fraction=float(state["received_fraction"]),  # type: ignore[arg-type]
            catheter=deque(Slug(float(v), float(c)) for v, c in state["catheter"]),  # type: ignore[attr-defined]
        )
