"""The pump's rate limiter: exponential back-off after repeated failed frames, pure.

A forger, or a programmer with the wrong key, costs the pump radio time and battery for every
frame it sends. ``free_failures`` failures in a row cost nothing (a noisy link loses a frame now
and then); each further one blocks the link for ``base_delay_s * 2**k`` (capped at
``max_delay_s``). One authenticated success resets it. The caller passes ``now_s`` in (monotonic
seconds): no clock here.
"""

from __future__ import annotations

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
