"""Inline SVG charts (no JS, no deps): the program's rate over one day, and the predicted
effect of the current program over the next days."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from markupsafe import Markup, escape

from itb.clinic.effect import EffectForecast
from itb.pharmacology.model import Patients
from itb.programmer.screening import CLINIC_LAST_HOUR, Assessment, predicted_mas_course
from itb.therapy import MINUTES_PER_DAY, Program
from itb.units import SECONDS_PER_HOUR

WIDTH_PX = 600
HEIGHT_PX = 190
MARGIN_PX = 32  # left, right and above the plot
BOTTOM_PX = 46  # two rows of step times below the plot
LABEL_GAP_PX = 40  # the least room between two labels on one row ("HH:MM" at 10 px is ~30)
RATE_LABEL_MIN_PX = 28  # a segment narrower than this has its rate in its time label's title


@dataclass(frozen=True, slots=True)
class _Segment:
    start_min: int
    end_min: int
    rate_ug_per_h: float


def _day_segments(program: Program, weekday: int) -> list[_Segment]:
    """The day as constant-rate spans: before the first step the previous day's last step
    still runs."""
    steps = program.week[weekday]
    carried = program.week[weekday - 1][-1].rate_ug_per_h
    starts = [(0, carried)] if steps[0].start_min > 0 else []
    starts += [(s.start_min, s.rate_ug_per_h) for s in steps]
    ends = [m for m, _ in starts[1:]] + [MINUTES_PER_DAY]
    return [_Segment(m, end, r) for (m, r), end in zip(starts, ends, strict=True)]


def _rows_apart(xs: list[float]) -> list[int]:
    """A row (0 or 1) for each label at ``xs`` so that labels on one row keep apart."""
    last = [-1e9, -1e9]
    rows = []
    for x in xs:
        row = 0 if x - last[0] >= LABEL_GAP_PX else 1
        last[row] = x
        rows.append(row)
    return rows


def dose_schedule_svg(program: Program, weekday: int = 0) -> Markup:
    """Basal rate (µg/h) against the time of day, every step labelled with its start time and
    its rate, with periodic boluses as markers."""
    segments = _day_segments(program, weekday)
    highest = max(max(s.rate_ug_per_h for s in segments), 1e-9)
    top_ug_per_h = highest * 1.15
    plot_w, plot_h = WIDTH_PX - 2 * MARGIN_PX, HEIGHT_PX - MARGIN_PX - BOTTOM_PX

    def x(minute: float) -> float:
        return MARGIN_PX + plot_w * minute / MINUTES_PER_DAY

    def y(rate: float) -> float:
        return MARGIN_PX + plot_h * (1 - rate / top_ug_per_h)

    points = [(x(0), y(segments[0].rate_ug_per_h))]
    for seg in segments:
        points += [(x(seg.start_min), y(seg.rate_ug_per_h)), (x(seg.end_min), y(seg.rate_ug_per_h))]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    parts = [_step_labels(segments, x, y, plot_h)]
    parts += [
        f'<circle cx="{x(b.start_min):.1f}" cy="{MARGIN_PX - 8}" r="4" fill="#b5179e">'
        f"<title>bolus {b.dose_ug:g} µg over {b.duration_min:g} min</title></circle>"
        for b in program.periodic_boluses
    ]
    label = escape(
        f"rate in µg/h (highest {highest:.3g} µg/h); {program.daily_dose_ug():.4g} µg/day"
    )
    parts.append(
        f'<text x="{MARGIN_PX - 4}" y="{y(0) + 4:.1f}" font-size="10" text-anchor="end">0</text>'
    )
    # Built only from formatted numbers and escape()d text: safe to mark as markup.
    return Markup(  # nosec B704
        f'<svg class="chart" viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" role="img" '
        f'aria-label="dose schedule">'
        f'<rect x="{MARGIN_PX}" y="{MARGIN_PX}" width="{plot_w}" height="{plot_h}" '
        f'fill="#f4f7fb" stroke="#c8d1dc"/>'
        f'<polyline points="{path}" fill="none" stroke="#1d4e89" stroke-width="2"/>'
        f'<text x="{MARGIN_PX}" y="{MARGIN_PX - 12}" font-size="11">{label}</text>'
        f"{''.join(parts)}</svg>"
    )


def _step_labels(
    segments: list[_Segment],
    x: Callable[[float], float],
    y: Callable[[float], float],
    plot_h: float,
) -> str:
    """Each step's start time below the plot (00:00 and 24:00 too), in two rows where steps
    lie close, and its rate (µg/h) above its span; a span too narrow for its rate carries it
    in the time label's tooltip."""
    times = [0, *(s.start_min for s in segments if s.start_min > 0), MINUTES_PER_DAY]
    rows = _rows_apart([x(m) for m in times])
    base_y = MARGIN_PX + plot_h
    out = []
    rate_from = {s.start_min: s.rate_ug_per_h for s in segments}
    for minute, row in zip(times, rows, strict=True):
        clock = "24:00" if minute == MINUTES_PER_DAY else f"{minute // 60:02d}:{minute % 60:02d}"
        tip = (
            f"<title>from {clock}: {rate_from[minute]:.3g} µg/h</title>"
            if minute in rate_from
            else ""
        )
        out.append(
            f'<line x1="{x(minute):.1f}" x2="{x(minute):.1f}" y1="{base_y:.1f}" '
            f'y2="{base_y + 4 + row * 13:.1f}" stroke="#8a96a3"/>'
            f'<text x="{x(minute):.1f}" y="{base_y + 15 + row * 13:.1f}" font-size="10" '
            f'text-anchor="middle" data-step-start="{clock}">{clock}{tip}</text>'
        )
    for seg in segments:
        middle = (x(seg.start_min) + x(seg.end_min)) / 2
        if x(seg.end_min) - x(seg.start_min) < RATE_LABEL_MIN_PX:
            continue
        out.append(
            f'<text x="{middle:.1f}" y="{y(seg.rate_ug_per_h) - 4:.1f}" font-size="10" '
            f'text-anchor="middle" data-step-rate="{seg.rate_ug_per_h:g}">'
            f"{seg.rate_ug_per_h:.3g}</text>"
        )
    return "".join(out)


