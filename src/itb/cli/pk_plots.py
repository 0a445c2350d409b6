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

from itb.pharmacology.model import FloatArray


@dataclass(frozen=True, slots=True)
class Marker:
    t_h: float
    label: str
    color: str = "black"


def plot_course(
    path: Path | str,
    t_h: FloatArray,
    csf_ug_per_ml: FloatArray,
    mas: FloatArray,
    baseline_mas: float,
    response_fall_mas: float,
    title: str,
    markers: Sequence[Marker] = (),
    withdrawal_mas: float | None = None,
    effective_csf_ug_per_ml: float | None = None,
) -> Path:
    """Write the two-panel figure to ``path`` (PNG) and return it."""
    use_days = float(t_h[-1]) > 72.0
    x = t_h / 24.0 if use_days else t_h
    x_label = "Time (days)" if use_days else "Time after start (hours)"
    scale = 24.0 if use_days else 1.0
    fig, (ax_c, ax_e) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5), dpi=110)
    fig.suptitle(title + "\n(OpenITB simulation, not a medical device)", fontsize=11)

    ax_c.plot(x, csf_ug_per_ml, color="tab:blue", lw=1.6, label="CSF at catheter tip")
    if effective_csf_ug_per_ml is not None and np.isfinite(effective_csf_ug_per_ml):
        top = max(float(np.max(csf_ug_per_ml)) * 1.1, effective_csf_ug_per_ml * 1.2)
        ax_c.axhspan(
            effective_csf_ug_per_ml,
            top,
            color="tab:green",
            alpha=0.12,
            label="effective at steady state (MAS fall ≥ 1)",
        )
        ax_c.set_ylim(0.0, top)
    else:
        ax_c.set_ylim(bottom=0.0)
    ax_c.set_ylabel("Baclofen in CSF (µg/mL)")
    ax_c.grid(alpha=0.3)
    ax_c.legend(loc="upper right", fontsize=8)

    band_top = baseline_mas - response_fall_mas
    ax_e.axhspan(
        0.0,
        band_top,
        color="tab:green",
        alpha=0.15,
        label=f"response: MAS fall ≥ {response_fall_mas:g} (S51)",
    )
    ax_e.axhline(baseline_mas, color="grey", ls=":", lw=1, label=f"baseline MAS {baseline_mas:g}")
    if withdrawal_mas is not None:
        ax_e.axhline(withdrawal_mas, color="tab:red", ls="--", lw=1.2, label="withdrawal threshold")
    ax_e.plot(x, mas, color="tab:purple", lw=1.6, label="predicted MAS")
    ax_e.set_ylim(5.0, 0.0)  # lower tone upwards: better is up
    ax_e.set_ylabel("Modified Ashworth (0-5, 1+ = 2)")
    ax_e.set_xlabel(x_label)
    ax_e.grid(alpha=0.3)
    ax_e.legend(loc="lower right", fontsize=8)

    for marker in markers:
        for ax in (ax_c, ax_e):
            ax.axvline(marker.t_h / scale, color=marker.color, ls="-.", lw=1)
        ax_c.annotate(
            marker.label,
            (marker.t_h / scale, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color=marker.color,
        )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
