"""The patient page's dose schedule chart labels every step of a flexible schedule: its start
time below the plot (labels never overlap: close steps take a second row) and its rate."""

from __future__ import annotations

import itertools
import re

from itb.therapy import program_from_dict
from itb.web.charts import LABEL_GAP_PX, dose_schedule_svg

FLEX: dict[str, object] = {
    "steps": [
        {"start": "00:00", "rate_ug_per_h": 15},
        {"start": "07:00", "rate_ug_per_h": 25},
        {"start": "07:30", "rate_ug_per_h": 30},
        {"start": "21:00", "rate_ug_per_h": 18},
    ]
}


def _labels(svg: str, attribute: str) -> list[tuple[float, float, str]]:
    pattern = rf'<text x="([\d.]+)" y="([\d.]+)"[^>]*{attribute}="([^"]+)"'
    return [(float(x), float(y), value) for x, y, value in re.findall(pattern, svg)]


def test_every_step_of_a_flex_schedule_is_labelled_with_its_time_and_rate() -> None:
    svg = str(dose_schedule_svg(program_from_dict(FLEX)))
    times = _labels(svg, "data-step-start")
    assert [t for _, _, t in times] == ["00:00", "07:00", "07:30", "21:00", "24:00"]
    # the rate of every step wide enough to hold it; the 30-minute step's in its tooltip
    assert [r for _, _, r in _labels(svg, "data-step-rate")] == ["15", "30", "18"]
    assert "from 07:00: 25 µg/h" in svg


def test_step_time_labels_on_one_row_keep_apart() -> None:
    svg = str(dose_schedule_svg(program_from_dict(FLEX)))
    rows: dict[float, list[float]] = {}
    for x, y, _ in _labels(svg, "data-step-start"):
        rows.setdefault(y, []).append(x)
    assert len(rows) == 2  # 07:00 and 07:30 are too close for one row
    for xs in rows.values():
        assert all(b - a >= LABEL_GAP_PX for a, b in itertools.pairwise(xs))


def test_a_schedule_whose_first_step_starts_after_midnight_shows_the_carried_rate() -> None:
    late: dict[str, object] = {
        "steps": [{"start": "06:00", "rate_ug_per_h": 20}, {"start": "22:00", "rate_ug_per_h": 10}]
    }
    svg = str(dose_schedule_svg(program_from_dict(late)))
    rates = [r for _, _, r in _labels(svg, "data-step-rate")]
    assert rates == ["10", "20", "10"]  # 00:00 to 06:00 runs the previous day's 22:00 rate
