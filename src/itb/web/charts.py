"""Inline SVG charts (no JS, no deps): the program's rate over one day, and the predicted
effect of the current program over the next days."""

from __future__ import annotations

from datetime import timedelta

from markupsafe import Markup, escape

from itb.clinic.effect import EffectForecast
from itb.programmer.screening import Assessment, predicted_mas_course
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
    label = escape(
        f"rate in µg/h (highest {top_ug_per_h / 1.15:.3g} µg/h); "
        f"{program.daily_dose_ug():.4g} µg/day"
    )
    ticks += (
        f'<text x="{MARGIN_PX - 4}" y="{y(0) + 4:.1f}" font-size="10" text-anchor="end">0</text>'
        f'<text x="{MARGIN_PX - 4}" y="{y(top_ug_per_h / 1.15) + 4:.1f}" font-size="10" '
        f'text-anchor="end">{top_ug_per_h / 1.15:.3g}</text>'
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" role="img" '
        f'aria-label="dose schedule">'
        f'<rect x="{MARGIN_PX}" y="{MARGIN_PX}" width="{plot_w}" height="{plot_h}" '
        f'fill="#f4f7fb" stroke="#c8d1dc"/>'
        f'<polyline points="{path}" fill="none" stroke="#1d4e89" stroke-width="2"/>'
        f'<text x="{MARGIN_PX}" y="{MARGIN_PX - 12}" font-size="11">{label}</text>'
        f"{ticks}{boluses}</svg>"
    )


# The predicted-effect chart ---------------------------------------------------------------------
EFFECT_WIDTH_PX = 640
EFFECT_HEIGHT_PX = 250
LEFT_PX, RIGHT_PX, TOP_PX, BOTTOM_PX = 44, 12, 28, 40
MAS_TOP = 5.0  # the Modified Ashworth scale, 0 to 5 with 1+ coded 2 (S74 S75)


def effect_forecast_svg(forecast: EffectForecast) -> Markup:
    """Predicted MAS against date and time: the response band (MAS fall ≥ 1, S51) shaded, the
    withdrawal threshold dashed, the projected empty reservoir and withdrawal risk marked."""
    plot_w = EFFECT_WIDTH_PX - LEFT_PX - RIGHT_PX
    plot_h = EFFECT_HEIGHT_PX - TOP_PX - BOTTOM_PX
    span_h = float(forecast.t_h[-1]) or 1.0

    def x(t_h: float) -> float:
        return LEFT_PX + plot_w * t_h / span_h

    def y(mas: float) -> float:
        return TOP_PX + plot_h * (1 - mas / MAS_TOP)

    parts = [
        f'<svg class="chart" viewBox="0 0 {EFFECT_WIDTH_PX} {EFFECT_HEIGHT_PX}" role="img" '
        f'aria-label="predicted spasticity over the next {span_h:g} hours">',
        f'<rect x="{LEFT_PX}" y="{TOP_PX}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        f'stroke="#c8d1dc"/>',
        # the response band: MAS at least 1.0 below baseline, down to 0
        f'<rect x="{LEFT_PX}" y="{y(forecast.response_mas):.1f}" width="{plot_w}" '
        f'height="{y(0) - y(forecast.response_mas):.1f}" fill="#2a9d8f" fill-opacity="0.14">'
        f"<title>response band: MAS fall of at least 1.0 from baseline "
        f"{forecast.baseline_mas:g} (S51)</title></rect>",
        f'<line x1="{LEFT_PX}" x2="{LEFT_PX + plot_w}" y1="{y(forecast.baseline_mas):.1f}" '
        f'y2="{y(forecast.baseline_mas):.1f}" stroke="#888" stroke-dasharray="2 3"/>',
        f'<line x1="{LEFT_PX}" x2="{LEFT_PX + plot_w}" y1="{y(forecast.withdrawal_mas):.1f}" '
        f'y2="{y(forecast.withdrawal_mas):.1f}" stroke="#b00020" stroke-dasharray="6 4"/>',
    ]
    for mas in range(6):  # y axis: MAS points
        parts.append(
            f'<text x="{LEFT_PX - 6}" y="{y(mas) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{mas}</text>'
        )
    parts.append(
        f'<text x="12" y="{TOP_PX + plot_h / 2:.1f}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP_PX + plot_h / 2:.1f})">MAS (points, 0-5)</text>'
    )
    # x axis: every 12 h on the clock, labelled with the date at midnight
    tick = forecast.start.replace(hour=0, minute=0, second=0, microsecond=0)
    while tick < forecast.start:
        tick += timedelta(hours=12)
    while tick <= forecast.end:
        t_h = (tick - forecast.start).total_seconds() / 3600.0
        label = tick.strftime("%a %d %b") if tick.hour == 0 else tick.strftime("%H:%M")
        parts.append(
            f'<line x1="{x(t_h):.1f}" x2="{x(t_h):.1f}" y1="{TOP_PX}" y2="{TOP_PX + plot_h}" '
            f'stroke="#e3e8ee"/><text x="{x(t_h):.1f}" y="{TOP_PX + plot_h + 14}" '
            f'font-size="10" text-anchor="middle">{label}</text>'
        )
        tick += timedelta(hours=12)
    path = " ".join(
        f"{x(float(t)):.1f},{y(float(m)):.1f}"
        for t, m in zip(forecast.t_h, forecast.mas, strict=True)
    )
    parts.append(f'<polyline points="{path}" fill="none" stroke="#5a189a" stroke-width="2"/>')
    for mark_h, text, color in (
        (forecast.empty_at_h, "reservoir empty (projected)", "#b00020"),
        (forecast.risk_after_empty_h, "withdrawal risk", "#6a040f"),
    ):
        if mark_h is None or mark_h > span_h:
            continue
        parts.append(
            f'<line x1="{x(mark_h):.1f}" x2="{x(mark_h):.1f}" y1="{TOP_PX}" y2="{TOP_PX + plot_h}" '
            f'stroke="{color}" stroke-width="1.5"/><text x="{x(mark_h) - 3:.1f}" '
            f'y="{TOP_PX + 4}" font-size="10" fill="{color}" text-anchor="end" '
            f'dominant-baseline="hanging">{escape(text)}</text>'
        )
    legend = escape(
        f"predicted MAS, typical patient on {forecast.mean_daily_dose_ug:.4g} µg/day "
        "(higher = more spasticity)"
    )
    parts.append(
        f'<text x="{LEFT_PX}" y="{TOP_PX - 10}" font-size="10.5">{legend}</text>'
        f'<text x="{LEFT_PX + plot_w / 2:.1f}" y="{EFFECT_HEIGHT_PX - 6}" font-size="10" '
        f'text-anchor="middle">date and time (clinic clock)</text></svg>'
    )
    return Markup("".join(parts))