# The predicted-effect chart ---------------------------------------------------------------------
EFFECT_WIDTH_PX = 640
EFFECT_HEIGHT_PX = 250
LEFT_PX, RIGHT_PX, TOP_PX, BOTTOM_PX = 44, 12, 28, 40
MAS_TOP = 5.0  # the Modified Ashworth scale, 0 to 5 with 1+ coded 2 (S74 S75)


@dataclass(frozen=True, slots=True)
class _Plot:
    """The plotting area of a chart: where a time (h) and a MAS score land, in pixels."""

    span_h: float
    width_px: float
    height_px: float
    mas_down: bool = False  # True: MAS 0 at the top (less tone is up), as in the pk plots

    def x(self, t_h: float) -> float:
        return LEFT_PX + self.width_px * t_h / self.span_h

    def y(self, mas: float) -> float:
        fraction = mas / MAS_TOP if self.mas_down else 1 - mas / MAS_TOP
        return TOP_PX + self.height_px * fraction

    def frame(self) -> str:
        return (
            f'<rect x="{LEFT_PX}" y="{TOP_PX}" width="{self.width_px}" height="{self.height_px}" '
            f'fill="#fff" stroke="#c8d1dc"/>'
        )

    def hline(self, mas: float, stroke: str, dash: str) -> str:
        return (
            f'<line x1="{LEFT_PX}" x2="{LEFT_PX + self.width_px}" y1="{self.y(mas):.1f}" '
            f'y2="{self.y(mas):.1f}" stroke="{stroke}" stroke-dasharray="{dash}"/>'
        )

    def vline(self, t_h: float, stroke: str, extra: str = "") -> str:
        return (
            f'<line x1="{self.x(t_h):.1f}" x2="{self.x(t_h):.1f}" y1="{TOP_PX}" '
            f'y2="{TOP_PX + self.height_px}" stroke="{stroke}"{extra}/>'
        )

    def mas_axis(self, title: str) -> list[str]:
        middle = TOP_PX + self.height_px / 2
        labels = [
            f'<text x="{LEFT_PX - 6}" y="{self.y(mas) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{mas}</text>'
            for mas in range(int(MAS_TOP) + 1)
        ]
        return [
            *labels,
            f'<text x="12" y="{middle:.1f}" font-size="10" text-anchor="middle" '
            f'transform="rotate(-90 12 {middle:.1f})">{escape(title)}</text>',
        ]


