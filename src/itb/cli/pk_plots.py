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
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

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
    fig = course_figure(course)
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def course_figure(course: CoursePlot) -> Figure:
    """The two-panel figure, laid out (the caller saves and closes it)."""
    use_days = float(course.t_h[-1]) > DAYS_AXIS_AFTER_H
    scale_h = 24.0 if use_days else 1.0
    fig, (ax_c, ax_e) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5), dpi=110)
    fig.suptitle(course.title + "\n(OpenITB simulation, not a medical device)", fontsize=11)
    x = course.t_h / scale_h
    _concentration_panel(ax_c, x, course)
    _effect_panel(ax_e, x, course)
    ax_e.set_xlabel("Time (days)" if use_days else "Time after start (hours)")
    fig.tight_layout()  # the panels' final place first: the labels are stacked in pixels
    _mark(ax_c, ax_e, course.markers, scale_h)
    fig.tight_layout()  # and room above the panels for the labels' rows
    return fig


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


LABEL_PAD_PX = 6.0  # the least room between two marker labels on one row
LABEL_ROW_AXES = 0.075  # one row of marker labels, in the top panel's height


def _mark(ax_c: Axes, ax_e: Axes, markers: Sequence[Marker], scale_h: float) -> list[Annotation]:
    """A vertical line through both panels at each marker, and its label above the panels,
    level, on the first row where it overlaps no other label (close events stack up)."""
    labels: list[Annotation] = []
    for marker in sorted(markers, key=lambda m: m.t_h):
        for ax in (ax_c, ax_e):
            ax.axvline(marker.t_h / scale_h, color=marker.color, ls="-.", lw=1)
        labels.append(
            ax_c.annotate(
                marker.label.replace("_", " "),  # a stop's kind, in words
                (marker.t_h / scale_h, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color=marker.color,
                annotation_clip=False,
            )
        )
    _stack_labels(ax_c, labels)
    return labels


def _stack_labels(ax: Axes, labels: list[Annotation]) -> None:
    """Move each label up a row until it clears every label already placed on that row."""
    figure = ax.get_figure()
    assert figure is not None
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    placed: list[list[Bbox]] = []
    for label in labels:
        row = 0
        while True:
            label.xy = (label.xy[0], 1.0 + row * LABEL_ROW_AXES)
            box = label.get_window_extent(renderer).padded(LABEL_PAD_PX / 2)
            if row == len(placed):
                placed.append([])
            if not any(box.overlaps(other) for other in placed[row]):
                placed[row].append(box)
                break
            row += 1
