"""Why the pump refused a frame, and what it logs about it (never what it tells the peer).

The peer learns nothing beyond "refused" (a plaintext REFUSAL frame, or a sealed ``Refused``):
a forger gets no hint which check failed. The pump's own event log gets a
:class:`RefusalReport` (kind ``"link_refused"``), so a clinician can see an attack or a
misconfigured programmer afterwards.

Theory of operation: who may write the log
------------------------------------------
A refusal on an authenticated session (the peer proved its key and its ephemeral) is logged one
by one: only a paired programmer can cause it, and its link's own back-off bounds it. A refusal
of unauthenticated work (garbage, an unknown key, a replayed first message, a forged sealed
frame before the session is proved) costs an attacker nothing, so the :class:`RefusalLedger`
counts it and logs at most one entry per ``SUMMARY_INTERVAL_S``: the first refusal of a quiet
spell as it is, then a :class:`RefusalSummary` (kind ``"link_refusals"``) of everything counted
since, once the interval has passed (or when a paired programmer authenticates, so the clinician
reading the log sees the attack). Both kinds go to the event log's security ring, apart from the
clinical entries (itb.pump.eventlog), and the pump writes no memory for them: they are saved
with its next write. Pure: time is passed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum

from itb.pump.eventlog import LINK_REFUSALS, LINK_REFUSED
from itb.telemetry.pairing import Role
from itb.telemetry.validation import JSON


class RefusalReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    MALFORMED_FRAME = "malformed_frame"
    UNEXPECTED_FRAME = "unexpected_frame"
    UNKNOWN_KEY = "unknown_key"
    STALE_HANDSHAKE = "stale_handshake"
    LINK_CLOSED = "link_closed"  # (summaries only) unauthenticated links closed: silent, late
    NO_SESSION = "no_session"
    NOT_AUTHENTIC = "not_authentic"
    MALFORMED_MESSAGE = "malformed_message"
    REQUEST_ID_REUSED = "request_id_reused"
    REPLAYED_COUNTER = "replayed_counter"
    ROLE_FORBIDDEN = "role_forbidden"
    NEEDS_PREPARE = "needs_prepare"
    BAD_COMMIT = "bad_commit"


@dataclass(frozen=True, slots=True)
class RefusalReport:
    """What the pump should log about a refused frame (never sent to the peer)."""

    reason: RefusalReason
    detail: str
    key_id: str | None = None
    role: Role | None = None
    request_type: str | None = None
    request_id: str | None = None
    failures_total: int = 0
    dropped_since_last_report: int = 0

    @property
    def log_kind(self) -> str:
        """The event-log kind of this report's entry."""
        return LINK_REFUSED

    def to_log_data(self) -> dict[str, JSON]:
        """The ``data`` of the pump's event-log entry (kind ``"link_refused"``)."""
        data: dict[str, JSON] = {"reason": self.reason.value, "detail": self.detail}
        for name in ("key_id", "request_type", "request_id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.role is not None:
            data["role"] = self.role.value
        data["failures_total"] = self.failures_total
        if self.dropped_since_last_report:
            data["dropped_since_last_report"] = self.dropped_since_last_report
        return data


def with_total(report: RefusalReport, failures_total: int) -> RefusalReport:
    """``report`` with the pump's running count of refused frames."""
    return replace(report, failures_total=failures_total)


SUMMARY_INTERVAL_S = 60.0  # at most one log entry per this, for unauthenticated refusals


@dataclass(frozen=True, slots=True)
class RefusalSummary(RefusalReport):
    """Unauthenticated refusals counted over ``period_s`` (kind ``"link_refusals"``)."""

    refused: int = 0
    by_reason: tuple[tuple[str, int], ...] = ()
    dropped_unread: int = 0  # frames dropped unread while their source was backed off
    links_closed: int = 0  # unauthenticated links closed: deadline, budget or failures
    period_s: float = 0.0

    @property
    def log_kind(self) -> str:
        return LINK_REFUSALS

    def to_log_data(self) -> dict[str, JSON]:
        data: dict[str, JSON] = {
            "reason": self.reason.value, "detail": self.detail, "refused": self.refused,
            "by_reason": {name: n for name, n in self.by_reason},
            "dropped_unread": self.dropped_unread, "links_closed": self.links_closed,
            "period_s": round(self.period_s, 3), "failures_total": self.failures_total,
        }  # fmt: skip
        return data


class RefusalLedger:
    """Counts unauthenticated refusals; says what to log, at most once per ``interval_s``."""

    def __init__(self, interval_s: float = SUMMARY_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last_entry_s = float("-inf")
        self._counts: Counter[RefusalReason] = Counter()
        self._dropped_unread = 0
        self._links_closed = 0
        self.refused_total = 0  # every unauthenticated refusal ever counted (RAM only)

    @property
    def pending(self) -> bool:
        return bool(self._counts or self._dropped_unread or self._links_closed)

    def note(self, report: RefusalReport, now_s: float) -> RefusalReport | None:
        """A refusal of unauthenticated work: the report to log now, or None (counted)."""
        self.refused_total += 1
        if not self.pending and now_s >= self._last_entry_s + self.interval_s:
            self._last_entry_s = now_s  # the first of a quiet spell is logged as it is
            return report
        self._counts[report.reason] += 1
        return self.due(now_s, report.failures_total)

    def note_dropped(self, frames: int) -> None:
        self._dropped_unread += frames

    def note_closed(self) -> None:
        self._links_closed += 1

    def due(
        self, now_s: float, failures_total: int, *, force: bool = False
    ) -> RefusalSummary | None:
        """The summary of what was counted, once the interval has passed (or ``force``)."""
        if not self.pending or not (force or now_s >= self._last_entry_s + self.interval_s):
            return None
        refused = sum(self._counts.values())
        reason = (  # what the summary is mostly about
            self._counts.most_common(1)[0][0]
            if self._counts
            else RefusalReason.RATE_LIMITED
            if self._dropped_unread
            else RefusalReason.LINK_CLOSED
        )
        by_reason = tuple(sorted((r.value, n) for r, n in self._counts.items()))
        period_s = now_s - self._last_entry_s if self._last_entry_s > float("-inf") else 0.0
        listed = ", ".join(f"{name} {n}" for name, n in by_reason) or "none"
        detail = (
            f"{refused} unauthenticated frames refused ({listed}), {self._dropped_unread} "
            f"dropped unread, {self._links_closed} links closed"
        )
        summary = RefusalSummary(
            reason, detail, failures_total=failures_total, refused=refused, by_reason=by_reason,
            dropped_unread=self._dropped_unread, links_closed=self._links_closed,
            period_s=period_s,
        )  # fmt: skip
        self._counts.clear()
        self._dropped_unread = self._links_closed = 0
        self._last_entry_s = now_s
        return summary
