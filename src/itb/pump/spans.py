"""Delivered spans and the rolling 24 h maximum.

Theory of operation
-------------------
Between two events the pump's rate is ``scale * profile(t) + extra`` (µg/s): the program's
compiled profile, scaled (1 for the schedule, 0 for a rate that replaces it), plus a constant
(a bolus, the minimum rate). A :class:`Span` is one such stretch; the pump keeps the spans of
the last 24 h, merged while the rate is the same, so the rolling maximum is an exact integral.

The rolling maximum counts the programmed basal still to come, not only what was delivered
since the last restart (the Open PCA pump fix): the largest total over every 24 h window that
contains now.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from itb.therapy import RateProfile, RateSegment
from itb.units import SECONDS_PER_HOUR

ROLLING_WINDOW_S = 24 * SECONDS_PER_HOUR


class Span(NamedTuple):
    """A stretch of time over which a rate is ``scale * profile(t) + extra`` (µg/s).

    Immutable (a projected copy of the pump shares its spans); a named tuple rather than a
    frozen dataclass because the pump makes two or three at every step it takes and a frozen
    dataclass costs four times as much to build (issue 13)."""

    start_s: float
    end_s: float
    profile: RateProfile
    scale: float
    extra_ug_per_s: float

    def integral_ug(self, t0_s: float, t1_s: float) -> float:
        a, b = max(t0_s, self.start_s), min(t1_s, self.end_s)
        if b <= a:
            return 0.0
        return self.scale * self.profile.integral_ug(a, b) + self.extra_ug_per_s * (b - a)

    def segments(self) -> Iterator[RateSegment]:
        if self.scale == 0.0:
            yield RateSegment(self.start_s, self.end_s, self.extra_ug_per_s * SECONDS_PER_HOUR)
            return
        for a, b, r in self.profile.segments(self.start_s, self.end_s):
            yield RateSegment(a, b, (self.scale * r + self.extra_ug_per_s) * SECONDS_PER_HOUR)


def append_merged(spans: deque[Span] | list[Span], span: Span) -> None:
    """Append ``span``, or extend the last one when it continues it at the same rate."""
    if spans:
        last = spans[-1]
        if (
            last.end_s == span.start_s
            and last.profile is span.profile
            and last.scale == span.scale
            and last.extra_ug_per_s == span.extra_ug_per_s
        ):
            spans[-1] = Span(
                last.start_s, span.end_s, span.profile, span.scale, span.extra_ug_per_s
            )
            return
    spans.append(span)


def forget_before(spans: deque[Span], t_s: float) -> None:
    """Drop the spans that ended more than a rolling window before ``t_s``."""
    while spans and spans[0].end_s < t_s - ROLLING_WINDOW_S:
        spans.popleft()


def rolling_max_ug(
    recent: Iterable[Span], now_s: float, profile: RateProfile, basal_scale: float
) -> float:
    """Largest total of any 24 h window containing ``now_s``: what the ``recent`` spans
    delivered before now plus ``basal_scale`` × the ``profile`` still to come."""
    spans = list(recent)
    window_start_s = now_s - ROLLING_WINDOW_S
    # the total is piecewise linear in the window's shift: its maximum is at a rate change
    cuts = {0.0, ROLLING_WINDOW_S}
    for span in spans:
        for edge in (span.start_s, span.end_s):
            if window_start_s < edge < now_s:
                cuts.add(edge - window_start_s)
    for a, _, _ in profile.segments(window_start_s, now_s + ROLLING_WINDOW_S):
        for edge in (a - now_s, a - window_start_s):
            if 0.0 < edge < ROLLING_WINDOW_S:
                cuts.add(edge)
    best = 0.0
    for shift in cuts:
        past = sum(s.integral_ug(window_start_s + shift, now_s) for s in spans)
        to_come = basal_scale * profile.integral_ug(now_s, now_s + shift)
        best = max(best, past + to_come)
    return best
