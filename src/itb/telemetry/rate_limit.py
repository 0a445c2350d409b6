"""The pump's rate limiter: exponential back-off after repeated failed frames, pure.

A forger, or a programmer with the wrong key, costs the pump radio time and battery for every
frame it sends. ``free_failures`` failures in a row cost nothing (a noisy link loses a frame now
and then); each further one blocks the link for ``base_delay_s * 2**k`` (capped at
``max_delay_s``). One authenticated success resets it. The caller passes ``now_s`` in (monotonic
seconds): no clock here.

The pump keeps one limiter per link for the frames of an authenticated session, and one per
source (:class:`SourceLimiters`) for the work a peer causes before it is authenticated.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class FailureLimiter:
    """Exponential back-off after repeated failures; ``now_s`` passed in."""

    free_failures: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    consecutive_failures: int = 0
    blocked_until_s: float = float("-inf")

    def record_failure(self, now_s: float) -> None:
        self.consecutive_failures += 1
        extra = self.consecutive_failures - self.free_failures
        if extra > 0:
            delay_s = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(extra - 1, 30))
            self.blocked_until_s = max(self.blocked_until_s, now_s + delay_s)

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.blocked_until_s = float("-inf")

    def retry_after_s(self, now_s: float) -> float:
        """Seconds the link stays blocked from ``now_s`` (0 when open)."""
        return max(0.0, self.blocked_until_s - now_s)


MAX_TRACKED_SOURCES = 256  # sources whose back-off the pump remembers (least recent forgotten)


class SourceLimiters:
    """One :class:`FailureLimiter` per source (a peer's address), for unauthenticated work.

    The back-off is per source so that one flooding peer cannot lock out another, and it
    applies only to work done before a session is authenticated: a handshake that completes is
    never blocked by it (pump_endpoint.py). At most ``max_sources`` are remembered; the least
    recently seen is forgotten first (a forgotten source starts again with its free failures).
    """

    def __init__(self, template: FailureLimiter, max_sources: int = MAX_TRACKED_SOURCES) -> None:
        self._template = template
        self._max_sources = max_sources
        self._limiters: OrderedDict[str | None, FailureLimiter] = OrderedDict()

    def get(self, source: str | None) -> FailureLimiter:
        limiter = self._limiters.pop(source, None) or fresh_limiter(self._template)
        self._limiters[source] = limiter
        while len(self._limiters) > self._max_sources:
            self._limiters.popitem(last=False)
        return limiter

    def retry_after_s(self, source: str | None, now_s: float) -> float:
        limiter = self._limiters.get(source)
        return 0.0 if limiter is None else limiter.retry_after_s(now_s)


def fresh_limiter(template: FailureLimiter) -> FailureLimiter:
    """A limiter with ``template``'s settings and no failures yet."""
    return FailureLimiter(template.free_failures, template.base_delay_s, template.max_delay_s)
