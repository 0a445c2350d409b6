"""``itb pk program --plot``: the labels of events close in time (an empty reservoir, then the
withdrawal risk hours later) never overlap each other, the title or the panels' legends."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Annotation

from itb.cli.pk_plots import CoursePlot, Marker, course_figure


def test_labels_of_close_events_do_not_overlap() -> None:
    t_h = np.linspace(0.0, 40 * 24.0, 400)
    course = CoursePlot(
        title="continuous-refill.toml: typical patient",
        t_h=t_h,
        csf_ug_per_ml=np.full_like(t_h, 0.8),
        mas=np.full_like(t_h, 1.0),
        baseline_mas=3.0,
        withdrawal_mas=1.9,
        markers=[
            Marker(27.6 * 24, "empty_reservoir", "tab:red"),
            Marker(28.1 * 24, "withdrawal risk", "darkred"),
            Marker(28.3 * 24, "refill", "tab:blue"),
            Marker(5 * 24, "bolus 50 µg", "tab:blue"),
        ],
    )
    fig = course_figure(course)
    try:
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        labels = [t for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)]
        assert sorted(t.get_text() for t in labels) == [
            "bolus 50 µg", "empty reservoir", "refill", "withdrawal risk"
        ]  # fmt: skip
        boxes = [t.get_window_extent(renderer) for t in labels]
        title = fig.texts[0] if fig.texts else None  # the suptitle
        legends = [ax.get_legend() for ax in fig.axes]
        others = [t.get_window_extent(renderer) for t in (title, *legends) if t is not None]
        assert len(others) == 3
        for i, box in enumerate(boxes):
            assert not any(box.overlaps(b) for b in boxes[i + 1 :]), labels[i].get_text()
            assert not any(box.overlaps(b) for b in others), labels[i].get_text()
            assert box.y1 <= fig.bbox.y1  # inside the figure
    finally:
        plt.close(fig)
