"""The dose schedule chart: an inline SVG of the program's rate over one day (no JS, no deps)."""

from __future__ import annotations

from markupsafe import Markup, escape

from itb.therapy import MINUTES_PER_DAY, Program

WIDTH_PX = 600
HEIGHT_PX = 160
MARGIN_PX = 32


def dose_schedule_svg(program: Program, weekday: int = 0) -> Markup:
    """Basal rate (µg/h) against the time of day, with periodic boluses as markers."""
    steps = program.week[weekday]
    top_ug_per_h = max(max(s.rate_ug_per_h for s in steps), 1e-9) * 1.15
    plot_w, plot_h = WIDTH_PX - 2 * MARGIN_PX, HEIGHT_PX - 2 * MARGIN_PX

    def x(minute: float) -> float:
        return MARGIN_PX + plot_w * minute / MINUTES_PER_DAY

    def y(rate: float) -> float:
        return MARGIN_PX + plot_h * (1 - rate / top_ug_per_h)

    # the day starts with the previous day's last step still running
    rate = steps[-1].rate_ug_per_h
    points = [(x(0), y(rate))]
    for step in steps:
        points += [(x(step.start_min), y(rate)), (x(step.start_min), y(step.rate_ug_per_h))]
        rate = step.rate_ug_per_h
    points.append((x(MINUTES_PER_DAY), y(rate)))
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    ticks = "".join(
        f'<text x="{x(h * 60):.1f}" y="{HEIGHT_PX - 10}" font-size="10" '
        f'text-anchor="middle">{h:02d}:00</text>'
        for h in range(0, 25, 6)
    )
    boluses = "".join(
        f'<circle cx="{x(b.start_min):.1f}" cy="{MARGIN_PX - 8}" r="4" fill="#b5179e">'
        f"<title>bolus {b.dose_ug:g} µg over {b.duration_min:g} min</title></circle>"
        for b in program.periodic_boluses
    )
    label = escape(f"{top_ug_per_h / 1.15:.3g} µg/h max; {program.daily_dose_ug():.4g} µg/day")
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" role="img" '
        f'aria-label="dose schedule">'
        f'<rect x="{MARGIN_PX}" y="{MARGIN_PX}" width="{plot_w}" height="{plot_h}" '
        f'fill="#f4f7fb" stroke="#c8d1dc"/>'
        f'<polyline points="{path}" fill="none" stroke="#1d4e89" stroke-width="2"/>'
        f'<text x="{MARGIN_PX}" y="{MARGIN_PX - 12}" font-size="11">{label}</text>'
        f"{ticks}{boluses}</svg>"
    )