def effect_forecast_svg(forecast: EffectForecast) -> Markup:
    """Predicted MAS against date and time: the response band (MAS fall ≥ 1, S51) shaded, the
    withdrawal threshold dashed, the projected empty reservoir and withdrawal risk marked."""
    span_h = float(forecast.t_h[-1]) or 1.0
    plot = _Plot(
        span_h,
        EFFECT_WIDTH_PX - LEFT_PX - RIGHT_PX,
        EFFECT_HEIGHT_PX - TOP_PX - BOTTOM_PX,
        mas_down=True,  # MAS 0 at the top, as on the screening page and in the pk plots
    )
    fall_mas = forecast.baseline_mas - forecast.response_mas
    y_response = plot.y(forecast.response_mas)
    band_top_px = min(y_response, plot.y(0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {EFFECT_WIDTH_PX} {EFFECT_HEIGHT_PX}" role="img" '
        f'aria-label="predicted spasticity over the next {span_h:g} hours">',
        plot.frame(),
        # the response band: MAS at least the response fall below baseline, down to 0
        f'<rect x="{LEFT_PX}" y="{band_top_px:.1f}" width="{plot.width_px}" '
        f'height="{abs(plot.y(0) - y_response):.1f}" fill="#2a9d8f" fill-opacity="0.14">'
        f"<title>response band: MAS fall of at least {fall_mas:.1f} from baseline "
        f"{forecast.baseline_mas:g} (S51)</title></rect>",
        plot.hline(forecast.baseline_mas, "#888", "2 3"),
        plot.hline(forecast.withdrawal_mas, "#b00020", "6 4"),
        *plot.mas_axis("MAS (points, 0-5)"),
        *_clock_ticks(forecast, plot),
    ]
    parts.append(_band(forecast, plot))
    path = " ".join(
        f"{plot.x(float(t)):.1f},{plot.y(float(m)):.1f}"
        for t, m in zip(forecast.t_h, forecast.mas, strict=True)
    )
    parts.append(f'<polyline points="{path}" fill="none" stroke="#5a189a" stroke-width="2"/>')
    parts += _event_marks(forecast, plot)
    who = (
        f"this patient's model (fitted to {forecast.scores_fitted} screening scores)"
        if forecast.personal
        else "typical patient (no screening scores)"
    )
    legend = escape(
        f"predicted MAS, {who}, on {forecast.mean_daily_dose_ug:.4g} µg/day; shaded: "
        f"{forecast.level:.0%} interval"
    )
    parts.append(
        f'<text x="{LEFT_PX}" y="{TOP_PX - 10}" font-size="10.5">{legend}</text>'
        f'<text x="{LEFT_PX + plot.width_px / 2:.1f}" y="{EFFECT_HEIGHT_PX - 6}" font-size="10" '
        f'text-anchor="middle">date and time (clinic clock)</text></svg>'
    )
    # Built only from formatted numbers and escape()d text: safe to mark as markup.
    return Markup("".join(parts))  # nosec B704


def _band(forecast: EffectForecast, plot: _Plot) -> str:
    """The prediction interval of a score as one shaded polygon: the high edge forward in time,
    the low edge back."""
    upper = [
        f"{plot.x(float(t)):.1f},{plot.y(float(m)):.1f}"
        for t, m in zip(forecast.t_h, forecast.high_mas, strict=True)
    ]
    lower = [
        f"{plot.x(float(t)):.1f},{plot.y(float(m)):.1f}"
        for t, m in zip(forecast.t_h[::-1], forecast.low_mas[::-1], strict=True)
    ]
    title = escape(
        f"{forecast.level:.0%} prediction interval of a scored MAS: the model's uncertainty "
        "for this patient and the measurement error of a score"
    )
    return (
        f'<polygon class="forecast-band" points="{" ".join(upper + lower)}" fill="#5a189a" '
        f'fill-opacity="0.16" stroke="none"><title>{title}</title></polygon>'
    )


TICK_EVERY = timedelta(hours=12)


def _clock_ticks(forecast: EffectForecast, plot: _Plot) -> list[str]:
    """The x axis: every 12 h on the clock, labelled with the date at midnight."""
    ticks = []
    tick = forecast.start.replace(hour=0, minute=0, second=0, microsecond=0)
    while tick < forecast.start:
        tick += TICK_EVERY
    while tick <= forecast.end:
        t_h = (tick - forecast.start).total_seconds() / SECONDS_PER_HOUR
        label = tick.strftime("%a %d %b") if tick.hour == 0 else tick.strftime("%H:%M")
        ticks.append(
            plot.vline(t_h, "#e3e8ee") + f'<text x="{plot.x(t_h):.1f}" '
            f'y="{TOP_PX + plot.height_px + 14}" font-size="10" text-anchor="middle">{label}</text>'
        )
        tick += TICK_EVERY
    return ticks


def _event_marks(forecast: EffectForecast, plot: _Plot) -> list[str]:
    """The projected empty reservoir and the withdrawal risk after it, when in the window."""
    marks = []
    for mark_h, name, text, color in (
        (forecast.empty_at_h, "empty", "reservoir empty (projected)", "#b00020"),
        (forecast.risk_after_empty_h, "withdrawal-risk", "withdrawal risk", "#6a040f"),
    ):
        if mark_h is None or mark_h > plot.span_h:
            continue
        marks.append(
            plot.vline(mark_h, color, f' stroke-width="1.5" data-mark="{name}"')
            + f'<text x="{plot.x(mark_h) - 3:.1f}" y="{TOP_PX + 4}" font-size="10" '
            f'fill="{color}" text-anchor="end" dominant-baseline="hanging">{escape(text)}</text>'
        )
    return marks


# The screening-trial chart -----------------------------------------------------------------------
SCREENING_WIDTH_PX = 520
SCREENING_HEIGHT_PX = 230


def screening_svg(
    assessment: Assessment, own: Patients | None = None, predicted_step_h: float = 0.1
) -> Markup:
    """Observed MAS (points, the baseline at hour 0) against the model's prediction for a typical
    patient (line) and, once fitted, the patient's own model (dashed), hours after the bolus on
    x; MAS 0 at the top, as in the pk plots (less tone is up). The response band (a fall of at
    least the rule's points from baseline) is shaded."""
    comparison, rule_fall = assessment.comparison, assessment.classification.min_fall_mas
    baseline = comparison.baseline_mas
    span_h = max(float(CLINIC_LAST_HOUR), comparison.rows[-1].hour_h)
    plot = _Plot(
        span_h,
        SCREENING_WIDTH_PX - LEFT_PX - RIGHT_PX,
        SCREENING_HEIGHT_PX - TOP_PX - BOTTOM_PX,
        mas_down=True,
    )
    band_mas = max(baseline - rule_fall, 0.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {SCREENING_WIDTH_PX} {SCREENING_HEIGHT_PX}" role="img" '
        f'aria-label="screening trial: observed and predicted MAS">',
        plot.frame(),
        f'<rect x="{LEFT_PX}" y="{TOP_PX}" width="{plot.width_px}" '
        f'height="{plot.y(band_mas) - TOP_PX:.1f}" '
        f'fill="#2a9d8f" fill-opacity="0.14"><title>response: MAS fall of at least '
        f"{rule_fall:g} from baseline {baseline:g} (S51)</title></rect>",
        plot.hline(baseline, "#888", "2 3"),
        *plot.mas_axis("MAS (0 at the top)")[:-1],
    ]
    for hour in range(int(span_h) + 1):
        parts.append(
            f'<text x="{plot.x(hour):.1f}" y="{TOP_PX + plot.height_px + 14}" font-size="10" '
            f'text-anchor="middle">{hour}</text>'
        )
    parts.append(_predicted_line(comparison.dose_ug, baseline, plot, predicted_step_h))
    if own is not None:
        parts.append(_predicted_line(comparison.dose_ug, baseline, plot, predicted_step_h, own))
    for t_h, seen_mas in [(0.0, baseline), *((r.hour_h, r.observed_mas) for r in comparison.rows)]:
        parts.append(
            f'<circle class="observed" cx="{plot.x(t_h):.1f}" cy="{plot.y(seen_mas):.1f}" r="4" '
            f'fill="#111"><title>{t_h:g} h: observed MAS {seen_mas:g}</title></circle>'
        )
    legend = escape(
        f"{comparison.dose_ug:g} µg: observed MAS (dots), the typical patient (line)"
        + (", this patient's model (dashed)" if own is not None else "")
    )
    parts += [
        f'<text x="{LEFT_PX}" y="{TOP_PX - 10}" font-size="10.5">{legend}</text>',
        plot.mas_axis("MAS (0 at the top)")[-1],
        f'<text x="{LEFT_PX + plot.width_px / 2:.1f}" y="{SCREENING_HEIGHT_PX - 6}" '
        f'font-size="10" text-anchor="middle">hours after the bolus</text></svg>',
    ]
    # Built only from formatted numbers and escape()d text: safe to mark as markup.
    return Markup("".join(parts))  # nosec B704


def _predicted_line(
    dose_ug: float, baseline_mas: float, plot: _Plot, step_h: float, own: Patients | None = None
) -> str:
    """The model's MAS after the bolus, sampled every ``step_h``: a typical patient, or the
    patient's own model (dashed) when given."""
    steps = round(plot.span_h / step_h)
    times_h = [i * plot.span_h / steps for i in range(steps + 1)]
    predicted = predicted_mas_course(dose_ug, baseline_mas, times_h, own)
    path = " ".join(
        f"{plot.x(t):.1f},{plot.y(m):.1f}" for t, m in zip(times_h, predicted, strict=True)
    )
    kind, dash = ("own-model", ' stroke-dasharray="6 4"') if own is not None else ("predicted", "")
    return (
        f'<polyline class="{kind}" points="{path}" fill="none" stroke="#5a189a" '
        f'stroke-width="2"{dash}/>'
    )
