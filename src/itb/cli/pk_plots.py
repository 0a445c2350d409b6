"""Clinician-readable plots (an adapter: matplotlib with the Agg backend, writes a PNG).

Two panels on one time axis: the CSF baclofen concentration at the catheter tip (µg/mL) and the
predicted Modified Ashworth Score. The response band (a MAS fall of at least 1.0 from baseline,
S51) is shaded, the withdrawal threshold drawn when known, and events (boluses, delivery stops,
withdrawal-risk times) marked with labelled vertical lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from itb.pharmacology.model import RESPONSE_THRESHOLD_MAS, FloatArray


@dataclass(frozen=True, slots=True)
class Marker:
    t_h: float
    label: str
    color: str = "black"


@dataclass(frozen=True, slots=True)
class CoursePlot:
    """What the figure shows: one time course of concentration and effect, its bands and
    its markers."""

    title: str
    t_h: FloatArray
    csf_ug_per_ml: FloatArray
    mas: FloatArray
    baseline_mas: float
    response_fall_mas: float = RESPONSE_THRESHOLD_MAS  # S51
    markers: Sequence[Marker] = ()
    withdrawal_mas: float | None = None
    effective_csf_ug_per_ml: float | None = None


DAYS_AXIS_AFTER_H = 72.0  # a longer course reads better in days


def plot_course(path: Path | str, course: CoursePlot) -> Path:
    """Write the two-panel figure to ``path`` (PNG) and return it."""
    use_days = float(course.t_h[-1]) > DAYS_AXIS_AFTER_H
    scale_h = 24.0 if use_days else 1.0
    fig, (ax_c, ax_e) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5), dpi=110)
    fig.suptitle(course.title + "\n(OpenITB simulation, not a medical device)", fontsize=11)
    x = course.t_h / scale_h
    _concentration_panel(ax_c, x, course)
    _effect_panel(ax_e, x, course)
    ax_e.set_xlabel("Time (days)" if use_days else "Time after start (hours)")
    _mark(ax_c, ax_e, course.markers, scale_h)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def _concentration_panel(ax: Axes, x: FloatArray, course: CoursePlot) -> None:
    ax.plot(x, course.csf_ug_per_ml, color="tab:blue", lw=1.6, label="CSF at catheter tip")
    effective = course.effective_csf_ug_per_ml
    if effective is not None and np.isfinite(effective):
        top = max(float(np.max(course.csf_ug_per_ml)) * 1.1, effective * 1.2)
        ax.axhspan(
            effective,
            top,
            color="tab:green",
            alpha=0.12,
            label="effective at steady state (MAS fall ≥ 1)",
        )
        ax.set_ylim(0.0, top)
    else:
        ax.set_ylim(bottom=0.0)
    ax.set_ylabel("Baclofen in CSF (µg/mL)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)


def _effect_panel(ax: Axes, x: FloatArray, course: CoursePlot) -> None:
    baseline, fall = course.baseline_mas, course.response_fall_mas
    ax.axhspan(
        0.0,
        baseline - fall,
        color="tab:green",
        alpha=0.15,
        label=f"response: MAS fall ≥ {fall:g} (S51)",
    )
    ax.axhline(baseline, color="grey", ls=":", lw=1, label=f"baseline MAS {baseline:g}")
    if course.withdrawal_mas is not None:
        ax.axhline(
            course.withdrawal_mas, color="tab:red", ls="--", lw=1.2, label="withdrawal threshold"
        )
    ax.plot(x, course.mas, color="tab:purple", lw=1.6, label="predicted MAS")
    ax.set_ylim(5.0, 0.0)  # lower tone upwards: better is up
    ax.set_ylabel("Modified Ashworth (0-5, 1+ = 2)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _mark(ax_c: Axes, ax_e: Axes, markers: Sequence[Marker], scale_h: float) -> None:
    """A labelled vertical line through both panels at each marker."""
    for marker in markers:
        for ax in (ax_c, ax_e):
            ax.axvline(marker.t_h / scale_h, color=marker.color, ls="-.", lw=1)
        ax_c.annotate(
            marker.label,
            (marker.t_h / scale_h, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color=marker.color,
        )