# The screening-trial chart -----------------------------------------------------------------------
SCREENING_WIDTH_PX = 520
SCREENING_HEIGHT_PX = 230


def screening_svg(assessment: Assessment, predicted_step_h: float = 0.1) -> Markup:
    """Observed MAS (points, the baseline at hour 0) against the model's prediction for a typical
    patient (line), hours after the bolus on x; MAS 0 at the top, as in the pk plots (less tone
    is up). The response band (a fall of at least the rule's points from baseline) is shaded."""
    comparison, rule_fall = assessment.comparison, assessment.classification.min_fall_mas
    baseline = comparison.baseline_mas
    span_h = max(8.0, comparison.rows[-1].hour_h)
    plot_w = SCREENING_WIDTH_PX - LEFT_PX - RIGHT_PX
    plot_h = SCREENING_HEIGHT_PX - TOP_PX - BOTTOM_PX

    def x(t_h: float) -> float:
        return LEFT_PX + plot_w * t_h / span_h

    def y(mas: float) -> float:
        return TOP_PX + plot_h * mas / MAS_TOP  # inverted: 0 at the top

    steps = round(span_h / predicted_step_h)
    times_h = [i * span_h / steps for i in range(steps + 1)]
    predicted = predicted_mas_course(comparison.dose_ug, baseline, times_h)
    band_mas = max(baseline - rule_fall, 0.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {SCREENING_WIDTH_PX} {SCREENING_HEIGHT_PX}" role="img" '
        f'aria-label="screening trial: observed and predicted MAS">',
        f'<rect x="{LEFT_PX}" y="{TOP_PX}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        f'stroke="#c8d1dc"/>',
        f'<rect x="{LEFT_PX}" y="{TOP_PX}" width="{plot_w}" height="{y(band_mas) - TOP_PX:.1f}" '
        f'fill="#2a9d8f" fill-opacity="0.14"><title>response: MAS fall of at least '
        f"{rule_fall:g} from baseline {baseline:g} (S51)</title></rect>",
        f'<line x1="{LEFT_PX}" x2="{LEFT_PX + plot_w}" y1="{y(baseline):.1f}" '
        f'y2="{y(baseline):.1f}" stroke="#888" stroke-dasharray="2 3"/>',
    ]
    for mas in range(6):
        parts.append(
            f'<text x="{LEFT_PX - 6}" y="{y(mas) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{mas}</text>'
        )
    for hour in range(int(span_h) + 1):
        parts.append(
            f'<text x="{x(hour):.1f}" y="{TOP_PX + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{hour}</text>'
        )
    path = " ".join(f"{x(t):.1f},{y(m):.1f}" for t, m in zip(times_h, predicted, strict=True))
    parts.append(
        f'<polyline class="predicted" points="{path}" fill="none" stroke="#5a189a" '
        f'stroke-width="2"/>'
    )
    for t_h, seen_mas in [(0.0, baseline), *((r.hour_h, r.observed_mas) for r in comparison.rows)]:
        parts.append(
            f'<circle class="observed" cx="{x(t_h):.1f}" cy="{y(seen_mas):.1f}" r="4" fill="#111">'
            f"<title>{t_h:g} h: observed MAS {seen_mas:g}</title></circle>"
        )
    legend = escape(
        f"{comparison.dose_ug:g} µg: observed MAS (dots) and the model's prediction for a "
        "typical patient (line)"
    )
    parts.append(
        f'<text x="{LEFT_PX}" y="{TOP_PX - 10}" font-size="10.5">{legend}</text>'
        f'<text x="12" y="{TOP_PX + plot_h / 2:.1f}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP_PX + plot_h / 2:.1f})">MAS (0 at the top)</text>'
        f'<text x="{LEFT_PX + plot_w / 2:.1f}" y="{SCREENING_HEIGHT_PX - 6}" font-size="10" '
        f'text-anchor="middle">hours after the bolus</text></svg>'
    )
    return Markup("".join(parts))
